"""Compile generated PromQL the way the operator does, in a process of its own (a native crash ends
this process, not pytest) and in a thread with a 1 MiB stack, an eighth of the default that kopf's
executor threads get. Reads expressions as JSON on stdin; prints one verdict per expression.
"""

from __future__ import annotations

import json
import sys
import threading
import traceback

from observatory import promql
from observatory.compile import CompileError, compile_resource
from observatory.models import parse_resource

STACK_BYTES = 1024 * 1024


def verdict(expr: str) -> dict:
    try:
        promql.parse(expr)  # the bounded parser alone
    except promql.PromQLError:
        pass
    resource = {"apiVersion": "observatory.dev/v1alpha1", "kind": "AlertRule",
                "metadata": {"name": "fuzz", "namespace": "team-a"},
                "spec": {"severity": "warning", "threshold": {"expr": expr, "value": 1}}}
    try:
        objects = compile_resource(parse_resource(resource))
    except CompileError as err:
        return {"accepted": False, "error": str(err)}
    except Exception:  # noqa: BLE001 - anything else is a defect, which the test shows
        return {"accepted": False, "defect": traceback.format_exc()}
    return {"accepted": True, "rules": objects[0]["spec"]["groups"]}


def main() -> None:
    expressions = json.load(sys.stdin)
    results: list[dict] = []
    threading.stack_size(STACK_BYTES)
    thread = threading.Thread(target=lambda: results.extend(verdict(e) for e in expressions))
    thread.start()
    thread.join()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
