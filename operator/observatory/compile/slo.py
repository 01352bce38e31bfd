"""SLO → multi-window multi-burn-rate rules: 4 rules per SLO, the windows shared by the namespace.

Sloth records `rate()` over the raw series for every alert window (5m to 3d) plus a 30d rule: 17
rules per SLO, each window re-reading every raw series, each a query of its own. Here each SLO has
4 rules: one reads the raw series over 5m (errors divided by the error budget, and requests, as one
series set told apart by a label), one records the objective, and the two alerts read one recorded
series each. The burn rates over every window, the alert conditions and the error budget are
computed once per namespace and SLO period for all its SLOs together (`slo_window_groups`): a rule's
fixed cost is paid once, not once per SLO. Every window is a ratio of sums (errors and requests are
summed separately, then divided), so a moment without an error series (OpenTelemetry exports one
only once a call fails) counts as no errors; dividing errors by the budget first makes the ratio
the burn rate itself, so the workbook's factors are the thresholds for every SLO alike.

Every window is tiled exactly: a window's mean rate is that of shorter windows read at offsets
(1h = 30m now + 30m offset 30m, 30m = six 5m rates at offsets 0, 5m, ..., 25m; the longest
shorter ones first), so it covers the same stretch of time as `rate(x[1h])` over the raw series
and an alert fires as soon as Sloth's would. Averaging the overlapping 5m rates over the window
instead (`sum_over_time(rate5m[1h])`) trails it by 2.5 minutes. Errors and requests being one
series set, each tile is one read for both; the tiles are unioned (told apart by a label) and
summed, so a tile without a sample (no history that old yet) adds nothing, with no zeros to read.
The windows a page reads, and the ticket's short ones, are recorded every 30 s; the ticket's long
windows (1d, 3d), tiled from the 6h one, and the budget over the whole period every 2.5 minutes,
which the ticket's 5 minutes of slack allow (a ticket comes up to one interval and two 30 s
evaluations later than Sloth's).

A rule group costs Prometheus a fixed ~0.3 ms per evaluation whatever it holds, more than a rule:
so an SLO's own rules do not get a group of their own, but a place in one of SLO_SHARDS groups of
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
# The ticket tier's long windows, the period's mean and the budget. Every 5 minutes made a ticket
# 5.5 minutes late at the worst phase (bench/slo_eval); windows are whole 5m tiles, so offset reads
# still meet an evaluation of this group exactly.
LONG_WINDOWS_INTERVAL = "2m30s"
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
    generated = (c.slo_label, c.window_label, c.burn_window_label, c.slo_events_kind_label, c.slo_tile_label, c.slo_tier_label)
    for i, name in enumerate(spec.group_by):
        if name in generated:
            raise CompileError(f"spec.groupBy.{i}", f"{name!r} is a label Observatory sets on the SLO's series, so "
                                                     "groups would merge with its windows; group by another label")
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

    # Both kinds in one series set, so that every tile of the namespace's windows is one read for
    # both: errors per budget (as no errors where a success has no error series yet: OpenTelemetry
    # exports one only once a call fails) and requests.
    kind = c.slo_events_kind_label
    # Not grouped, one series or none: a constant zero reads the raw series once less than `0 * total`
    # (`on()`: the sum has the tenant label, vector() none).
    no_errors = "on() vector(0)" if not spec.group_by else "0 * __arg_t__"
    both = promql.build(f'label_replace(__arg_e__ / {budget} or {no_errors}, "{kind}", "errors", "", "") '
                        f'or label_replace(__arg_t__, "{kind}", "requests", "", "")', {"e": events.errors, "t": events.total})
    # Only where a tier asks for one, so that an SLO without keeps its 4 rules; the tenant label lets
    # the namespace's pinned conditions read it.
    minimums = [Rule(expr=promql.parse(f"vector({getattr(spec.alerting, t).min_events})"), record=c.slo_min_events_metric,
                     labels={**identity, c.slo_tier_label: t, c.tenant_label: tenant.namespace})
                for t in ("page", "ticket") if getattr(spec.alerting, t).enabled and getattr(spec.alerting, t).min_events]
    return (
        Rule(expr=both, record=c.slo_events_metric, labels={**identity, c.burn_window_label: SHORTEST_WINDOW}),
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
    kind_label, window_label = c.slo_events_kind_label, c.burn_window_label
    of_period = [promql.equal(c.window_label, period)]

    def events(window: str, kind: str | None = None) -> pp.Expr:
        of_kind = [promql.equal(kind_label, kind)] if kind else []
        return promql.selector(c.slo_events_metric, [*of_period, promql.equal(window_label, window), *of_kind])

    scaled = {w: (scaled_window(w.long, period), scaled_window(w.short, period)) for w in BURN_WINDOWS}
    windows = sorted({x for pair in scaled.values() for x in pair} | {SHORTEST_WINDOW}, key=duration_seconds)
    seconds = {w: int(duration_seconds(w)) for w in windows}
    by_seconds = {v: k for k, v in seconds.items()}
    # Only the ticket tier's long windows may trail by one long-window interval (its slack is 5
    # minutes); every page window and the ticket's short ones are exact at every evaluation.
    exact = {x for w in BURN_WINDOWS for x in (scaled[w] if w.tier == "page" else scaled[w][1:])} | {SHORTEST_WINDOW}
    fast = [w for w in windows if w in exact]
    slow = [w for w in windows if w not in exact]
    def mean(total: int, shorter: list[str]) -> pp.Expr:
        """Both kinds' mean rates over the last `total` seconds: their tiles' recorded means, weighted
        by length. Exact tiling, where an average of overlapping 5m rates would trail the window by
        2.5 minutes. A tile without a sample (no history that old yet) adds nothing."""
        parts = tiling(total, [seconds[w] for w in shorter if seconds[w] < total])
        unit = math.gcd(*(part for part, _ in parts))
        args, tiles = {}, []
        for i, (part, offset) in enumerate(parts):
            args[f"t{i}"] = events(by_seconds[part])
            tile = f"__arg_t{i}__ offset {format_duration(offset)}" if offset else f"__arg_t{i}__"
            tiles.append(f"{part // unit} * {tile}" if part != unit else tile)
        # Tiles of different windows differ in their window label.
        return promql.build(f"{promql.tiles_sum(c.slo_tile_label, tiles, (window_label,))} / {total // unit}", args)

    def burn_rates(of: list[str], one_rule: bool) -> list[Rule]:
        """The burn rates of the windows `of`: errors per budget over requests, per window; all in
        one rule, or one rule per window that says its window (what a reader of the 30 s group's
        windows can tell apart from the long ones)."""
        def rule(matcher: pp.Matcher, labels: dict[str, str]) -> Rule:
            errors, requests = (promql.selector(c.slo_events_metric, [*of_period, matcher, promql.equal(kind_label, k)])
                                for k in ("errors", "requests"))
            return Rule(expr=promql.build(f"__arg_e__ / ignoring({kind_label}) __arg_r__", {"e": errors, "r": requests}),
                        record=c.slo_burn_rate_metric, labels=labels)
        if one_rule:
            return [rule(promql.matches(window_label, "|".join(of)), {})]
        return [rule(promql.equal(window_label, w), {window_label: w}) for w in of]

    def read(window: str, kind: str | None = None) -> pp.Expr:
        """A window's burn rate (or its requests' mean) as the alert conditions read it: a long
        window's latest sample, over two of its group's intervals (an instant read could fall between them)."""
        selector = events(window, kind) if kind else promql.selector(
            c.slo_burn_rate_metric, [*of_period, promql.equal(window_label, window)])
        if window in fast:
            return selector
        span = format_duration(2 * duration_seconds(LONG_WINDOWS_INTERVAL))
        return promql.build(f"last_over_time(__arg_s__[{span}])", {"s": selector})

    # Shortest first: each window reads the shorter ones this same evaluation recorded (the 5m one is
    # each SLO's own rule, recorded by its group, which runs beside this one, within the last 30 s).
    fast_means = [Rule(expr=mean(seconds[w], fast), record=c.slo_events_metric, labels={window_label: w}) for w in fast[1:]]
    slow_means = [Rule(expr=mean(seconds[w], windows), record=c.slo_events_metric, labels={window_label: w}) for w in slow]

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
                f"(__arg_long__ > {number(w.threshold)} and ignoring({window_label}) __arg_short__ > {number(w.threshold)}) "
                f"unless ignoring({window_label}, {kind_label}) (__arg_n__ * {seconds[long]} < on({c.slo_label}, {c.window_label}) "
                f"group_left() __arg_min__)",
                {"long": read(long), "short": read(short), "n": read(long, "requests"), "min": minimum}))
        conditions.append(Rule(
            expr=promql.build(f"max without ({window_label}) ((__arg_a__) or (__arg_b__))", {"a": pairs[0], "b": pairs[1]}),
            record=c.slo_burning_metric, labels={c.slo_tier_label: tier}))

    whole = Rule(expr=mean(int(duration_seconds(period)), windows), record=c.slo_events_metric, labels={window_label: period})
    return [
        RuleGroup(name=f"{c.rule_group_prefix}.slo-windows.{period}",
                  rules=(*fast_means, *burn_rates(fast, one_rule=True), *conditions)),
        RuleGroup(
            name=f"{c.rule_group_prefix}.slo-windows.{period}.long",
            interval=LONG_WINDOWS_INTERVAL,
            rules=(
                *slow_means,
                *burn_rates(slow, one_rule=False),
                whole,
                # Up to 2.5 minutes late, which is noise against the period.
                # Without the means' window label: the budget is the SLO's, not a window's.
                Rule(expr=promql.build(f"max without ({window_label}) (1 - __arg_e__ / ignoring({kind_label}) __arg_r__)",
                                       {"e": events(period, "errors"), "r": events(period, "requests")}),
                     record=c.slo_budget_remaining_metric),
            ),
        ),
    ]
