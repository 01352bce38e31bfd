"""`observatory test` runs each promtool test file against the rule groups its assertions reach:
promtool evaluates every group at every step, so the rest only cost time (the examples' cost test
took 3/4 of `observatory test -f examples` with every SLO window group beside it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from observatory.promtool import promtool_binary, run_test_file
from observatory.yamlio import dump

pytestmark = pytest.mark.skipif(not __import__("shutil").which("promtool"), reason="promtool not on PATH")

RULES = {
    "raw.rules.yaml": [{"name": "first", "rules": [{"record": "a:x", "expr": "sum(requests_total)"}]}],
    "chain.rules.yaml": [
        {"name": "second", "rules": [{"record": "b:y", "expr": "a:x * 2"}]},
        {"name": "alert", "rules": [{"alert": "Doubled", "expr": "b:y > 1"}]},
        {"name": "unrelated", "rules": [{"record": "d:z", "expr": "sum(other_total)"}]},
    ],
    "alerts.rules.yaml": [{"name": "meta", "rules": [{"alert": "AnyFiring", "expr": 'count(ALERTS{alertstate="firing"}) > 0'}]}],
}


def _run(tmp_path: Path, tests: list[dict]) -> tuple[bool, str, dict[str, list[str]]]:
    promtool_binary()
    rule_files = []
    for name, groups in RULES.items():
        rule_files.append(tmp_path / name)
        rule_files[-1].write_text(dump({"groups": groups}))
    test_file = tmp_path / "case.test.yaml"
    test_file.write_text(dump({"rule_files": [], "evaluation_interval": "1m", "tests": tests}))
    outcome = run_test_file(test_file, rule_files, tmp_path)
    used = yaml.safe_load((tmp_path / "000-case.test.yaml").read_text())["rule_files"]
    groups = {Path(f).name: [g["name"] for g in yaml.safe_load(Path(f).read_text())["groups"]] for f in used}
    return outcome.ok, outcome.output, groups


SERIES = [{"series": "requests_total", "values": "1x10"}, {"series": "other_total", "values": "1x10"}]


def test_an_alert_keeps_the_groups_recording_what_it_reads_across_files_and_no_other(tmp_path):
    ok, output, groups = _run(tmp_path, [{
        "interval": "1m", "input_series": SERIES,
        "alert_rule_test": [{"eval_time": "5m", "alertname": "Doubled", "exp_alerts": [{"exp_labels": {}}]}],
    }])
    assert ok, output  # fires only if a:x and b:y are still recorded
    assert groups == {"raw.rules.yaml": ["first"], "chain.rules.yaml": ["second", "alert"]}


def test_an_expression_test_keeps_what_it_reads(tmp_path):
    ok, output, groups = _run(tmp_path, [{
        "interval": "1m", "input_series": SERIES,
        "promql_expr_test": [{"expr": "b:y", "eval_time": "5m", "exp_samples": [{"labels": "b:y", "value": 2}]}],
    }])
    assert ok, output
    assert groups == {"raw.rules.yaml": ["first"], "chain.rules.yaml": ["second"]}


def test_a_read_of_the_alerts_series_keeps_every_rule(tmp_path):
    ok, output, groups = _run(tmp_path, [{
        "interval": "1m", "input_series": SERIES,
        "alert_rule_test": [{"eval_time": "5m", "alertname": "AnyFiring", "exp_alerts": [{"exp_labels": {}}]}],
    }])
    assert ok, output  # AnyFiring fires only because Doubled does
    assert groups == {name: [g["name"] for g in RULES[name]] for name in RULES}


@pytest.mark.parametrize("expr", ['{__name__="b:y"}', "sum("])
def test_nameless_or_broken_reads_keep_every_rule_and_promtool_judges(tmp_path, expr):
    ok, output, groups = _run(tmp_path, [{
        "interval": "1m", "input_series": SERIES,
        "promql_expr_test": [{"expr": expr, "eval_time": "5m", "exp_samples": [{"labels": "b:y", "value": 2}]}],
    }])
    assert groups == {name: [g["name"] for g in RULES[name]] for name in RULES}
    assert ok == (expr != "sum("), output


def test_groups_of_one_name_in_two_namespaces_go_before_the_groups_reading_them(tmp_path):
    """Each stack's prices group records the same series: read as a cycle between the two, the
    order fell back to file order and a budget read the spend of the step before."""
    from observatory.promtool import _producers_first

    files = []
    for namespace in ("team-a", "team-b"):
        files.append(tmp_path / f"{namespace}-budget.rules.yaml")
        files[-1].write_text(dump({"groups": [{"name": "budget", "rules": [{"alert": "Over", "expr": "spend > 1"}]}]}))
        files.append(tmp_path / f"{namespace}-prices.rules.yaml")
        files[-1].write_text(dump({"groups": [{"name": "prices", "rules": [
            {"record": "price", "expr": "vector(1)"}, {"record": "spend", "expr": "sum(tokens) * on() price"}]}]}))
    assert _producers_first(files) == ["prices", "budget"]
