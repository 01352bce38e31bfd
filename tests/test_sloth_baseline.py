"""The benchmark's Sloth-structured baseline: its shape, promtool's verdict, and that it alerts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

# bench/ is not an installed package; the benchmark runs from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.slo_eval import backfill, equivalence, rulesets, sloth_baseline  # noqa: E402


def _groups(tmp_path: Path, count: int) -> list[dict]:
    rulesets.write_slos(str(tmp_path / "slos"), count)
    return sloth_baseline.rule_groups(sloth_baseline.load_folder(str(tmp_path / "slos")))


def test_seventeen_rules_per_slo_in_three_groups(tmp_path, promtool):
    groups = _groups(tmp_path, 2)
    assert [len(g["rules"]) for g in groups] == [8, 7, 2] * 2
    sli = [r["record"] for r in groups[0]["rules"]]
    assert sli == [f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")]
    # Every SLI window reads the raw series; the period one averages the recorded 5m ratio.
    assert all("rate(http_requests_total{" in r["expr"] for r in groups[0]["rules"][:7])
    assert "sum_over_time(slo:sli_error:ratio_rate5m{" in groups[0]["rules"][7]["expr"]
    path = tmp_path / "rules.yml"
    rulesets.write_rule_file(str(path), groups)
    out = subprocess.run([str(promtool), "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 34 rules found" in out.stdout


def test_only_the_5m_ratio_needs_history(tmp_path):
    levels = backfill.levels(_groups(tmp_path, 1))
    assert [[r["record"] for g in level for r in g["rules"]] for level in levels] == [["slo:sli_error:ratio_rate5m"]]


def test_page_fires_on_a_100x_spike_and_ticket_outlasts_it(tmp_path, promtool):
    scenario = equivalence.Scenario("spike", "", ((60, 0, 1), (15, 100, 1), (130, 0, 1)))
    rule_file = tmp_path / "baseline.yml"
    groups = _groups(tmp_path, 1)
    rulesets.write_rule_file(str(rule_file), groups)
    order = equivalence.evaluation_order(groups)
    # Recordings before the alerts that read them, so each step's alerts see that step's ratios,
    # whatever order the groups come in; recording groups keep theirs.
    sli, meta, alerts = (g["name"] for g in groups)
    assert equivalence.evaluation_order(groups[::-1]) == [meta, sli, alerts]
    timeline = equivalence._run(equivalence.Job(scenario, str(rule_file), order, str(tmp_path / "test.yml"), 30, 0))
    (page_start, page_end), = timeline["page"]  # seconds
    assert 60 * 60 < page_start < 75 * 60
    # It resolves once the spike has left the 30m window (6h and 30m above 6x keep it until then).
    assert page_end is not None and (75 + 25) * 60 <= page_end <= (75 + 31) * 60
    (ticket_start, ticket_end), = timeline["ticket"]
    # 6h and 3d above 1x: 15 minutes at 100x keep it firing for the whole scenario.
    assert ticket_start <= page_start and ticket_end is None
    with open(rule_file) as f:
        assert yaml.safe_load(f)["groups"][2]["rules"][0]["labels"]["sloth_severity"] == "page"
