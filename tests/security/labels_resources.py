"""Resources and the CLI for the template and label attacks (tests/security/test_templates_*, test_labels_*)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from observatory.promtool import run_test_file, write_rule_files
from observatory.yamlio import dump

REPO = Path(__file__).resolve().parents[2]


def observatory(*args: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "observatory", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO, timeout=120, check=False)


class Batch:
    """Documents validated by one `observatory validate` run (one process, not one per case), each
    renamed apart: `add` returns a key, `refusals(key)` the messages (field: reason) of that document."""

    def __init__(self, *flags: str):
        self.flags = flags
        self.documents: list[dict[str, Any]] = []
        self.result: dict[str, list[str]] | None = None
        self.returncode: int | None = None

    def add(self, document: dict[str, Any]) -> str:
        assert self.result is None, "every document is added before the batch runs (at import, beside parametrize)"
        document = {**document, "metadata": {**document["metadata"], "name": f"case-{len(self.documents)}"}}
        self.documents.append(document)
        meta = document["metadata"]
        return f"{document['kind']}/{meta['namespace']}/{meta['name']}"

    def refusals(self, key: str) -> list[str]:
        if self.result is None:
            run = observatory("validate", "-f", "-", *self.flags, stdin=yaml.safe_dump_all(self.documents))
            assert "Traceback" not in run.stderr, run.stderr
            self.returncode, self.result = run.returncode, {}
            for line in run.stderr.splitlines():
                if line.startswith("-: "):
                    _, identity, message = line.split(": ", 2)
                    self.result.setdefault(identity, []).append(message)
        return self.result.get(key, [])


def alertrule(name: str, namespace: str = "team-a", **spec: Any) -> dict[str, Any]:
    """A threshold AlertRule on llm_calls_total (alert name: `name` in CamelCase); `spec` adds or replaces fields."""
    body = {"severity": "warning", "threshold": {"expr": "sum(llm_calls_total)", "op": ">", "value": 0}, **spec}
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "AlertRule",
            "metadata": {"name": name, "namespace": namespace}, "spec": {k: v for k, v in body.items() if v is not None}}


def slo(name: str = "chat", namespace: str = "team-a", **spec: Any) -> dict[str, Any]:
    body = {"objective": 99, "indicator": {"ratio": {"errors": "llm_errors_total", "total": "llm_calls_total"}}, **spec}
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "SLO",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}


def promtool_alerts(objects: list[dict[str, Any]], tmp_path: Path, series: dict[str, str], alertname: str,
                    eval_time: str, exp_alerts: list[dict[str, Any]]) -> str:
    """promtool test rules on the compiled `objects` with input `series` (selector → values, at 1m):
    its failure output, or "" when the alerts named `alertname` at `eval_time` are `exp_alerts`."""
    rule_files = write_rule_files(objects, tmp_path)
    test = {"rule_files": [], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": selector, "values": values} for selector, values in series.items()],
        "alert_rule_test": [{"eval_time": eval_time, "alertname": alertname, "exp_alerts": exp_alerts}],
    }]}
    test_file = tmp_path / "alerts.test.yaml"
    test_file.write_text(dump(test))
    outcome = run_test_file(test_file, rule_files, tmp_path)
    return "" if outcome.ok else outcome.output
