"""The operator loop against the RBAC-enforcing emulator, in a process of its own: a native crash
(issue 13 item 5) then kills this process, not pytest. Reads resources as JSON on stdin; prints, as
JSON, each resource's Valid condition and the PrometheusRules of every namespace.

Run by tests/security/test_promql_operator.py with tests/ and tests/controller on PYTHONPATH.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from controller_harness import (
    ALERTRULES,
    PROMETHEUSRULES,
    SLOS,
    condition,
    names,
    running_operator,
    settled,
)
from k8s.emulator import cluster_context

PLURALS = {"AlertRule": ALERTRULES, "SLO": SLOS}


async def main(resources: list[dict], timeout: float) -> dict:
    async with cluster_context() as cluster, running_operator(cluster):
        for resource in resources:
            cluster.seed(resource)
        started = time.monotonic()
        report: dict = {"resources": {}, "rules": {}}
        for resource in resources:
            meta = resource["metadata"]
            remaining = max(timeout - (time.monotonic() - started), 0.1)
            try:
                live = await cluster.until(lambda plural=PLURALS[resource["kind"]], meta=meta:
                                           settled(cluster, plural, meta["name"], meta["namespace"]), timeout=remaining)
                report["resources"][meta["name"]] = {"valid": condition(live, "Valid"), "status": live["status"]}
            except TimeoutError:
                report["resources"][meta["name"]] = {"valid": None, "status": None}
        for namespace in sorted({r["metadata"]["namespace"] for r in resources}):
            report["rules"][namespace] = names(cluster, PROMETHEUSRULES, namespace)
        return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.load(sys.stdin), float(sys.argv[1])))))
