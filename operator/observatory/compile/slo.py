"""SLO → multi-window multi-burn-rate rules in at most 8 rules.

Sloth records `rate()` over the raw series for every alert window (5m to 3d) plus a 30d rule:
17 rules, and each window re-reads every raw series. Here only two rules read raw series, over 5m;
every longer window averages those two recorded series (ratio of sums: errors and requests are
averaged separately, then divided). The error budget, which needs the whole period, reads an hourly
average that a slow group records every 5 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import promql_parser as pp

from .. import promql
from ..models.common import duration_seconds, format_duration
from ..models.slo import DEFAULT_TIER_SEVERITY, SLO, AlertTier
from .alertrule import alert_name
from .errors import CompileError
from .rules import Rule, RuleGroup, Tenant
from .signals import Signals, le_pattern, number, parse_field

BASE_PERIOD = "30d"
SHORTEST_WINDOW = "5m"  # the resolution of the recorded rates
SLOW_GROUP_INTERVAL = "5m"


@dataclass(frozen=True)
class BurnWindow:
    """Alert when the error budget burns `factor` times too fast over both windows."""

    tier: str
    factor: float
    long: str
    short: str


# The SRE workbook's table for a 30-day SLO; other periods scale the windows, not the factors.
BURN_WINDOWS = (
    BurnWindow("page", 14.4, "1h", "5m"),
    BurnWindow("page", 6, "6h", "30m"),
    BurnWindow("ticket", 3, "1d", "2h"),
    BurnWindow("ticket", 1, "3d", "6h"),
)


def scaled_window(window: str, period: str) -> str:
    """`window` scaled from a 30-day SLO to `period`, in whole minutes, never below 5m."""
    seconds = duration_seconds(window) * duration_seconds(period) / duration_seconds(BASE_PERIOD)
    minutes = max(round(seconds / 60), int(duration_seconds(SHORTEST_WINDOW) / 60))
    return format_duration(minutes * 60)


@dataclass(frozen=True)
class Events:
    """Selectors of bad and all events."""

    errors: pp.Expr  # an expression over raw series giving bad events per second
    total: pp.Expr


def _events(slo: SLO, signals: Signals) -> Events:
    indicator = slo.spec.indicator
    c = signals.conventions
    tenant = signals.tenant
    window = SHORTEST_WINDOW
    if indicator.ratio:
        errors = parse_field(indicator.ratio.errors, "spec.indicator.ratio.errors", tenant, selector_only=True)
        total = parse_field(indicator.ratio.total, "spec.indicator.ratio.total", tenant, selector_only=True)
        return Events(signals.rate_sum(errors, window), signals.rate_sum(total, window))
    if indicator.latency:
        block = indicator.latency
        extra = parse_field(block.selector, "spec.indicator.latency.selector", tenant, selector_only=True) if block.selector else None
        narrowed = Signals(tenant, extra, signals.group_by)
        return _latency_events(narrowed, block.histogram, block.threshold_seconds, window)
    block = indicator.llm
    extra = parse_field(block.selector, "spec.indicator.llm.selector", tenant, selector_only=True) if block.selector else None
    narrowed = Signals(tenant, extra, signals.group_by)
    if block.preset == "availability":
        return Events(narrowed.rate_sum(narrowed.failed_operations(), window), narrowed.rate_sum(narrowed.operations(), window))
    if block.preset == "latency":
        _require_bucket(block.latency_threshold_seconds, c.operation_duration_buckets, "spec.indicator.llm.latencyThresholdSeconds")
        return _latency_events(narrowed, c.operation_duration_metric, block.latency_threshold_seconds, window)
    _require_bucket(block.min_score, c.evaluation_score_buckets, "spec.indicator.llm.minScore")
    name = promql.equal(c.evaluation_name_label, block.evaluation)
    bad = narrowed.metric(c.evaluation_score_metric + "_bucket", name, promql.matches("le", le_pattern(block.min_score)))
    return Events(narrowed.rate_sum(bad, window), narrowed.rate_sum(narrowed.metric(c.evaluation_score_metric + "_count", name), window))


def _require_bucket(value: float, buckets: tuple[float, ...], field: str) -> None:
    if not any(abs(value - b) < 1e-9 for b in buckets):
        raise CompileError(field, f"{value:g} is not a bucket bound of the histogram; use one of {', '.join(f'{b:g}' for b in buckets)}")


def _latency_events(signals: Signals, histogram: str, threshold: float, window: str) -> Events:
    total = signals.rate_sum(signals.metric(histogram + "_count"), window)
    fast = signals.rate_sum(signals.metric(histogram + "_bucket", promql.matches("le", le_pattern(threshold))), window)
    return Events(promql.build("__arg_t__ - __arg_f__", {"t": total, "f": fast}), total)


def compile_slo(slo: SLO, tenant: Tenant) -> list[RuleGroup]:
    spec = slo.spec
    c = tenant.conventions
    signals = Signals(tenant, None, tuple(spec.group_by))
    events = _events(slo, signals)
    identity = {c.slo_label: slo.name}
    budget = 1 - spec.objective / 100

    def recorded(metric: str) -> pp.Expr:
        return promql.selector(metric, [promql.equal(k, v) for k, v in identity.items()])

    errors5m, requests5m = recorded(c.slo_errors_rate_metric), recorded(c.slo_requests_rate_metric)

    def burn_ratio(window: str) -> pp.Expr:
        if window == SHORTEST_WINDOW:
            return promql.build("__arg_e__ / __arg_r__", {"e": errors5m, "r": requests5m})
        return promql.build(f"avg_over_time(__arg_e__[{window}]) / avg_over_time(__arg_r__[{window}])",
                            {"e": errors5m, "r": requests5m})

    alerts = []
    for tier_name in ("page", "ticket"):
        tier: AlertTier = getattr(spec.alerting, tier_name)
        if not tier.enabled:
            continue
        conditions = []
        for w in (w for w in BURN_WINDOWS if w.tier == tier_name):
            threshold = number(w.factor * budget)
            long, short = scaled_window(w.long, spec.window), scaled_window(w.short, spec.window)
            conditions.append(promql.build(f"(__arg_long__) > {threshold} and (__arg_short__) > {threshold}",
                                           {"long": burn_ratio(long), "short": burn_ratio(short)}))
        expr = promql.build("(__arg_a__) or (__arg_b__)", {"a": conditions[0], "b": conditions[1]})
        labels = {**spec.labels, **tier.labels, c.severity_label: tier.severity or DEFAULT_TIER_SEVERITY[tier_name],
                  c.slo_tier_label: tier_name, **identity}
        speed = "fast" if tier_name == "page" else "slowly but steadily"
        annotations = {c.summary_annotation: tier.annotations.summary or
                       f"SLO {slo.name} ({spec.objective:g}% over {spec.window}) is burning its error budget {speed}"}
        if tier.annotations.description or spec.description:
            annotations[c.description_annotation] = tier.annotations.description or spec.description
        if tier.annotations.runbook_url:
            annotations[c.runbook_annotation] = tier.annotations.runbook_url
        name = tier.name or f"{alert_name(slo.name)}ErrorBudgetBurn{tier_name.capitalize()}"
        alerts.append(Rule(expr=expr, alert=name, for_=tier.for_, labels=labels, annotations=annotations))

    fast_group = RuleGroup(
        name=f"{c.rule_group_prefix}.slo.{slo.name}",
        rules=(
            # Without the zeros the long windows would average only the minutes since the first error.
            Rule(expr=signals.or_zero(events.errors, events.total), record=c.slo_errors_rate_metric, labels=identity),
            Rule(expr=events.total, record=c.slo_requests_rate_metric, labels=identity),
            *alerts,
        ),
    )
    errors1h, requests1h = recorded(c.slo_errors_rate1h_metric), recorded(c.slo_requests_rate1h_metric)
    period = spec.window
    budget_remaining = promql.build(
        f"1 - (avg_over_time(__arg_e__[{period}]) / avg_over_time(__arg_r__[{period}])) / {number(budget)}",
        {"e": errors1h, "r": requests1h},
    )
    slow_group = RuleGroup(
        name=f"{c.rule_group_prefix}.slo.{slo.name}.budget",
        interval=SLOW_GROUP_INTERVAL,
        rules=(
            Rule(expr=promql.build("avg_over_time(__arg_e__[1h])", {"e": errors5m}), record=c.slo_errors_rate1h_metric, labels=identity),
            Rule(expr=promql.build("avg_over_time(__arg_r__[1h])", {"r": requests5m}), record=c.slo_requests_rate1h_metric, labels=identity),
            Rule(expr=promql.parse(f"vector({number(spec.objective / 100)})"), record=c.slo_objective_metric,
                 labels={**identity, c.window_label: period}),
            Rule(expr=budget_remaining, record=c.slo_budget_remaining_metric, labels={**identity, c.window_label: period}),
        ),
    )
    return [fast_group, slow_group]
