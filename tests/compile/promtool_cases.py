"""Prometheus' own engine as the judge of compiled rules: compile resources, run `promtool test rules`.

Shared by the promtool behaviour tests of tests/compile (rule types and SLO burn tiers).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from observatory.compile import CompileOptions, compile_bundle
from observatory.models.common import CustomResource
from observatory.promtool import Outcome, run_test_file, write_rule_files
from observatory.yamlio import dump


def run_promtool(resources: Iterable[CustomResource], tests: list[dict[str, Any]], evaluation_interval: str,
                 workdir: Path, options: CompileOptions | None = None) -> Outcome:
    """Compile `resources` (with the shared price catalogue) and run promtool `tests` against the rules."""
    objects = compile_bundle(resources, options or CompileOptions())
    rule_files = write_rule_files(objects, workdir)
    test_file = workdir / "cases.test.yaml"
    test_file.write_text(dump({"rule_files": [], "evaluation_interval": evaluation_interval, "tests": tests}))
    return run_test_file(test_file, rule_files, workdir)


def explain(outcome: Outcome, workdir: Path) -> str:
    """promtool's verdict followed by the rule files it judged, for a readable failure."""
    rules = "\n".join(f"--- {path.name}\n{path.read_text()}" for path in sorted(workdir.glob("*.rules.yaml")))
    return f"promtool test rules failed:\n{outcome.output}\n{rules}"
