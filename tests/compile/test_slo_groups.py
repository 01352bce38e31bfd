"""SLO groups computed whole (issue 14 scope 2): each shared group (namespace, period, shard) is
made from all the SLOs that hash into it by one pure function, which `observatory render` and the
operator share; a group over prometheus-operator's size limit is an error naming its SLOs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from observatory.compile.slo import slo_shard

REPO = Path(__file__).resolve().parents[2]


def same_group_names(count: int, period_shard_of: str = "slo-0") -> list[str]:
    return [n for n in (f"slo-{i}" for i in range(200 * count)) if slo_shard(n) == slo_shard(period_shard_of)][:count]


def slo_document(name: str, description: str = "", namespace: str = "team-a") -> dict:
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "SLO", "metadata": {"name": name, "namespace": namespace},
            "spec": {"objective": 99.5, "indicator": {"llm": {"preset": "availability"}},
                     **({"description": description} if description else {})}}


def observatory(*args: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "observatory", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_a_full_group_is_an_error_naming_its_slos_in_validate_and_render_never_a_traceback() -> None:
    """200 SLOs with 1 KB descriptions hashing into one group pass 512 KiB: `loader.compile_all`
    assembled the groups outside any `try`, so validate and render died with a traceback."""
    names = same_group_names(200)
    stdin = yaml.safe_dump_all([slo_document(n, "x" * 1000) for n in names])
    for command in ("validate", "render"):
        result = observatory(command, "-f", "-", stdin=stdin)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
        group = f"observatory-slos-30d-{slo_shard(names[0]):02d}"
        problems = [line for line in result.stderr.splitlines() if f"PrometheusRule {group}" in line]
        assert problems, result.stderr
        # Every SLO left out of the full group is named, on the line of its own document.
        left_out = [n for n in names if any(f"SLO/team-a/{n}: " in line for line in problems)]
        assert left_out and names[0] not in left_out and len(left_out) < len(names)
        assert all("512 KiB" in line and "another namespace" in line for line in problems)
