"""The price catalogue as the invoice reads it: dated prices, and errors that name the field.

A price change prices the usage after it at the new rate and leaves the spend before it as it was:
promtool runs the compiled rules across a change (the stack's spec.pricing, a second entry of a model
with effectiveFrom). The cached-token formula itself is proven in rule_types/cost-cache.yaml.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
from observatory.compile import CompileError
from observatory.models import parse_resource
from promtool_cases import explain, run_promtool

# promtool's clock starts at 1970-01-01T00:00Z: the new price starts a day in.
STACK = {
    "apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStack",
    "metadata": {"name": "llm", "namespace": "team-a"},
    "spec": {"langfuse": {"enabled": False},  # its default rule pack brings the prices
             "pricing": [{"model": "gpt-4o", "inputUSDPerMillionTokens": 2.5, "outputUSDPerMillionTokens": 10},
                         {"model": "gpt-4o", "inputUSDPerMillionTokens": 2.5, "outputUSDPerMillionTokens": 20,
                          "effectiveFrom": "1970-01-02"}]},
}
BUDGET = {
    "apiVersion": "observatory.dev/v1alpha1", "kind": "AlertRule",
    "metadata": {"name": "hourly-spend", "namespace": "team-a"},
    "spec": {"severity": "warning", "cost": {"budgetUSD": 80, "window": "1h"}},
}


def test_a_price_change_prices_new_usage_at_the_new_rate_and_keeps_the_old_spend(tmp_path: Path, promtool: Path):
    # 100k output tokens a minute: $1 a minute at $10 per million, $2 from day 2 at $20.
    tests = [{
        "interval": "1m",
        "input_series": [
            {"series": 'gen_ai_client_token_usage_sum{namespace="team-a", gen_ai_request_model="gpt-4o", gen_ai_token_type="output"}',
             "values": "0+100000x1600"},
            {"series": 'gen_ai_client_token_usage_sum{namespace="team-b", gen_ai_request_model="gpt-4o", gen_ai_token_type="output"}',
             "values": "0+900000x1600"},
        ],
        "alert_rule_test": [
            {"eval_time": "23h59m", "alertname": "HourlySpend", "exp_alerts": []},  # $60 at the old price
            # Half an hour at each price: the hour's 60 samples, 29 at the old and 31 at the new price
            # ($29 + $62; the sample at the change prices its minute at the new price, the one
            # recording interval a price change can misplace). Repricing the whole hour would say $120.
            {"eval_time": "24h30m", "alertname": "HourlySpend", "exp_alerts": [{
                "exp_labels": {"namespace": "team-a", "observatory_alertrule": "hourly-spend", "severity": "warning"},
                "exp_annotations": {"summary": "LLM spend $91.00 over the last 1h (budget $80)"}}]},
        ],
        "promql_expr_test": [
            # The hour before the change, read after it, still at the old price.
            {"expr": 'round(sum(avg_over_time(observatory:gen_ai_spend_usd:rate5m{namespace="team-a"}[1h] offset 2h)) * 3600, 0.01)',
             "eval_time": "25h", "exp_samples": [{"labels": "{}", "value": 60}]},
            {"expr": 'observatory:gen_ai_token_price_usd{namespace="team-a", gen_ai_request_model="gpt-4o", gen_ai_token_type="output"}',
             "eval_time": "25h", "exp_samples": [{"labels": 'observatory:gen_ai_token_price_usd{namespace="team-a", '
                                                           'gen_ai_request_model="gpt-4o", gen_ai_token_type="output"}',
                                                  "value": 2e-05}]},
        ],
    }]
    outcome = run_promtool([parse_resource(STACK), parse_resource(BUDGET)], tests, "1m", tmp_path)
    assert outcome.ok, explain(outcome, tmp_path)


def test_two_prices_of_a_model_from_the_same_day_are_refused_naming_the_fix():
    doubled = {**STACK, "spec": {**STACK["spec"], "pricing": [STACK["spec"]["pricing"][0]] * 2}}
    with pytest.raises(CompileError, match="more than one price for gpt-4o from the beginning; give each entry"):
        parse_resource(doubled)


def test_a_price_catalogue_file_with_a_bad_entry_is_an_error_naming_it(tmp_path: Path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("- model: gpt-4o\n  inputUSDPerMillionTokens: 2.5\n")
    rule = tmp_path / "rule.yaml"
    rule.write_text("apiVersion: observatory.dev/v1alpha1\nkind: AlertRule\nmetadata: {name: r, namespace: team-a}\n"
                    "spec: {severity: warning, cost: {budgetUSD: 1, window: 1h}}\n")
    result = subprocess.run([sys.executable, "-m", "observatory", "render", "-f", str(rule), "--prices", str(prices)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert f"--prices {prices}: 0.outputUSDPerMillionTokens: Field required" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_request_cost_the_demo_plans_with_is_the_formula_promtool_proves():
    """rule_types/cost-cache.yaml: 10,000 input tokens (6,000 cache reads, 2,000 cache writes) and 500
    output tokens of claude-sonnet-4 cost $0.0228."""
    from observatory.compile.prices import DEFAULT_CATALOGUE, request_cost

    (sonnet,) = [p for p in DEFAULT_CATALOGUE if p.model == "claude-sonnet-4"]
    assert request_cost(sonnet, 10_000, 500, cache_read=6_000, cache_creation=2_000) == pytest.approx(0.0228)
    assert request_cost(sonnet, 10_000, 500) == pytest.approx(0.0375)  # no cache: every input token at $3


def test_the_catalogue_is_built_once_per_namespace_and_each_caller_gets_its_own_copy():
    """Every cost rule of a namespace shares one catalogue: built once, but a caller that changes
    what it got (the adapter adds owners and annotations) must not change the next caller's."""
    from observatory.compile.prices import DEFAULT_CATALOGUE, price_objects
    from observatory.compile.rules import Tenant
    from observatory.conventions import DEFAULT, Conventions

    first = price_objects(DEFAULT_CATALOGUE, Tenant("team-a", DEFAULT), "Namespace", "team-a")
    pristine = copy.deepcopy(first)
    first[0]["metadata"]["labels"]["changed"] = "by a caller"
    first[0]["spec"]["groups"].pop()
    assert price_objects(DEFAULT_CATALOGUE, Tenant("team-a", DEFAULT), "Namespace", "team-a") == pristine
    # Other inputs are other objects: the namespace, the catalogue, the conventions.
    other_namespace = price_objects(DEFAULT_CATALOGUE, Tenant("team-b", DEFAULT), "Namespace", "team-b")
    assert other_namespace[0]["metadata"]["namespace"] == "team-b"
    assert price_objects(DEFAULT_CATALOGUE[:1], Tenant("team-a", DEFAULT), "Namespace", "team-a") != pristine
    selected = Conventions(rule_selector_labels={"release": "other"})
    assert price_objects(DEFAULT_CATALOGUE, Tenant("team-a", selected), "Namespace", "team-a")[0]["metadata"]["labels"]["release"] == "other"
