"""Spend you can read: USD over the last hour and the last day per namespace, model, token type and the
labels a stack chooses (spec.defaultRules.spendLabels), recorded by the stack's price group
(compile/prices.py), proven with promtool.

Cheap: the rules are compiled for a 5-minute price interval and promtool evaluates every 5 minutes
(each evaluation still reads the 1-minute token samples), so 26 hours are about 300 evaluations.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from observatory import promql
from observatory.compile import CompileError, CompileOptions, compile_bundle
from observatory.compile.dashboards import dashboards
from observatory.compile.rules import Tenant
from observatory.conventions import DEFAULT
from observatory.models import parse_resource
from promtool_cases import explain, run_promtool

OPTIONS = CompileOptions(conventions=replace(DEFAULT, prices_interval="5m"))
STACK = {
    "apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStack",
    "metadata": {"name": "llm", "namespace": "team-a"},
    "spec": {"langfuse": {"enabled": False}, "defaultRules": {"spendLabels": ["team"]}},
}


def tokens(namespace: str, model: str, team: str, instance: str, values: str) -> dict[str, str]:
    return {"series": f'gen_ai_client_token_usage_sum{{namespace="{namespace}", gen_ai_request_model="{model}", '
                      f'gen_ai_token_type="output", team="{team}", instance="{instance}"}}', "values": values}


def spend(model: str, team: str, usd: float) -> dict[str, object]:
    return {"labels": f'{{namespace="team-a", gen_ai_request_model="{model}", gen_ai_token_type="output", team="{team}"}}',
            "value": usd}


def test_hourly_and_daily_spend_per_model_and_team_are_what_was_spent(tmp_path: Path, promtool: Path):
    # Default catalogue: gpt-4o output $10 per million, claude-sonnet-4 output $15 per million.
    # team search: two pods of gpt-4o, 100k tokens a minute each, $2 a minute for all 26 hours;
    # team chat: claude-sonnet-4 from 20h on, 40k tokens a minute, $0.60 a minute.
    day = "round(observatory:gen_ai_spend_usd:1d, 0.001)"
    hour = "round(observatory:gen_ai_spend_usd:1h, 0.001)"
    tests = [{
        "interval": "1m",
        "input_series": [
            tokens("team-a", "gpt-4o", "search", "a", "0+100000x1560"),
            tokens("team-a", "gpt-4o", "search", "b", "0+100000x1560"),
            tokens("team-a", "claude-sonnet-4", "chat", "a", "_x1200 0+40000x360"),
            tokens("team-b", "gpt-4o", "search", "a", "0+900000x1560"),  # another namespace: never counted
        ],
        "promql_expr_test": [
            # Two hours in, the day is the two hours there are: tiles before the data add nothing.
            {"expr": day, "eval_time": "2h", "exp_samples": [spend("gpt-4o", "search", 240)]},
            # 26 hours in, the day is the last 24 hours' $2880, not the $3120 since the start; chat's day
            # is its 6 hours ($216) although 18 of its 24 hourly tiles have no series.
            {"expr": day, "eval_time": "26h", "exp_samples": [spend("gpt-4o", "search", 2880),
                                                              spend("claude-sonnet-4", "chat", 216)]},
            {"expr": hour, "eval_time": "26h", "exp_samples": [spend("gpt-4o", "search", 120),
                                                               spend("claude-sonnet-4", "chat", 36)]},
            # Per team, a sum of the recorded series at query time.
            {"expr": "round(sum by (team) (observatory:gen_ai_spend_usd:1d), 0.001)", "eval_time": "26h",
             "exp_samples": [{"labels": '{team="search"}', "value": 2880}, {"labels": '{team="chat"}', "value": 216}]},
        ],
    }]
    outcome = run_promtool([parse_resource(STACK)], tests, "5m", tmp_path, OPTIONS)
    assert outcome.ok, explain(outcome, tmp_path)


@pytest.mark.parametrize(("labels", "message"), [
    (["team", "team"], "spec.defaultRules.spendLabels: team listed more than once; list each label once"),
    (["a", "b", "c", "d", "e", "f"], "spec.defaultRules.spendLabels: List should have at most 5 items"),
    (["__name__"], "spec.defaultRules.spendLabels.0: label names starting with __ are reserved"),
    (["team-name"], "spec.defaultRules.spendLabels.0: String should match pattern"),
])
def test_hostile_spend_labels_are_refused_naming_the_field(labels: list[str], message: str):
    with pytest.raises(CompileError, match=re.escape(message)):
        parse_resource({**STACK, "spec": {**STACK["spec"], "defaultRules": {"spendLabels": labels}}})


def test_the_label_the_day_tiles_use_is_refused_as_a_spend_label():
    stack = parse_resource({**STACK, "spec": {**STACK["spec"], "defaultRules": {"spendLabels": ["observatory_hour"]}}})
    with pytest.raises(CompileError, match="spec.defaultRules.spendLabels: observatory_hour is the label"):
        compile_bundle([stack])


def test_the_dashboards_spend_tables_show_the_recorded_spend_per_model_and_per_label_set(tmp_path: Path, promtool: Path):
    """The queries exactly as the stack's dashboard holds them, evaluated by promtool over the rules."""
    stack = parse_resource(STACK)
    [board] = [b for b in dashboards(Tenant("team-a", DEFAULT), ("team",)) if b.key == "llm-overview"]
    tables = {panel.title: panel.queries for panel in board.panels if panel.kind == "table"}
    assert sorted(tables) == ["Spend per model, last hour and day", "Spend per team, last hour and day"]
    expected = {"Spend per model, last hour and day": ('{namespace="team-a", gen_ai_request_model="gpt-4o"}', 120, 240),
                "Spend per team, last hour and day": ('{namespace="team-a", team="search"}', 120, 240)}
    cases = [{"expr": f"round({promql.render(query.expr)}, 0.001)", "eval_time": "2h",
              "exp_samples": [{"labels": expected[title][0], "value": expected[title][1 + index]}]}
             for title, queries in tables.items() for index, query in enumerate(queries)]
    tests = [{"interval": "1m",
              "input_series": [tokens("team-a", "gpt-4o", "search", pod, "0+100000x130") for pod in ("a", "b")],
              "promql_expr_test": cases}]
    outcome = run_promtool([stack], tests, "5m", tmp_path, OPTIONS)
    assert outcome.ok, explain(outcome, tmp_path)
