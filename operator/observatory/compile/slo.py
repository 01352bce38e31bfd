"""SLO → multi-window multi-burn-rate rules: 5 rules per SLO, the windows shared by the namespace.

Sloth records `rate()` over the raw series for every alert window (5m to 3d) plus a 30d rule: 17
rules per SLO, each window re-reading every raw series, each a query of its own. Here each SLO has
5 rules: two read the raw series over 5m (requests, and errors divided by the error budget), one
records the objective, and the two alerts read one recorded series each. The burn rates over every
window, the alert conditions and the error budget are computed once per namespace and SLO period
for all its SLOs together (`slo_window_groups`): a rule's fixed cost is paid once, not once per
SLO. Every window is a ratio of sums (errors and requests are summed separately, then divided), so
a moment without an error series (OpenTelemetry exports one only once a call fails) counts as no
errors, with no zeros to record; dividing errors by the budget first makes the ratio the burn rate
itself, so the workbook's factors are the thresholds for every SLO alike.

Every window is tiled exactly: a window's mean rate is that of shorter windows read at offsets
(1h = 30m now + 30m offset 30m, 30m = six 5m rates at offsets 0, 5m, ..., 25m; the longest
shorter ones first), so it covers the same stretch of time as `rate(x[1h])` over the raw series
and an alert fires as soon as Sloth's would. Averaging the overlapping 5m rates over the window
instead (`sum_over_time(rate5m[1h])`) trails it by 2.5 minutes, and sampling them every 5 minutes
by up to 5 more. Each rule reads a few samples per series (7 windows of 2 to 6 tiles), all in one
30 s group; a tile without a sample (no error series yet, or no history that old) counts as zero.
The budget over the whole period tiles it from the longest window, every 5 minutes.

A rule group costs Prometheus a fixed ~0.3 ms per evaluation whatever it holds, more than a rule:
so an SLO's own 5 rules do not get a group of their own, but a place in one of SLO_SHARDS groups of
its namespace and period, picked by a hash of its name (`slo_shard`); each group is computed whole
from all its SLOs (`slo_groups.groups_of`). One change rewrites one group, not the namespace's rules.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import promql_parser as pp

from .. import promql
from ..conventions import Conventions
from ..models.common import duration_seconds, format_duration, nearest_bounds
from ..models.slo import DEFAULT_TIER_SEVERITY, SLO, AlertTier
from .alertrule import alert_name, check_alert_fields
from .errors import CompileError
from .rules import (
    Rule,
    RuleGroup,
    Tenant,
    object_name,
)
from .signals import Signals, le_pattern, number, parse_field, parse_ratio

BASE_PERIOD = "30d"
SHORTEST_WINDOW = "5m"  # the recorded rates' window: every longer window is a whole number of these tiles
BUDGET_GROUP_INTERVAL = "5m"
# Groups holding the SLOs' own rules, per namespace and period: at ~2.5 KiB of rules per SLO, 64
# objects of 512 KiB hold ~13,000 SLOs, more than the windows object's owners allow (~8,000).
SLO_SHARDS = 64
BURN_TOLERANCE = 1e-9


@dataclass(frozen=True)
class BurnWindow:
    """Alert when the error budget burns `factor` times too fast over both windows."""

    tier: str
    factor: float
    long: str
    short: str

    @property
    def threshold(self) -> float:
        """The factor less one part in 10^9: a burn equal to the factor fires. Exactly at the factor,
        the ratio's last bits (how its windows were summed) would decide, at different times for
        different but equivalent expressions (bench/slo_eval's "steady 6x" row)."""
        return round(self.factor * (1 - BURN_TOLERANCE), 12)


# The SRE workbook's table for a 30-day SLO; other periods scale the windows, not the factors.
BURN_WINDOWS = (
    BurnWindow("page", 14.4, "1h", "5m"),
    BurnWindow("page", 6, "6h", "30m"),
    BurnWindow("ticket", 3, "1d", "2h"),
    BurnWindow("ticket", 1, "3d", "6h"),
)


def scaled_window(window: str, period: str) -> str:
    """`window` scaled from a 30-day SLO to `period`, in whole 5m tiles (so that the recorded 5m
    rates tile it exactly), never below one."""
    tile = duration_seconds(SHORTEST_WINDOW)
    seconds = duration_seconds(window) * duration_seconds(period) / duration_seconds(BASE_PERIOD)
    return format_duration(max(round(seconds / tile), 1) * tile)


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
        errors, total = parse_ratio(indicator.ratio.errors, indicator.ratio.total, "spec.indicator.ratio", tenant)
        return Events(signals.rate_sum(errors, window), signals.rate_sum(total, window))
    if indicator.latency:
        block = indicator.latency
        extra = parse_field(block.selector, "spec.indicator.latency.selector", tenant, narrowing=True) if block.selector else None
        narrowed = Signals(tenant, extra, signals.group_by)
        return _latency_events(narrowed, block.histogram, block.threshold_seconds, window)
    block = indicator.llm
    extra = parse_field(block.selector, "spec.indicator.llm.selector", tenant, narrowing=True) if block.selector else None
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
        raise CompileError(field, f"{value:g} is not a bucket bound of the histogram (the SLO counts whole buckets); "
                                  f"{nearest_bounds(value, buckets)}; use one of {', '.join(f'{b:g}' for b in buckets)}")


def _latency_events(signals: Signals, histogram: str, threshold: float, window: str) -> Events:
    total = signals.rate_sum(signals.metric(histogram + "_count"), window)
    fast = signals.rate_sum(signals.metric(histogram + "_bucket", promql.matches("le", le_pattern(threshold))), window)
    return Events(promql.build("__arg_t__ - __arg_f__", {"t": total, "f": fast}), total)


def slo_shard(name: str) -> int:
    """Which of its namespace's SLO_SHARDS groups holds an SLO's rules: a stable hash of its name."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % SLO_SHARDS


def slo_rules(slo: SLO, tenant: Tenant) -> tuple[Rule, ...]:
    """The SLO's own rules, each labelled with its name (the part's key in its group)."""
    spec = slo.spec
    c = tenant.conventions
    tiers = {f"spec.alerting.{name}": getattr(spec.alerting, name) for name in ("page", "ticket")}
    check_alert_fields(c, {"spec.labels": spec.labels, **{f"{path}.labels": t.labels for path, t in tiers.items()}},
                       {f"{path}.annotations": t.annotations for path, t in tiers.items()},
                       {"spec.description": spec.description} if spec.description else None)
    signals = Signals(tenant, None, tuple(spec.group_by))
    events = _events(slo, signals)
    identity = {c.slo_label: slo.name, c.window_label: spec.window}
    of_slo = [promql.equal(k, v) for k, v in identity.items()]
    budget = number(1 - spec.objective / 100)

    alerts = []
    for tier_name in ("page", "ticket"):
        tier: AlertTier = getattr(spec.alerting, tier_name)
        if not tier.enabled:
            continue
        burning = promql.selector(c.slo_burning_metric, [*of_slo, promql.equal(c.slo_tier_label, tier_name)])
        # An empty label is no label to Prometheus: one grouped by must not route to an AlertRule's receivers.
        labels = {**spec.labels, **tier.labels, c.severity_label: tier.severity or DEFAULT_TIER_SEVERITY[tier_name],
                  c.slo_tier_label: tier_name, c.slo_label: slo.name, c.alertrule_label: ""}
        speed = "fast" if tier_name == "page" else "slowly but steadily"
        annotations = {c.summary_annotation: tier.annotations.summary or
                       f"SLO {slo.name} ({spec.objective:g}% over {spec.window}) is burning its error budget {speed}"}
        if tier.annotations.description or spec.description:
            annotations[c.description_annotation] = tier.annotations.description or spec.description
        if tier.annotations.runbook_url:
            annotations[c.runbook_annotation] = tier.annotations.runbook_url
        name = tier.name or f"{alert_name(slo.name)}ErrorBudgetBurn{tier_name.capitalize()}"
        alerts.append(Rule(expr=burning, alert=name, for_=tier.for_, labels=labels, annotations=annotations))

    errors = promql.build(f"__arg_e__ / {budget}", {"e": events.errors})
    # Only where a tier asks for one, so that an SLO without keeps its 5 rules; the tenant label lets
    # the namespace's pinned conditions read it.
    minimums = [Rule(expr=promql.parse(f"vector({getattr(spec.alerting, t).min_events})"), record=c.slo_min_events_metric,
                     labels={**identity, c.slo_tier_label: t, c.tenant_label: tenant.namespace})
                for t in ("page", "ticket") if getattr(spec.alerting, t).enabled and getattr(spec.alerting, t).min_events]
    return (
        Rule(expr=events.total, record=c.slo_requests_rate_metric, labels=identity),
        Rule(expr=errors, record=c.slo_errors_rate_metric, labels=identity),
        Rule(expr=promql.parse(f"vector({number(spec.objective / 100)})"), record=c.slo_objective_metric, labels=identity),
        *minimums,
        *alerts,
    )


def slo_windows_name(period: str, c: Conventions) -> str:
    return object_name(c.slo_windows_object_name, period)


def tiling(window: int, shorter: list[int]) -> list[tuple[int, int]]:
    """(part, offset) pairs in seconds that cover the last `window` seconds exactly, longest parts first.

    Every window is a whole number of 5m tiles and the 5m one is among `shorter`, so nothing is left.
    """
    parts, covered = [], 0
    for part in sorted(shorter, reverse=True):
        while window - covered >= part:
            parts.append((part, covered))
            covered += part
    assert covered == window, (window, shorter)
    return parts


def slo_window_groups(period: str, tenant: Tenant) -> list[RuleGroup]:
    """Burn rates, alert conditions and error budget of every SLO of `period` in the namespace."""
    c = tenant.conventions
    of_period = [promql.equal(c.window_label, period)]
    errors, requests = (promql.selector(m, of_period) for m in (c.slo_errors_rate_metric, c.slo_requests_rate_metric))
    # A zero for every SLO (and group) that has traffic now: what a tile without a sample counts as
    # (no error series yet, or no history that old yet), so that a window never waits for its oldest tile.
    zero = promql.build("0 * __arg_r__", {"r": requests})

    def of_window(metric: str, window: str) -> pp.Expr:
        return promql.selector(metric, [*of_period, promql.equal(c.burn_window_label, window)])

    scaled = {w: (scaled_window(w.long, period), scaled_window(w.short, period)) for w in BURN_WINDOWS}
    windows = sorted({x for pair in scaled.values() for x in pair} | {SHORTEST_WINDOW}, key=duration_seconds)
    seconds = {w: int(duration_seconds(w)) for w in windows}
    by_seconds = {v: k for k, v in seconds.items()}
    recorded = {"errors": {SHORTEST_WINDOW: errors}, "requests": {SHORTEST_WINDOW: requests}}
    metrics = {"errors": c.slo_errors_window_metric, "requests": c.slo_requests_window_metric}

    def mean(kind: str, total: int) -> pp.Expr:
        """The mean rate over the last `total` seconds: its tiles' recorded means, weighted by length.
        Exact tiling, where an average of overlapping 5m rates would trail the window by 2.5 minutes."""
        parts = tiling(total, [s for s in seconds.values() if s < total])
        unit = math.gcd(*(part for part, _ in parts))
        args, terms = {"z": zero}, []
        for i, (part, offset) in enumerate(parts):
            args[f"t{i}"] = recorded[kind][by_seconds[part]]
            shifted = f" offset {format_duration(offset)}" if offset else ""
            weight = f"{part // unit} * " if part != unit else ""
            terms.append(f"{weight}(__arg_t{i}__{shifted} or ignoring({c.burn_window_label}) __arg_z__)")
        # The tiles' window labels differ (and a zero has none): matched without them.
        return promql.build(f"({f' + ignoring({c.burn_window_label}) '.join(terms)}) / {total // unit}", args)

    # Shortest first: each window reads the shorter ones this same evaluation recorded.
    means = []
    for w in windows[1:]:
        for kind in ("errors", "requests"):
            means.append(Rule(expr=mean(kind, seconds[w]), record=metrics[kind], labels={c.burn_window_label: w}))
            recorded[kind][w] = of_window(metrics[kind], w)
    rates = [Rule(expr=promql.build("__arg_e__ / __arg_r__", {"e": recorded["errors"][w], "r": recorded["requests"][w]}),
                  record=c.slo_burn_rate_metric, labels={c.burn_window_label: w}) for w in windows]

    conditions = []
    for tier in ("page", "ticket"):
        pairs = []
        minimum = promql.selector(c.slo_min_events_metric, [*of_period, promql.equal(c.slo_tier_label, tier)])
        for w in (w for w in BURN_WINDOWS if w.tier == tier):
            long, short = scaled[w]
            # The value is the long window's burn rate; the window label goes, so that the alert's
            # labels do not change with the pair that holds. An SLO that asks for a minimum of events
            # in the long window (minEvents) is silent while there are fewer.
            pairs.append(promql.build(
                f"(__arg_long__ > {number(w.threshold)} and ignoring({c.burn_window_label}) __arg_short__ > {number(w.threshold)}) "
                f"unless ignoring({c.burn_window_label}) (__arg_n__ * {seconds[long]} < on({c.slo_label}, {c.window_label}) "
                f"group_left() __arg_min__)",
                {"long": of_window(c.slo_burn_rate_metric, long), "short": of_window(c.slo_burn_rate_metric, short),
                 "n": recorded["requests"][long], "min": minimum}))
        conditions.append(Rule(
            expr=promql.build(f"max without ({c.burn_window_label}) ((__arg_a__) or (__arg_b__))", {"a": pairs[0], "b": pairs[1]}),
            record=c.slo_burning_metric, labels={c.slo_tier_label: tier}))

    # The period's means are recorded one per rule (a window of the period): tiled from the longest
    # window, errors and requests in one expression would pass the operator bound PromQL is held to.
    whole = [Rule(expr=mean(kind, int(duration_seconds(period))), record=metrics[kind], labels={c.burn_window_label: period})
             for kind in ("errors", "requests")]
    return [
        RuleGroup(name=f"{c.rule_group_prefix}.slo-windows.{period}", rules=(*means, *rates, *conditions)),
        RuleGroup(
            name=f"{c.rule_group_prefix}.slo-windows.{period}.budget",
            interval=BUDGET_GROUP_INTERVAL,
            rules=(
                *whole,
                # Up to 5 minutes late, which is noise against the period.
                # Without the means' window label: the budget is the SLO's, not a window's.
                Rule(expr=promql.build(f"max without ({c.burn_window_label}) (1 - __arg_e__ / __arg_r__)",
                                       {"e": of_window(metrics["errors"], period), "r": of_window(metrics["requests"], period)}),
                     record=c.slo_budget_remaining_metric),
            ),
        ),
    ]
