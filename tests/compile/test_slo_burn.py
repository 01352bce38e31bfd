"""SLO burn-rate tiers proven by Prometheus' own engine, against an independent model of the SRE workbook.

For a steady burn at 1.05 x a pair's factor after a healthy history, the model below computes,
step by step, what the compiled rules should see: the 5m rates Prometheus records (a ramp over the
first 5 minutes of the burn) and their averages over each window, ratio of sums. From that it
derives the first evaluation at which each window pair of the workbook table holds: a window is
the last `window` seconds exactly, as `rate(x[window])` over the raw series would read it (the
5m rates ending at t, t - 5m, ... until the window is covered, none missing). promtool then
has to agree: the tier silent a few evaluations before that moment and firing a few after, and,
where enabled, the other tier exactly as the model says. The model knows the workbook (factors, windows, scaling to
other SLO periods) on its own; it does not read the compile core's tables.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from observatory.compile import compile_bundle
from observatory.models import parse_resource
from promtool_cases import explain, run_promtool

NAMESPACE = "team-a"
OTHER_NAMESPACE = "team-b"
OBJECTIVE = 99.0
BUDGET = 1 - OBJECTIVE / 100
REQUESTS_PER_SECOND = 10.0
BURN = 1.05  # times the pair's factor: the pair must fire, soon after the model says
MARGIN_STEPS = 2  # evaluations between the model's crossing and the checks on either side
RATE_WINDOW = 300  # the 5m rates the rules record
DAY, HOUR, MINUTE = 86400, 3600, 60
TIERS = ("page", "ticket")


@dataclass(frozen=True)
class Pair:
    """One row of the workbook table: alert when both windows burn `factor` times too fast."""

    tier: str
    factor: float
    long: int  # seconds, for a 30-day SLO
    short: int

    def windows(self, period_days: int) -> tuple[int, int]:
        return scaled(self.long, period_days), scaled(self.short, period_days)


# The SRE workbook, chapter "Alerting on SLOs", for a 30-day SLO.
WORKBOOK = (
    Pair("page", 14.4, 1 * HOUR, 5 * MINUTE),
    Pair("page", 6, 6 * HOUR, 30 * MINUTE),
    Pair("ticket", 3, 1 * DAY, 2 * HOUR),
    Pair("ticket", 1, 3 * DAY, 6 * HOUR),
)


def scaled(seconds: int, period_days: int) -> int:
    """A window scaled from a 30-day SLO to `period_days`, in whole 5m rates (which tile it), at least one."""
    return max(round(seconds * period_days / 30 / RATE_WINDOW), 1) * RATE_WINDOW


@dataclass(frozen=True)
class Phase:
    seconds: int
    requests_per_second: float
    error_ratio: float


@dataclass
class Group:
    """One alerting group's traffic: cumulative counters at every evaluation step."""

    labels: dict[str, str]
    phases: list[Phase]
    step: int
    requests: list[float] = field(init=False)
    errors: list[float] = field(init=False)

    def __post_init__(self) -> None:
        # Increments are rounded once, and the same numbers go to promtool and to the model.
        self.requests, self.errors = [0.0], [0.0]
        for phase in self.phases:
            assert phase.seconds % self.step == 0
            total = round(phase.requests_per_second * self.step, 6)
            bad = round(total * phase.error_ratio, 6)
            for _ in range(phase.seconds // self.step):
                self.requests.append(self.requests[-1] + total)
                self.errors.append(self.errors[-1] + bad)

    @property
    def steps(self) -> int:
        return len(self.requests) - 1


class Model:
    """What the rules of one group see: recorded 5m rates and the windows they tile."""

    def __init__(self, group: Group, period_days: int):
        self.step = group.step
        self.period_days = period_days
        per_rate = RATE_WINDOW // self.step
        # rate(x[5m]) at step k: the samples of (t-5m, t] plus the one at t-5m; a counter starting
        # at 0 is not extrapolated. No rate at step 0 (a single sample).
        self.error_rates = [math.nan] + [(group.errors[k] - group.errors[max(k - per_rate, 0)]) / RATE_WINDOW
                                         for k in range(1, group.steps + 1)]
        self.request_rates = [math.nan] + [(group.requests[k] - group.requests[max(k - per_rate, 0)]) / RATE_WINDOW
                                           for k in range(1, group.steps + 1)]

    def ratio(self, k: int, window: int) -> float:
        if window == RATE_WINDOW:  # the shortest window is the recorded ratio itself
            return self.error_rates[k] / self.request_rates[k]
        # The 5m rates ending at t, t - 5m, ...: the window exactly; before the first rate, nothing.
        tiles = [k - j * RATE_WINDOW // self.step for j in range(window // RATE_WINDOW)]
        return (sum(self.error_rates[i] for i in tiles if i >= 1) / sum(self.request_rates[i] for i in tiles if i >= 1))

    def pair_holds(self, pair: Pair, k: int) -> bool:
        long, short = pair.windows(self.period_days)
        threshold = pair.factor * BUDGET
        return self.ratio(k, long) > threshold and self.ratio(k, short) > threshold

    def tiers(self, k: int) -> set[str]:
        return {pair.tier for pair in WORKBOOK if self.pair_holds(pair, k)}

    def first_hold(self, pair: Pair) -> int | None:
        return next((k for k in range(1, len(self.error_rates)) if self.pair_holds(pair, k)), None)


def slo_resource(period: str, name: str = "chat-availability", group_by: list[str] | None = None,
                     indicator: dict[str, Any] | None = None, tiers: tuple[str, ...] = TIERS) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "objective": OBJECTIVE,
        "window": period,
        "indicator": indicator or {"llm": {"preset": "availability"}},
        "labels": {"team": "chat"},
        "alerting": {tier: {"enabled": tier in tiers, "annotations": {"summary": f"{name} {tier}"}} for tier in TIERS},
    }
    if group_by:
        spec["groupBy"] = group_by
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "SLO",
            "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}


def alert_name(slo: dict[str, Any], tier: str) -> str:  # the default, shared by SLOs alerting alike
    return f"SLOErrorBudgetBurn{tier.capitalize()}"


def counter_notation(values: list[float], missing_before: int = 0) -> str:
    """promtool series values; the first `missing_before` samples are absent (`_`)."""
    shown = ["_"] * missing_before + [f"{v:.6f}".rstrip("0").rstrip(".") for v in values[missing_before:]]
    return " ".join(shown)


def genai_series(group: Group, errors_missing_before: int = 0) -> list[dict[str, str]]:
    """GenAI operation counts: successful calls, and failed ones carrying an error_type."""
    labels = ", ".join(f'{k}="{v}"' for k, v in sorted(group.labels.items()))
    ok = [r - e for r, e in zip(group.requests, group.errors)]
    metric = "gen_ai_client_operation_duration_seconds_count"
    return [
        {"series": f"{metric}{{{labels}}}", "values": counter_notation(ok)},
        {"series": f'{metric}{{{labels}, error_type="timeout"}}',
         "values": counter_notation(group.errors, errors_missing_before)},
    ]


def expected_alerts(slo: dict[str, Any], models: list[tuple[Group, Model]], k: int, step: int) -> list[dict[str, Any]]:
    """promtool checks of the enabled tiers at step k, as the model predicts them."""
    checks = []
    for tier in (t for t in TIERS if slo["spec"]["alerting"][t]["enabled"]):
        exp = []
        for group, model in models:
            if tier in model.tiers(k):
                labels = {key: value for key, value in group.labels.items() if key in slo["spec"].get("groupBy", [])}
                labels.update({"namespace": NAMESPACE, "severity": "critical" if tier == "page" else "warning",
                               "slo": slo["metadata"]["name"], "slo_tier": tier, "team": "chat",
                               "window": slo["spec"]["window"]})
                exp.append({"exp_labels": labels, "exp_annotations": {"summary": f"{slo['metadata']['name']} {tier}"}})
        checks.append({"eval_time": f"{k * step}s", "alertname": alert_name(slo, tier), "exp_alerts": exp})
    return checks


def prove(slo: dict[str, Any], groups: list[Group], check_steps: list[int], period_days: int, workdir: Path,
          extra_series: Sequence[dict[str, str]] = (), errors_missing_before: int = 0) -> list[dict[str, Any]]:
    step = groups[0].step
    models = [(group, Model(group, period_days)) for group in groups]
    checks = [check for k in check_steps for check in expected_alerts(slo, models, k, step)]
    series = [s for group in groups for s in genai_series(group, errors_missing_before)] + list(extra_series)
    test = {"name": slo["metadata"]["name"], "interval": f"{step}s", "input_series": series, "alert_rule_test": checks}
    outcome = run_promtool([parse_resource(slo)], [test], f"{step}s", workdir)
    assert outcome.ok, explain(outcome, workdir)
    return checks


@dataclass(frozen=True)
class BurnCase:
    period_days: int
    pair: Pair
    step: int

    @property
    def id(self) -> str:
        return f"{self.period_days}d-{self.pair.tier}-{self.pair.factor:g}x"


BURN_CASES = [BurnCase(days, pair, MINUTE if pair.tier == "page" else 5 * MINUTE)
              for days in (30, 7) for pair in WORKBOOK]


def burn_phases(case: BurnCase, burn_seconds: int) -> list[Phase]:
    """A healthy history filling the longest window of the pair's tier, then the burn.

    Under steady traffic the 3x pair implies the 1x pair (a day at 3x is a third of three days at
    1x), so the 3x case puts ten times the traffic into the older history: the 1x pair's long
    window is diluted and only the 3x pair can explain the alert.
    """
    longest = max(p.windows(case.period_days)[0] for p in WORKBOOK if p.tier == case.pair.tier)
    longest = math.ceil(longest / case.step) * case.step
    burn = Phase(burn_seconds, REQUESTS_PER_SECOND, BURN * case.pair.factor * BUDGET)
    if case.pair.factor == 3:
        short = math.ceil(case.pair.windows(case.period_days)[1] / case.step) * case.step
        return [Phase(longest, 10 * REQUESTS_PER_SECOND, 0), Phase(short, REQUESTS_PER_SECOND, 0), burn]
    return [Phase(longest, REQUESTS_PER_SECOND, 0), burn]


@pytest.mark.parametrize("case", BURN_CASES, ids=lambda c: c.id)
def test_tier_fires_when_its_pair_crosses_and_not_before(case: BurnCase, tmp_path: Path, promtool: Path) -> None:
    labels = {"namespace": NAMESPACE, "gen_ai_request_model": "gpt-4o"}
    history = sum(p.seconds for p in burn_phases(case, 0)[:-1])
    # Burn well past the crossing (near the pair's long window / 1.05) so the model can place it.
    probe = Group(labels, burn_phases(case, 2 * history), case.step)
    crossing = Model(probe, case.period_days).first_hold(case.pair)
    assert crossing is not None, f"{case.id}: the burn never crosses in the model"
    end = crossing + MARGIN_STEPS
    group = Group(labels, burn_phases(case, end * case.step - history), case.step)
    model = Model(group, case.period_days)

    # The scenario isolates the pair under test: at the check after the crossing it is the only
    # pair of its tier that holds, and before the crossing none of that tier does.
    holding = [p for p in WORKBOOK if p.tier == case.pair.tier and model.pair_holds(p, end)]
    assert holding == [case.pair], f"{case.id}: pairs holding at the firing check: {holding}"
    assert case.pair.tier not in model.tiers(crossing - MARGIN_STEPS)

    # The ticket tier's day-long windows would dominate promtool's work in the page cases.
    slo = slo_resource(f"{case.period_days}d", tiers=TIERS if case.pair.tier == "ticket" else ("page",))
    other = Group({"namespace": OTHER_NAMESPACE, "gen_ai_request_model": "gpt-4o"},
                  [Phase(end * case.step, REQUESTS_PER_SECOND, 0.5)], case.step)
    checks = prove(slo, [group], [crossing - MARGIN_STEPS, end], case.period_days, tmp_path,
                   extra_series=genai_series(other))
    tier_checks = [c for c in checks if c["alertname"] == alert_name(slo, case.pair.tier)]
    assert [bool(c["exp_alerts"]) for c in tier_checks] == [False, True]


@pytest.mark.parametrize("period_days", [30, 7])
def test_burning_at_nine_tenths_of_the_budget_fires_neither_tier(period_days: int, tmp_path: Path, promtool: Path) -> None:
    step = 5 * MINUTE
    group = Group({"namespace": NAMESPACE, "gen_ai_request_model": "gpt-4o"},
                  [Phase(3 * DAY, REQUESTS_PER_SECOND, 0.9 * BUDGET)], step)
    hourly = list(range(HOUR // step, group.steps + 1, HOUR // step))
    checks = prove(slo_resource(f"{period_days}d"), [group], hourly, period_days, tmp_path)
    assert checks[-1]["eval_time"] == f"{3 * DAY}s" and not any(c["exp_alerts"] for c in checks)


def test_ratio_slo_alerts_only_for_the_burning_group(tmp_path: Path, promtool: Path) -> None:
    """A ratio indicator with groupBy: the model burning at 1.05 x 14.4 pages, the one at 0.5x stays silent."""
    step = MINUTE
    page = WORKBOOK[0]
    slo = slo_resource("30d", name="chat-errors", group_by=["gen_ai_request_model"],
                       indicator={"ratio": {"errors": 'gen_ai_client_operation_duration_seconds_count{error_type!=""}',
                                            "total": "gen_ai_client_operation_duration_seconds_count"}},
                       tiers=("page",))
    history = Phase(WORKBOOK[1].long, REQUESTS_PER_SECOND, 0)  # fills the page tier's longest window

    def group(model_name: str, burn_ratio: float, burn_seconds: int) -> Group:
        return Group({"namespace": NAMESPACE, "gen_ai_request_model": model_name},
                     [history, Phase(burn_seconds, REQUESTS_PER_SECOND, burn_ratio)], step)

    crossing = Model(group("gpt-4o", BURN * page.factor * BUDGET, 2 * page.long), 30).first_hold(page)
    burn_seconds = (crossing + MARGIN_STEPS) * step - history.seconds
    bad = group("gpt-4o", BURN * page.factor * BUDGET, burn_seconds)
    healthy = group("o3", 0.5 * BUDGET, burn_seconds)
    checks = prove(slo, [bad, healthy], [crossing - MARGIN_STEPS, crossing + MARGIN_STEPS], 30, tmp_path)
    pages = [[a["exp_labels"]["gen_ai_request_model"] for a in c["exp_alerts"]]
             for c in checks if c["alertname"] == alert_name(slo, "page")]
    assert pages == [[], ["gpt-4o"]]
    assert not any(a["exp_labels"]["gen_ai_request_model"] == "o3" for c in checks for a in c["exp_alerts"])


def test_first_errors_after_a_clean_history_are_no_long_burn(tmp_path: Path, promtool: Path) -> None:
    """OpenTelemetry exports a failed-call series only once a call fails: before that, no series means no errors.

    After a clean 6h the first errors arrive as a 10-minute burst at 20x the budget: 3.3x over 1h
    and 0.6x over 6h, no page (a long window of only the burst would read 20x and page).
    """
    step = MINUTE
    clean = 6 * HOUR
    group = Group({"namespace": NAMESPACE, "gen_ai_request_model": "gpt-4o"},
                  [Phase(clean, REQUESTS_PER_SECOND, 0), Phase(10 * MINUTE, REQUESTS_PER_SECOND, 20 * BUDGET),
                   Phase(50 * MINUTE, REQUESTS_PER_SECOND, 0)], step)
    checks = prove(slo_resource("30d"), [group], list(range(clean // step + 5, group.steps + 1, 5)), 30, tmp_path,
                   errors_missing_before=clean // step)
    assert not any(c["exp_alerts"] for c in checks)


def test_budget_remaining_counts_missing_errors_as_none(tmp_path: Path, promtool: Path) -> None:
    """Steady at half the budget's pace, half the budget remains; a model that never failed (no error
    series at all) keeps all of it rather than having no budget."""
    step = MINUTE
    slo = parse_resource(slo_resource("30d", group_by=["gen_ai_request_model"]))

    def group(model_name: str, error_ratio: float) -> Group:
        return Group({"namespace": NAMESPACE, "gen_ai_request_model": model_name},
                     [Phase(3 * HOUR, REQUESTS_PER_SECOND, error_ratio)], step)

    half, flawless = group("gpt-4o", 0.5 * BUDGET), group("o3", 0)
    test = {
        "interval": f"{step}s",
        "input_series": genai_series(half) + genai_series(flawless, errors_missing_before=flawless.steps + 1),
        "promql_expr_test": [{
            "expr": "round(1000 * observatory:slo_error_budget_remaining:ratio)",
            "eval_time": f"{3 * HOUR}s",
            "exp_samples": [{"labels": f'{{gen_ai_request_model="{name}", namespace="{NAMESPACE}", '
                                       f'slo="chat-availability", window="30d"}}', "value": value}
                            for name, value in (("gpt-4o", 500), ("o3", 1000))],
        }],
    }
    outcome = run_promtool([slo], [test], f"{step}s", tmp_path)
    assert outcome.ok, explain(outcome, tmp_path)


INDICATORS = {
    "llm-availability": {"llm": {"preset": "availability"}},
    "llm-latency": {"llm": {"preset": "latency", "latencyThresholdSeconds": 2.56}},
    "llm-quality": {"llm": {"preset": "quality", "evaluation": "answer_relevance", "minScore": 0.7}},
    "ratio": {"ratio": {"errors": 'http_requests_total{code=~"5.."}', "total": "http_requests_total"}},
    "latency": {"latency": {"histogram": "http_request_duration_seconds", "thresholdSeconds": 0.5, "buckets": [0.1, 0.5, 1]}},
}


@pytest.mark.parametrize("indicator", INDICATORS.values(), ids=INDICATORS.keys())
@pytest.mark.parametrize("period", ["7d", "30d", "90d"])
def test_two_records_per_slo_in_groups_computing_their_windows_and_alerts(indicator: dict[str, Any], period: str) -> None:
    """Each SLO has 2 records in one of its namespace's groups for the period, which computes their
    windows, conditions and alerts, one alert rule per tier for the SLOs alerting alike; the ticket's
    long windows live in one object per namespace and period, whatever the number of SLOs using it."""
    resources = [slo_resource(period, name=f"slo-{i}", group_by=["gen_ai_request_model"], indicator=indicator) for i in range(40)]
    for resource in resources[:20]:  # alike: the default summary, templated by the slo label
        for tier in TIERS:
            del resource["spec"]["alerting"][tier]["annotations"]
    slos = [parse_resource(r) for r in resources]
    other = parse_resource({**slo_resource(period), "metadata": {"name": "x", "namespace": OTHER_NAMESPACE}})
    shared = compile_bundle([*slos, other])
    windows = [o for o in shared if o["metadata"]["name"].startswith("observatory-slo-windows-")]
    assert sorted((o["metadata"]["namespace"], o["metadata"]["name"]) for o in windows) == \
        sorted([(NAMESPACE, f"observatory-slo-windows-{period}"), (OTHER_NAMESPACE, f"observatory-slo-windows-{period}")])
    for obj in windows:
        long_group, budget = obj["spec"]["groups"]
        # The ticket's 2 long windows: their means and burn rates; more slowly, the mean over the period and the budget.
        assert (len(long_group["rules"]), long_group["interval"], len(budget["rules"]), budget["interval"]) == (4, "3m", 2, "4m")
        assert all(f'namespace="{obj["metadata"]["namespace"]}"' in r["expr"] for g in (long_group, budget) for r in g["rules"])
    holding = [o for o in shared if o["metadata"]["namespace"] == NAMESPACE and o not in windows]
    assert 1 < len(holding) <= 8
    by_slo: dict[str, list[str]] = {}
    for obj in holding:
        group, objectives = obj["spec"]["groups"]
        shard = group["name"].rsplit(".", 1)[1]
        assert obj["metadata"]["name"] == f"observatory-slos-{period}-{shard}" and group["interval"] == "1m"
        # No rule reads the objectives: they are recorded less often.
        assert objectives["name"] == f"{group['name']}.objectives" and objectives["interval"] == "4m"
        assert [r["labels"]["slo"] for r in objectives["rules"]] == sorted(r["labels"]["slo"] for r in objectives["rules"])
        for rule in objectives["rules"]:
            by_slo.setdefault(rule["labels"]["slo"], []).append(obj["metadata"]["name"])
        records = [r for r in group["rules"] if "slo" in r["labels"]]
        assert group["rules"][:len(records)] == records, "the SLOs' 5m rates come first, read by the windows after them"
        owners = [r["labels"]["slo"] for r in records]
        assert owners == sorted(owners)
        for rule in records:
            by_slo.setdefault(rule["labels"]["slo"], []).append(obj["metadata"]["name"])
            assert f'namespace="{NAMESPACE}"' in rule["expr"] or rule["expr"].startswith("vector(")
        computed = [r for r in group["rules"][len(records):] if "record" in r]
        assert all(f'observatory_shard="{shard}"' in r["expr"] for r in computed)
        alerts = [r for r in group["rules"] if "alert" in r]
        assert group["rules"][-len(alerts):] == alerts
        members = set(owners)
        alike = members & {slo.name for slo in slos[:20]}
        own = members - alike
        # One alert rule per tier for the SLOs alike, one per tier and SLO for those of their own summary.
        assert len(alerts) == 2 * (bool(alike) + len(own))
        for rule in alerts:
            names = set(re.search(r'slo=~?"([^"]*)"', rule["expr"]).group(1).split("|"))
            assert names == (alike if rule["annotations"]["summary"].startswith("SLO {{") else names & own) and names
    assert {name: len(objs) for name, objs in by_slo.items()} == {slo.name: 2 for slo in slos}
    assert all(len(set(objs)) == 1 for objs in by_slo.values())
    [alone] = [o for o in compile_bundle(slos[:1]) if o["metadata"]["name"].startswith("observatory-slos-")]
    assert sum("alert" in r for r in alone["spec"]["groups"][0]["rules"]) == 2
    # No SLO here sets minEvents: the conditions read no minimum.
    assert not any("slo_min_events" in r["expr"] for o in holding for g in o["spec"]["groups"] for r in g["rules"])
    assert alone["metadata"]["name"] in by_slo[slos[0].name]


def test_a_steady_burn_exactly_at_a_page_factor_pages(tmp_path: Path, promtool: Path) -> None:
    """A burn equal to the factor spends the budget at the pace the pair is defined by, and pages once
    both windows hold it: whether the ratio's last bits land above or below the factor must not decide
    (here they land below: `> 14.4` stayed silent). The 6h window stays under 6x."""
    step, pair = MINUTE, WORKBOOK[0]
    slo = slo_resource("30d", tiers=("page",))
    history = Phase(WORKBOOK[1].long, REQUESTS_PER_SECOND, 0)
    burn = Phase(pair.long + 30 * MINUTE, REQUESTS_PER_SECOND, pair.factor * BUDGET)
    group = Group({"namespace": NAMESPACE, "gen_ai_request_model": "gpt-4o"}, [history, burn], step)
    end = group.steps
    test = {"name": "exactly at the factor", "interval": f"{step}s", "input_series": genai_series(group),
            "alert_rule_test": [{"eval_time": f"{end * step}s", "alertname": alert_name(slo, "page"), "exp_alerts": [
                {"exp_labels": {"namespace": NAMESPACE, "severity": "critical", "slo": slo["metadata"]["name"],
                                "slo_tier": "page", "team": "chat", "window": "30d"},
                 "exp_annotations": {"summary": f"{slo['metadata']['name']} page"}}]}]}
    outcome = run_promtool([parse_resource(slo)], [test], f"{step}s", tmp_path)
    assert outcome.ok, explain(outcome, tmp_path)
