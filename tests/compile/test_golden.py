"""Golden files: the rendered output of every example, byte for byte. UPDATE_GOLDEN=1 rewrites them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from observatory.cli import main

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = sorted(p for folder in ("alertrules", "slos", "stacks") for p in (REPO / "examples" / folder).glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_render_matches_golden(example: Path, capsys) -> None:
    assert main(["render", "-f", str(example)]) == 0
    rendered = capsys.readouterr().out
    golden = GOLDEN / example.parent.name / example.name
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(rendered)
    assert golden.exists(), f"{golden} missing; run with UPDATE_GOLDEN=1"
    assert rendered == golden.read_text()


def test_render_is_deterministic(capsys) -> None:
    outputs = []
    for _ in range(2):
        assert main(["render", "-f", str(REPO / "examples" / "alertrules"), str(REPO / "examples" / "slos")]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0]
