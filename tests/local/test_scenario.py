"""The demo's incident on the session's local stack: the alerts must reach the stand-in receivers."""

from __future__ import annotations

import io
from dataclasses import replace

from observatory.compile import CompileOptions
from observatory.local.demo import Display, plan, run_scenario, summary


def test_error_burst_pages_and_cost_spike_warns_at_the_local_receiver(local_stack) -> None:
    options = CompileOptions()
    scenario = replace(plan(local_stack, options.conventions, options), healthy_seconds=6, phase_timeout=90)
    assert (scenario.page.alertname, scenario.cost.alertname) == ("SLOErrorBudgetBurnPage", "LlmHourlyBudget")
    out = io.StringIO()
    result = run_scenario(local_stack, scenario, options.conventions, Display(out))
    # The budget's 80 % step (info) warns before its 100 % step (warning), both to the team's Slack.
    assert (scenario.cost_warning.severity, scenario.cost.severity) == ("info", "warning")
    assert set(result.arrived) == {e.key for e in scenario.expected}, out.getvalue()
    assert result.arrived[scenario.cost_warning.key] <= result.arrived[scenario.cost.key], out.getvalue()
    firing = [n for n in result.notifications if n.status == "firing"]
    # Delivered as prometheus-operator would route them: the page to PagerDuty, the budget to Slack.
    assert {(n.kind, n.receiver) for n in firing if n.mentions(scenario.page.alertname)} == \
        {("pagerduty", "team-a/slo-llm-availability/oncall")}
    assert {(n.kind, n.receiver) for n in firing if n.mentions(scenario.cost.alertname)} == \
        {("slack", "team-a/alertrule-llm-hourly-budget/team-slack")}
    # Nothing from the namespace's daily budget ($1000): the spike was sized from the hourly one.
    assert not any(n.mentions("LlmDailyBudget") for n in firing)
    assert result.spend_usd > 50
    # Every request's trace is in Phoenix, and the PII in the prompts is not.
    assert result.traces_stored == result.requests > 0
    assert result.spans_stored == 2 * result.requests
    assert result.pii_prompts > 0 and result.redactions >= result.pii_prompts and result.leaks == 0
    summary(local_stack, scenario, result, 60.0, Display(out))
    printed = out.getvalue()
    assert "result        PASS" in printed
    assert all(url in printed for url in local_stack.info.urls.values())
    assert f"{result.traces_stored} traces" in printed and f"{result.leaks} raw values found" in printed
