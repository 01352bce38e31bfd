"""bench/slo_eval's interval-faithful equivalence: a group slower than promtool's step yields only at
its own evaluation times, and nothing may read such a record at an instant (promtool's stale markers
would hide it between evaluations, where a real Prometheus keeps the last sample for 5 minutes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

# bench/ is not an installed package; the benchmark runs from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.slo_eval import equivalence  # noqa: E402

SLOW = {"name": "slow", "interval": "5m", "rules": [{"record": "t", "expr": "vector(time())"}]}


def test_a_slow_group_yields_only_at_its_own_interval_and_phase(tmp_path: Path, promtool: Path) -> None:
    gated = equivalence.gate_slow_groups([SLOW], phase=60)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": gated}))
    checks = [("max(last_over_time(t[10m]))", 200, 60), ("max(last_over_time(t[10m]))", 400, 360), ("count_over_time(t[10m])", 400, 2)]
    test = {"rule_files": ["rules.yml"], "evaluation_interval": f"{equivalence.STEP}s", "tests": [{
        "interval": f"{equivalence.STEP}s", "input_series": [],
        "promql_expr_test": [{"expr": expr, "eval_time": f"{at}s", "exp_samples": [{"labels": "{}", "value": value}]}
                             for expr, at, value in checks]}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    result = subprocess.run([str(promtool), "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_ungated_group_runs_every_step_in_promtool(tmp_path: Path, promtool: Path) -> None:
    """Why the gate exists: promtool evaluates a 5m group at every step."""
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [SLOW]}))
    test = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": [],
        "promql_expr_test": [{"expr": "t", "eval_time": "2m", "exp_samples": [{"labels": "t", "value": 120}]}]}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    result = subprocess.run([str(promtool), "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


ALERT_ON_U = {"name": "alerts", "rules": [{"alert": "U", "expr": "u > 1"}]}


def test_an_instant_read_of_a_gated_record_is_refused_where_an_alert_depends_on_it() -> None:
    reader = {"name": "fast", "rules": [{"record": "u", "expr": "t + 1"}]}
    with pytest.raises(ValueError, match="reads \\['t'\\] at an instant"):
        equivalence.gate_slow_groups([SLOW, reader, ALERT_ON_U], phase=0)
    ranged = {"name": "fast", "rules": [{"record": "u", "expr": "last_over_time(t[10m]) + 1"}]}
    assert len(equivalence.gate_slow_groups([SLOW, ranged, ALERT_ON_U], phase=0)) == 3
    # What no alert reads (the budget over the period) decides nothing the equivalence compares.
    assert len(equivalence.gate_slow_groups([SLOW, reader], phase=0)) == 2


def test_a_gated_rule_may_read_its_own_groups_records_at_an_instant(tmp_path: Path, promtool: Path) -> None:
    """Both are evaluated at the same times (the SLO budget reads its period's means so): promtool sees
    the reader's value at the group's phase, from the record of that same evaluation."""
    same = {**SLOW, "rules": [*SLOW["rules"], {"record": "u", "expr": "t + 1"}]}
    gated = equivalence.gate_slow_groups([same], phase=60)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": gated}))
    test = {"rule_files": ["rules.yml"], "evaluation_interval": f"{equivalence.STEP}s", "tests": [{
        "interval": f"{equivalence.STEP}s", "input_series": [],
        "promql_expr_test": [{"expr": "max(last_over_time(u[10m]))", "eval_time": "400s",
                              "exp_samples": [{"labels": "{}", "value": 361}]}]}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    result = subprocess.run([str(promtool), "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    with pytest.raises(ValueError, match="reads \\['t'\\] at an instant"):  # another group still may not
        equivalence.gate_slow_groups([SLOW, {"name": "other", "interval": "5m", "rules": [{"record": "u", "expr": "t + 1"}]},
                                      ALERT_ON_U], 0)


def test_alerts_depending_on_no_slow_group_need_one_phase() -> None:
    alert = {"name": "alerts", "rules": [{"alert": "A", "expr": "up > 1"}]}
    assert equivalence.slowest_gated([SLOW, alert]) == 0
    reading = {"name": "alerts", "rules": [{"alert": "A", "expr": "last_over_time(t[10m]) > 1"}]}
    assert equivalence.slowest_gated([SLOW, reading]) == 300


def test_both_counters_of_a_scenario_cover_all_of_it() -> None:
    """Both request counters have a sample every step to the scenario's end (the good one stopped
    halfway once, so the total was the errors alone from then on)."""
    scenario = equivalence.Scenario("s", "", ((60, 0, 1), (30, 20, 1), (30, 0, 1)))
    for series in equivalence.input_series(scenario):
        steps = sum(int(part.rsplit("x", 1)[1]) + 1 for part in series["values"].split())
        assert steps == scenario.minutes * 60 // equivalence.STEP


def test_a_slow_group_recording_the_same_name_under_other_labels_is_no_dependency() -> None:
    """The budget group records the period's means under the windows' metric name (another
    burn_window): an alert reading the 1h window does not wait for it, one reading the period does."""
    budget = {"name": "budget", "interval": "5m", "rules": [{"record": "m", "expr": "vector(1)", "labels": {"w": "30d"}}]}
    fast = {"name": "fast", "rules": [{"record": "m", "expr": "vector(2)", "labels": {"w": "1h"}}]}
    alert = {"name": "alerts", "rules": [{"alert": "A", "expr": 'm{w="1h"} > 1'}]}
    assert equivalence.slowest_gated([budget, fast, alert]) == 0
    period = {"name": "alerts", "rules": [{"alert": "A", "expr": 'last_over_time(m{w="30d"}[10m]) > 1'}]}
    assert equivalence.slowest_gated([budget, fast, period]) == 300


def test_a_regular_expression_that_refuses_a_slow_records_labels_is_no_dependency() -> None:
    """The 30 s burn-rate rule reads every fast window at once (burn_window=~"5m|1h"): it does not
    read the long windows the 5-minute group records under the same name; a pattern matching one does
    (anchored at both ends, as Prometheus anchors it: "1h" does not match "1h30m")."""
    long = {"name": "long", "interval": "5m", "rules": [{"record": "m", "expr": "vector(1)", "labels": {"w": "1h30m"}}]}
    fast = {"name": "fast", "rules": [{"record": "m", "expr": "vector(2)", "labels": {"w": "1h"}}]}
    reader = {"name": "rates", "rules": [{"record": "r", "expr": 'm{w=~"5m|1h"} * 2'}]}
    alert = {"name": "alerts", "rules": [{"alert": "A", "expr": "r > 1"}]}
    assert equivalence.slowest_gated([long, fast, reader, alert]) == 0
    assert len(equivalence.gate_slow_groups([long, fast, reader, alert], phase=0)) == 4
    everything = {"name": "rates", "rules": [{"record": "r", "expr": 'm{w=~"5m|1h.*"} * 2'}]}
    assert equivalence.slowest_gated([long, fast, everything, alert]) == 300
    with pytest.raises(ValueError, match="reads \\['m'\\] at an instant"):
        equivalence.gate_slow_groups([long, fast, everything, alert], phase=0)
    refused = {"name": "rates", "rules": [{"record": "r", "expr": 'm{w!~"1h30m"} * 2'}]}
    assert equivalence.slowest_gated([long, fast, refused, alert]) == 0


def test_a_set_is_evaluated_at_its_shortest_group_interval_which_every_other_divides() -> None:
    assert equivalence.evaluation_step([{"name": "a", "rules": []}]) == equivalence.STEP
    assert equivalence.evaluation_step([{"name": "a", "interval": "1m", "rules": []}, SLOW]) == 60
    for intervals in (("1m", "90s"), ("45s",)):
        with pytest.raises(ValueError, match="whole multiples"):
            equivalence.evaluation_step([{"name": i, "interval": i, "rules": []} for i in intervals])


def test_evaluations_a_minute_apart_are_run_at_both_offsets_from_the_samples(tmp_path: Path, promtool: Path) -> None:
    """Errors start at 10 min; the first sample showing them is at 10:30. Evaluated every minute on
    the minute, an alert on them first fires at 11:00; evaluated at the other offset, at 10:30: the
    run shifted by 30 s of clean traffic gives that timeline, on the scenario's clock."""
    alert = {"name": "alerts", "interval": "1m", "rules": [
        {"alert": "Errors", "expr": 'sum(rate(http_requests_total{code="500"}[1m])) > 0', "labels": {"slo_tier": "page"}}]}
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [alert]}))
    scenario = equivalence.Scenario("s", "", ((10, 0, 1), (20, 20, 1), (20, 0, 1)))
    fired = {shift: equivalence._run(equivalence.Job(scenario, str(rule_file), ["alerts"], str(tmp_path / f"test-{shift}.yml"),
                                                     60, shift))["page"]
             for shift in (0, 30)}
    assert [start for start, _ in fired[0]] == [660] and [start for start, _ in fired[30]] == [630]
