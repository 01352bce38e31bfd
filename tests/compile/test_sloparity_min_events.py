"""The low-traffic guard: a tier with `minEvents` fires only with at least that many events in the
long window of the pair that holds, proven by promtool.

A burn of 3 failures in 10 requests is 30x a 99 % SLO's budget, a page by the workbook's factors,
and noise to whoever is paged. Pyrra's users ask for a guard "off by default" (pyrra-dev/pyrra#1925,
"Add optional RPS threshold for ErrorBudgetBurn alerts"); Sloth and Pyrra generate none, so the
default (0) keeps their behaviour.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from observatory.models import parse_resource
from promtool_cases import explain, run_promtool

NAMESPACE = "team-a"
MINUTE, HOUR = 60, 3600
CLEAN = 6 * HOUR  # fills the 6h pair's window: the 1h pair alone can page
CHECK = CLEAN + 62 * MINUTE  # the burn has filled the 1h window; two evaluations of slack for the chain


def slo(min_events: int | None) -> dict:
    page: dict = {"annotations": {"summary": "page"}}
    if min_events is not None:
        page["minEvents"] = min_events
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "SLO",
            "metadata": {"name": "chat-availability", "namespace": NAMESPACE},
            "spec": {"objective": 99, "indicator": {"llm": {"preset": "availability"}},
                     "alerting": {"page": page, "ticket": {"enabled": False}}}}


def series(requests: list[int], failures: list[int]) -> list[dict]:
    """Per-minute counts as GenAI operation counters (successful calls, failed ones with an error_type)."""
    def counter(per_minute: list[int]) -> str:
        values, total = ["0"], 0
        for n in per_minute:
            total += n
            values.append(str(total))
        return " ".join(values)

    labels = f'namespace="{NAMESPACE}", gen_ai_request_model="gpt-4o"'
    metric = "gen_ai_client_operation_duration_seconds_count"
    return [{"series": f"{metric}{{{labels}}}", "values": counter([r - f for r, f in zip(requests, failures)])},
            {"series": f'{metric}{{{labels}, error_type="timeout"}}', "values": counter(failures)}]


def pages(doc: dict, input_series: list[dict], fires: bool, tmp_path: Path) -> None:
    labels = {"namespace": NAMESPACE, "severity": "critical", "slo": "chat-availability", "slo_tier": "page", "window": "30d"}
    test = {"interval": "1m", "input_series": input_series, "alert_rule_test": [{
        "eval_time": f"{CHECK}s", "alertname": "SLOErrorBudgetBurnPage",
        "exp_alerts": [{"exp_labels": labels, "exp_annotations": {"summary": "page"}}] if fires else []}]}
    outcome = run_promtool([parse_resource(doc)], [test], "1m", tmp_path)
    assert outcome.ok, explain(outcome, tmp_path)


# 60 requests a minute (1/s): every 5m rate is exactly 1, so the 1h window holds exactly 3600 events.
STEADY = [60] * ((CHECK - CLEAN) // MINUTE)
BUSY = series([60] * (CLEAN // MINUTE) + STEADY, [0] * (CLEAN // MINUTE) + [18] * len(STEADY))  # 30 % failed: 30x


@pytest.mark.parametrize(("min_events", "fires"), [(None, True), (3600, True), (3601, False), (100_000, False)])
def test_page_fires_at_and_above_the_minimum_and_not_below(min_events: int | None, fires: bool, tmp_path: Path,
                                                          promtool: Path) -> None:
    pages(slo(min_events), BUSY, fires, tmp_path)


def test_three_failures_in_ten_requests_page_without_the_guard_and_not_with_it(tmp_path: Path, promtool: Path) -> None:
    # A request every 6 minutes in the last hour, the last three failing, the last one a minute before the check.
    quiet = [0] * (CHECK // MINUTE)
    failed = [0] * (CHECK // MINUTE)
    for i, minute in enumerate(range(CHECK // MINUTE - 1 - 54, CHECK // MINUTE, 6)):
        quiet[minute] = 1
        failed[minute] = int(i >= 7)
    assert sum(quiet) == 10 and sum(failed) == 3
    low = series(quiet, failed)
    pages(slo(None), low, True, tmp_path)
    pages(slo(100), low, False, tmp_path)
