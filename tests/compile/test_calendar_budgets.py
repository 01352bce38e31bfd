"""Calendar budgets judged by promtool: the spend since the period's local start resets exactly at local
midnight, Monday (or weekStart) 00:00 and the 1st, across a DST change; the forecast says in how long
the budget is exceeded, only when that is before the period ends. Steps: rule_types/cost-calendar-day.yaml.

promtool's clock starts at 1970-01-01T00:00Z and evaluates every group at every step, so the cases
use the zones' 1970 rules, a 1h interval (the rule group's too) and only gpt-4o's prices; the price
group runs first (observatory.promtool orders the groups a group reads before it). gpt-4o output costs $10 per million
tokens: 10,000 tokens a minute is $6 an hour, so each hour adds $6 and hour h of a period holds $6h.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from observatory import promql
from observatory.cli import main
from observatory.compile import CompileOptions, compile_bundle
from observatory.compile.calendar import TRANSITIONS_PER_PART, transitions
from observatory.compile.prices import DEFAULT_CATALOGUE
from observatory.models import parse_resource
from promtool_cases import explain, run_promtool

OUTPUT = 'gen_ai_client_token_usage_sum{{namespace="{ns}", gen_ai_request_model="gpt-4o", gen_ai_token_type="output"}}'


def budget(name: str, usd: float, calendar: dict[str, str], **cost: Any) -> Any:
    return parse_resource({
        "apiVersion": "observatory.dev/v1alpha1", "kind": "AlertRule", "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"severity": "critical", "evaluationInterval": "1h",
                 "cost": {"budgetUSD": usd, "calendar": calendar, **cost}}})


def fires(rule: str, summary: str, severity: str = "critical") -> list[dict[str, Any]]:
    return [{"exp_labels": {"namespace": "team-a", "observatory_alertrule": rule, "severity": severity},
             "exp_annotations": {"summary": summary}}]


def check(at: str, alertname: str, alerts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alertname, "exp_alerts": alerts or []}


def series(hours: int) -> list[dict[str, str]]:
    # Samples every 4m: a 5m rate holds two, whether its range is closed or open on the left.
    steps = hours * 15
    return [{"series": OUTPUT.format(ns="team-a"), "values": f"0+40000x{steps}"},
            {"series": OUTPUT.format(ns="team-b"), "values": f"0+900000x{steps}"}]


def prove(rules: list[Any], checks: list[dict[str, Any]], hours: int, workdir: Path) -> None:
    options = CompileOptions(catalogue=tuple(p for p in DEFAULT_CATALOGUE if p.model == "gpt-4o"))
    tests = [{"interval": "4m", "input_series": series(hours), "alert_rule_test": checks}]
    outcome = run_promtool(rules, tests, "1h", workdir, options)
    assert outcome.ok, explain(outcome, workdir)


def test_day_and_month_reset_at_local_midnight_across_a_dst_change(tmp_path: Path, promtool: Path):
    """America/Santo_Domingo in 1970: -04:30 until 1970-02-21T04:30Z, when the clocks went back half an
    hour to -05:00 (a zone with few transitions: promtool's cost grows with them). Local midnight is
    04:30 UTC before the change, between two of the hourly evaluations: the first one of a day counts
    the half hour since it started. 21 February starts at 05:00 UTC (1229h since the epoch), so
    20 February, from 04:30 UTC (1204.5h), lasts 24.5 hours; 1 February started at 04:30 UTC (748.5h)."""
    assert transitions("America/Santo_Domingo")[0] == -16200
    assert transitions("America/Santo_Domingo")[1][0] == (int(1228.5 * 3600), -1800)
    day = budget("sd-day", 1, {"period": "day", "timeZone": "America/Santo_Domingo"})
    month = budget("sd-month", 1000, {"period": "month", "timeZone": "America/Santo_Domingo"})
    on_day = "LLM spend ${} since the start of the day in America/Santo_Domingo (budget $1)"
    on_month = "LLM spend ${} since the start of the month in America/Santo_Domingo (budget $1000)"
    prove([day, month], [
        # January: half an hour at 5h, then 743 hours by 748h; February: half an hour at 749h.
        check("748h", "SdMonth", fires("sd-month", on_month.format("4461.00"))),
        check("749h", "SdMonth"),
        check("1204h", "SdDay", fires("sd-day", on_day.format("141.00"))),
        check("1205h", "SdDay", fires("sd-day", on_day.format("3.00"))),
        check("1228h", "SdDay", fires("sd-day", on_day.format("141.00"))),  # 23:30 local, 20 February
        check("1229h", "SdDay"),  # 00:00 local, 21 February: $0
        check("1230h", "SdDay", fires("sd-day", on_day.format("6.00"))),
        # The month goes on through the day's change: half an hour and 480 hours by 1229h.
        check("1229h", "SdMonth", fires("sd-month", on_month.format("2883.00"))),
    ], 1231, tmp_path)


def test_weeks_start_on_monday_or_on_week_start(tmp_path: Path, promtool: Path):
    """1970-01-01 was a Thursday: in Europe/Berlin (+01:00 all of 1970) Monday 5 January starts at
    4 January 23:00 UTC (95h); a UTC week from Sunday starts on 4 January 00:00 UTC (72h)."""
    monday = budget("berlin-week", 100, {"period": "week", "timeZone": "Europe/Berlin"})
    sunday = budget("utc-week", 100, {"period": "week", "weekStart": "Sunday"})
    prove([monday, sunday], [
        check("71h", "UtcWeek", fires("utc-week", "LLM spend $426.00 since the start of the week (from Sunday) in UTC "
                                                  "(budget $100)")),
        check("72h", "UtcWeek"),
        check("94h", "BerlinWeek", fires("berlin-week", "LLM spend $564.00 since the start of the week (from Monday) in "
                                                        "Europe/Berlin (budget $100)")),
        check("95h", "BerlinWeek"),
    ], 96, tmp_path)


def test_the_forecast_says_in_how_many_hours_the_day_budget_is_exceeded_only_before_the_day_ends(tmp_path: Path, promtool: Path):
    """$6 an hour in a Europe/Berlin day (from 23:00 UTC, 24 hours): a $120 budget is exceeded 20 hours
    into the day, so at 12h ($72 spent, 11 hours left) the forecast says 8 hours, at 19h 1 hour, and
    at 20h the budget is reached: silent. A $150 budget would take 25 hours, longer than the day:
    never. The next day starts at 23h with $0 and 20 hours to go."""
    said = "At the spend rate of the last 1h, the day's budget (${}) is exceeded in {} hours (Europe/Berlin)"
    rules = [budget(f"berlin-{usd}", usd, {"period": "day", "timeZone": "Europe/Berlin"}, forecast={"lookback": "1h"})
             for usd in (120, 150)]
    prove(rules, [
        check("12h", "Berlin120Forecast", fires("berlin-120", said.format(120, "8.0"), "warning")),
        check("19h", "Berlin120Forecast", fires("berlin-120", said.format(120, "1.0"), "warning")),
        check("20h", "Berlin120Forecast"),
        check("23h", "Berlin120Forecast", fires("berlin-120", said.format(120, "20.0"), "warning")),
        *(check(at, "Berlin150Forecast") for at in ("1h", "12h", "22h", "23h")),
    ], 24, tmp_path)


def test_every_zone_compiles_under_the_promql_bounds():
    """The zone with the most transitions of 1970-2049 still gives expressions under promql's bounds,
    re-parsed with them (promql.parse scans the written text first)."""
    rule = budget("pacific", 100, {"period": "month", "timeZone": "America/Los_Angeles"}, steps=[
        {"percent": 80, "severity": "info"}, {"percent": 100, "severity": "critical"}], forecast={})
    assert len(transitions("America/Los_Angeles")[1]) > 3 * TRANSITIONS_PER_PART  # 4 parts
    (group,) = [g for obj in compile_bundle([rule]) if obj["kind"] == "PrometheusRule"
                for g in obj["spec"]["groups"] if g["name"].endswith("pacific")]
    assert group["interval"] == "1h"
    for written in group["rules"]:
        promql.parse(written["expr"])


def validate(tmp_path: Path, capsys, cost: str) -> list[str]:
    path = tmp_path / "budget.yaml"
    path.write_text("apiVersion: observatory.dev/v1alpha1\nkind: AlertRule\nmetadata: {name: b, namespace: team-a}\n"
                    f"spec:\n  severity: critical\n  cost: {cost}\n")
    assert main(["validate", "-f", str(path)]) == 1
    return [line for line in capsys.readouterr().err.splitlines() if "AlertRule/team-a/b: " in line]


@pytest.mark.parametrize("cost, field, words", [
    ("{budgetUSD: 10, calendar: {period: month, timeZone: Europe/Berln}}", "spec.cost.calendar.timeZone",
     ["unknown time zone 'Europe/Berln'", "IANA", "closest match: Europe/Berlin"]),
    ("{budgetUSD: 10, calendar: {period: day, timeZone: ../../etc/passwd}}", "spec.cost.calendar.timeZone",
     ["unknown time zone", "e.g. Europe/Berlin"]),
    ("{budgetUSD: 10, window: 1d, calendar: {period: day}}", "spec.cost",
     ["set window (a rolling budget) or calendar", "not both", "remove one"]),
    ("{budgetUSD: 10, calendar: {period: week, weekStart: Sonday}}", "spec.cost.calendar.weekStart",
     ["Monday", "Sunday"]),
    ("{budgetUSD: 10, calendar: {period: month, weekStart: Sunday}}", "spec.cost.calendar",
     ["weekStart applies to period: week only", "remove it or set period: week"]),
    ("{budgetUSD: 10, calendar: {period: year}}", "spec.cost.calendar.period", ["day", "week", "month"]),
])
def test_a_bad_calendar_says_which_field_and_how_to_fix_it(tmp_path: Path, capsys, cost: str, field: str, words: list[str]):
    lines = validate(tmp_path, capsys, cost)
    assert any(f": {field}: " in line for line in lines), lines
    line = next(line for line in lines if f": {field}: " in line)
    for word in words:
        assert word in line, line


def test_observatory_test_evaluates_the_groups_a_group_reads_first(tmp_path: Path, promtool: Path):
    """promtool evaluates groups in a Go map's order, a fresh one per run, unless the test file sets
    group_eval_order (cmd/promtool/unittest.go, orderedGroups): a calendar total read the spend rate of
    its own step or of the step before by chance. observatory test puts the price group first."""
    rule = budget("berlin-day", 100, {"period": "day", "timeZone": "Europe/Berlin"})
    tests = [{"interval": "4m", "input_series": series(2), "alert_rule_test": [check("1h", "BerlinDay")]}]
    assert run_promtool([rule], tests, "1h", tmp_path).ok
    written = yaml.safe_load((tmp_path / "000-cases.test.yaml").read_text())
    assert written["group_eval_order"] == ["observatory.prices", "observatory.alertrule.berlin-day"]
