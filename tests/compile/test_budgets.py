"""A budget's forecast alert, judged by promtool: silent at a rate that stays under the budget, firing
with the hours left once a faster rate would reach it, silent again once the budget is reached (the
budget alert itself takes over). Warning steps are proven in rule_types/cost-steps.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
from observatory.compile import CompileError
from observatory.models import parse_resource
from promtool_cases import explain, run_promtool

BUDGET = {
    "apiVersion": "observatory.dev/v1alpha1", "kind": "AlertRule",
    "metadata": {"name": "daily-spend", "namespace": "team-a"},
    "spec": {"severity": "critical", "cost": {"budgetUSD": 240, "window": "1d", "forecast": {"lookback": "1h"}}},
}
LABELS = {"namespace": "team-a", "observatory_alertrule": "daily-spend", "severity": "warning"}


def test_the_forecast_warns_with_the_hours_left_only_while_the_recent_rate_would_reach_the_budget(tmp_path: Path, promtool: Path):
    # gpt-4o output at $10 per million: 10,000 tokens a minute is $6 an hour ($144 a day, under $240),
    # from 26 h on 40,000 ($24 an hour, $576 a day).
    tests = [{
        "interval": "1m",
        "input_series": [
            {"series": 'gen_ai_client_token_usage_sum{namespace="team-a", gen_ai_request_model="gpt-4o", gen_ai_token_type="output"}',
             "values": "0+10000x1560 15640000+40000x600"},
            {"series": 'gen_ai_client_token_usage_sum{namespace="team-b", gen_ai_request_model="gpt-4o", gen_ai_token_type="output"}',
             "values": "0+90000x2160"},
        ],
        "alert_rule_test": [
            {"eval_time": "25h", "alertname": "DailySpendForecast", "exp_alerts": []},
            # An hour and ten minutes into $24 an hour: the day holds ~$165 and grows ~$17 an hour.
            {"eval_time": "27h10m", "alertname": "DailySpendForecast", "exp_alerts": [{
                "exp_labels": LABELS,
                "exp_annotations": {"summary": "At the spend rate of the last 1h, spend over the last 1d reaches the "
                                               "budget ($240) in 4.4 h"}}]},
            {"eval_time": "33h", "alertname": "DailySpendForecast", "exp_alerts": []},  # over the budget
        ],
    }]
    outcome = run_promtool([parse_resource(BUDGET)], tests, "1m", tmp_path)
    assert outcome.ok, explain(outcome, tmp_path)


def test_steps_out_of_order_are_refused_naming_the_field():
    spec = {**BUDGET["spec"], "cost": {"budgetUSD": 100, "steps": [{"percent": 90, "severity": "warning"},
                                                                     {"percent": 80, "severity": "info"}]}}
    with pytest.raises(CompileError, match="spec.cost.steps: steps must have increasing, distinct percents, got 90, 80"):
        parse_resource({**BUDGET, "spec": spec})
