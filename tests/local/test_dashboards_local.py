"""Every panel of a stack's Grafana dashboards shows data: the queries exactly as the dashboards'
JSON holds them, run against the local stack's real Prometheus (the examples' rules loaded) while
the synthetic app sends traffic to team-a, the namespace of the examples' stack and SLOs. Grafana
runs a table's targets as instant queries and a time series' as range queries; so does this test."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import yaml
from localhelpers import REPO
from observatory.compile.dashboards import dashboard_objects
from observatory.conventions import DEFAULT
from observatory.local.app import Knobs, SyntheticApp
from observatory.local.net import prometheus_query, prometheus_range
from observatory.models import parse_resource
from observatory.models.stack import ObservabilityStack

NAMESPACE = "team-a"
DEADLINE_SECONDS = 180  # on an idle machine every panel has data within ~30 s (2 s scrape and evaluation)


def panel_targets(stack: ObservabilityStack) -> list[tuple[str, str, dict]]:
    [configmap] = dashboard_objects(stack, DEFAULT)
    return [(key, panel["title"], target) for key, text in sorted(configmap["data"].items())
            for panel in json.loads(text)["panels"] for target in panel["targets"]]


def has_data(prometheus: str, target: dict) -> bool:
    if target.get("instant"):
        return bool(prometheus_query(prometheus, target["expr"]))
    now = time.time()
    return bool(prometheus_range(prometheus, target["expr"], now - 300, now, 15))


def test_every_dashboard_panel_query_returns_data_after_traffic(local_stack) -> None:
    [stack] = [r for r in local_stack.resources if isinstance(r, ObservabilityStack) and r.namespace == NAMESPACE]
    prometheus = local_stack.info.urls["prometheus"]
    targets = panel_targets(stack)
    assert len(targets) == 16  # team-a records spend per provider too: a table of its own
    app = SyntheticApp(NAMESPACE, knobs=Knobs(rps=20))
    app.serve_metrics(Path(local_stack.info.targets_dir))
    stop = threading.Event()
    worker = threading.Thread(target=app.run, kwargs={"stop": stop}, name="dashboards-traffic", daemon=True)
    worker.start()
    pending = list(targets)
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while pending and time.monotonic() < deadline:
            pending = [t for t in pending if not has_data(prometheus, t[2])]
            stop.wait(1)  # the next scrape and rule evaluation come every 2 s
    finally:
        stop.set()
        worker.join(10)
        app.close()
    assert not pending, "panels without data: " + "; ".join(f"{key} {title}: {target['expr']}" for key, title, target in pending)

    # The same dashboards for a namespace without traffic show nothing of team-a's.
    document = yaml.safe_load((REPO / "examples" / "stacks" / "team-a-dedicated.yaml").read_text())
    quiet = parse_resource({**document, "metadata": {**document["metadata"], "namespace": "team-quiet"}})
    llm = [t for t in panel_targets(quiet) if t[0] == "llm-overview.json"]
    assert llm and not any(has_data(prometheus, target) for _, _, target in llm)
