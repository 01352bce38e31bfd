"""Prometheus' own engine as the judge of compiled rules: compile resources, run `promtool test rules`.

Shared by the promtool behaviour tests of tests/compile (rule types and SLO burn tiers).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from observatory.compile import CompileOptions, compile_bundle
from observatory.models.common import CustomResource
from observatory.promtool import Outcome, run_test_file, write_rule_files
from observatory.yamlio import dump


def run_promtool(resources: Iterable[CustomResource], tests: list[dict[str, Any]], evaluation_interval: str,
                 workdir: Path, options: CompileOptions | None = None, group_eval_order: Sequence[str] = ()) -> Outcome:
    """Compile `resources` (with the shared price catalogue, or `options`') and run promtool `tests` against the rules.

    promtool evaluates the groups at each step in an order of its own making, a fresh one per run (a Go
    map's, cmd/promtool/unittest.go orderedGroups), unless `group_eval_order` names them all."""
    objects = compile_bundle(resources, options or CompileOptions())
    rule_files = write_rule_files(objects, workdir)
    test_file = workdir / "cases.test.yaml"
    order = {"group_eval_order": list(group_eval_order)} if group_eval_order else {}
    test_file.write_text(dump({"rule_files": [], "evaluation_interval": evaluation_interval, **order, "tests": tests}))
    return run_test_file(test_file, rule_files, workdir)


def explain(outcome: Outcome, workdir: Path) -> str:
    """promtool's verdict followed by the rule files it judged, for a readable failure."""
    rules = "\n".join(f"--- {path.name}\n{path.read_text()}" for path in sorted(workdir.glob("*.rules.yaml")))
    return f"promtool test rules failed:\n{outcome.output}\n{rules}"
