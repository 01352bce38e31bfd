"""Resources and the CLI for the template and label attacks (tests/security/test_templates_*, test_labels_*)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def observatory(*args: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "observatory", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO, timeout=120, check=False)


def alertrule(name: str, namespace: str = "team-a", **spec: Any) -> dict[str, Any]:
    """A threshold AlertRule on llm_calls_total (alert name: `name` in CamelCase); `spec` adds or replaces fields."""
    body = {"severity": "warning", "threshold": {"expr": "sum(llm_calls_total)", "op": ">", "value": 0}, **spec}
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "AlertRule",
            "metadata": {"name": name, "namespace": namespace}, "spec": {k: v for k, v in body.items() if v is not None}}


def slo(name: str = "chat", namespace: str = "team-a", **spec: Any) -> dict[str, Any]:
    body = {"objective": 99, "indicator": {"ratio": {"errors": "llm_errors_total", "total": "llm_calls_total"}}, **spec}
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "SLO",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}
