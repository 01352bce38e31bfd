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


PROVIDER_STACK = {**STACK, "spec": {
    "langfuse": {"enabled": False}, "defaultRules": {"spendLabels": ["gen_ai_provider_name"]},
    # gpt-4o through Azure at its own price; every other provider keeps the built-in gpt-4o price ($10 output).
    "pricing": [{"model": "gpt-4o", "provider": "azure.ai.openai", "inputUSDPerMillionTokens": 2.5,
                 "outputUSDPerMillionTokens": 20}]}}


def provider_tokens(model: str, provider: str | None) -> dict[str, str]:
    label = f', gen_ai_provider_name="{provider}"' if provider else ""
    return {"series": f'gen_ai_client_token_usage_sum{{namespace="team-a", gen_ai_request_model="{model}", '
                      f'gen_ai_token_type="output"{label}}}', "values": "0+100000x130"}


def test_a_price_for_a_provider_wins_over_the_price_without_one_for_that_provider_only(tmp_path: Path, promtool: Path):
    # 100k output tokens a minute each: $1 a minute at $10 per million, $2 at Azure's $20, $1.50 for
    # claude-sonnet-4 on Bedrock (no entry of its own: the built-in $15).
    per_minute = ("round(sum by (gen_ai_request_model, gen_ai_provider_name) "
                  "(observatory:gen_ai_spend_usd:rate5m{namespace=\"team-a\"}) * 60, 0.001)")
    tests = [{
        "interval": "1m",
        "input_series": [provider_tokens("gpt-4o", "openai"), provider_tokens("gpt-4o", "azure.ai.openai"),
                         provider_tokens("gpt-4o", None), provider_tokens("claude-sonnet-4", "aws.bedrock")],
        "promql_expr_test": [
            {"expr": per_minute, "eval_time": "1h", "exp_samples": [
                {"labels": '{gen_ai_request_model="gpt-4o", gen_ai_provider_name="openai"}', "value": 1},
                {"labels": '{gen_ai_request_model="gpt-4o", gen_ai_provider_name="azure.ai.openai"}', "value": 2},
                {"labels": '{gen_ai_request_model="gpt-4o"}', "value": 1},
                {"labels": '{gen_ai_request_model="claude-sonnet-4", gen_ai_provider_name="aws.bedrock"}', "value": 1.5}]},
            # Each token series priced once: one spend series each.
            {"expr": 'count(observatory:gen_ai_spend_usd:rate5m{namespace="team-a"})', "eval_time": "1h",
             "exp_samples": [{"labels": "{}", "value": 4}]},
            # The hour per provider, as the stack's spendLabels record it.
            {"expr": "round(sum by (gen_ai_provider_name) (observatory:gen_ai_spend_usd:1h), 0.001)", "eval_time": "2h",
             "exp_samples": [{"labels": '{gen_ai_provider_name="openai"}', "value": 60},
                             {"labels": '{gen_ai_provider_name="azure.ai.openai"}', "value": 120},
                             {"labels": "{}", "value": 60},
                             {"labels": '{gen_ai_provider_name="aws.bedrock"}', "value": 90}]},
        ],
    }]
    outcome = run_promtool([parse_resource(PROVIDER_STACK)], tests, "5m", tmp_path, OPTIONS)
    assert outcome.ok, explain(outcome, tmp_path)


@pytest.mark.parametrize(("entry", "message"), [
    ({"provider": ""}, "spec.pricing.1.provider: String should have at least 1 character"),
    ({"provider": "azure.ai.openai"}, "more than one price for gpt-4o of azure.ai.openai from the beginning; give each "
                                      "entry of a model (and provider) its own effectiveFrom"),
])
def test_hostile_provider_prices_are_refused_naming_the_field(entry: dict, message: str):
    pricing = PROVIDER_STACK["spec"]["pricing"]
    stack = {**PROVIDER_STACK, "spec": {**PROVIDER_STACK["spec"], "pricing": [*pricing, {**pricing[0], **entry}]}}
    with pytest.raises(CompileError, match=re.escape(message)):
        parse_resource(stack)


def test_the_demo_sizes_its_spike_with_the_price_the_rules_choose_for_the_provider():
    """As the promtool test above: Azure's own gpt-4o price, every other provider the built-in one."""
    import datetime

    from observatory.compile.defaults import catalogue_for
    from observatory.compile.prices import DEFAULT_CATALOGUE, price_of

    catalogue = catalogue_for(parse_resource(PROVIDER_STACK), DEFAULT_CATALOGUE)
    day = datetime.date(2026, 12, 1)
    assert price_of(catalogue, "gpt-4o", "azure.ai.openai", day).output_usd_per_million == 20
    assert price_of(catalogue, "gpt-4o", "openai", day).output_usd_per_million == 10
    assert price_of(catalogue, "gpt-4o", None, day).output_usd_per_million == 10
    assert price_of(catalogue, "no-such-model", "openai", day) is None
    # A dated entry prices from its day on, the earlier one before it.
    dated = (*catalogue, replace(catalogue[0], output_usd_per_million=99, effective_from=datetime.date(2027, 1, 1)))
    assert price_of(dated, catalogue[0].model, catalogue[0].provider, day) == catalogue[0]
    assert price_of(dated, catalogue[0].model, catalogue[0].provider, datetime.date(2027, 1, 1)).output_usd_per_million == 99
