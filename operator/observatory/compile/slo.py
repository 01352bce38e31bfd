"""SLO → multi-window multi-burn-rate rules: 2 records per SLO, windows and alerts per group of SLOs.

Sloth records `rate()` over the raw series for every alert window (5m to 3d) plus a 30d rule: 17
rules per SLO, each window re-reading every raw series, each a query of its own, evaluated every
30 s. Here each SLO has 2 rules of its own: one reads the raw series over 5m (errors divided by the
error budget, and requests, as one series set told apart by a label), one records the objective.
The SLOs of a namespace and period are spread over SLO_SHARDS groups by a hash of their names
(`slo_shard`); each group, every minute, records its SLOs' 5m rates, then in the same evaluation
their windows, burn rates and alert conditions, then alerts, one alert rule for all the SLOs that
alert alike (`slo_groups.slo_group`): a rule's fixed cost is paid once per group, not once per SLO.
Every window is a ratio of sums (errors and requests are summed separately, then divided), so a
moment without an error series (OpenTelemetry exports one only once a call fails) counts as no
errors; dividing errors by the budget first makes the ratio the burn rate itself, so the
workbook's factors are the thresholds for every SLO alike.

Every window is tiled exactly: a window's mean rate is that of shorter windows read at offsets
(1h = 30m now + 30m offset 30m, 30m = six 5m rates at offsets 0, 5m, ..., 25m; the longest
shorter ones first), so it covers the same stretch of time as `rate(x[1h])` over the raw series.
Averaging the overlapping 5m rates over the window instead (`sum_over_time(rate5m[1h])`) trails it
by 2.5 minutes. A group's evaluations are a whole number of minutes apart, so an offset read meets
one of them exactly. Errors and requests being one series set, each tile is one read for both; the
tiles are unioned (told apart by a label) and summed, so a tile without a sample (no history that
old yet) adds nothing, with no zeros to read. Every window an alert reads is computed in the
evaluation that alerts on it, so a page comes at most one minute, half a minute on average, after
rules evaluated every 30 s, and the minute halves what the group costs. The ticket's long windows
(1d, 3d), tiled from the groups' 6h ones, are one group per namespace and period every 3 minutes,
which the ticket's 5 minutes of slack allow; what no alert reads (the objectives, the mean over the
period and the budget) is recorded every 4 minutes (`slo_long_groups`, `slo_groups.slo_group`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection
from dataclasses import dataclass

import promql_parser as pp

from .. import promql
from ..conventions import Conventions
from ..models.common import duration_seconds, format_duration, nearest_bounds
from ..models.slo import DEFAULT_TIER_SEVERITY, SLO, AlertTier
from .alertrule import check_alert_fields
from .errors import CompileError
from .rules import Rule, RuleGroup, Tenant, object_name
from .signals import Signals, le_pattern, number, parse_field, parse_ratio

BASE_PERIOD = "30d"
SHORTEST_WINDOW = "5m"  # the recorded rates' window: every longer window is a whole number of these tiles
# The ticket tier's long windows (1d and 3d for a 30-day SLO). Every 5 minutes made a ticket 5.5
# minutes late at the worst phase (bench/slo_eval), every 3 minutes 4.5, every 2 minutes 3.5; each
# minute less costs more (at 500 SLOs the long windows take ~140 ms per evaluation). Their tiles are whole 6h
# and 1d windows, so offset reads meet an evaluation of this group exactly.
LONG_WINDOWS_INTERVAL = "3m"
# The groups' interval; the long windows' is a whole number of it, so that their evaluations meet.
SLO_GROUP_INTERVAL = "1m"
# Records for dashboards that no alert reads: the objectives, the period's mean and the budget. The
# period's mean reads ten 3d windows (as costly as the long windows together); up to 4
# minutes late is noise against the period, and a sample every 4 minutes is always within an
# instant query's 5 minutes of lookback.
UNREAD_RECORDS_INTERVAL = "4m"
# Groups per namespace and period: each has a fixed cost and computes its windows and conditions
# once; at ~1.3 KiB of records per SLO, 8 objects of 512 KiB hold ~3,000 SLOs alerting alike.
SLO_SHARDS = 8
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


def shard_text(shard: int) -> str:
    return f"{shard:02d}"


@dataclass(frozen=True)
class SloRules:
    """An SLO's rules in its group: its own records, and its alerts, each reading its SLO alone
    (`slo_groups.slo_group` gives the SLOs alerting alike one alert rule for all)."""

    records: tuple[Rule, ...]
    alerts: tuple[Rule, ...]


def burning(period: str, shard: str, tier: str, names: list[str], c: Conventions) -> pp.Expr:
    """The burning conditions of the SLOs `names` of a group, as their shared alert reads them."""
    slos = promql.equal(c.slo_label, names[0]) if len(names) == 1 else \
        promql.matches(c.slo_label, "|".join(n.replace(".", "\\.") for n in names))
    return promql.selector(c.slo_burning_metric, [promql.equal(c.window_label, period), promql.equal(c.slo_shard_label, shard),
                                                  promql.equal(c.slo_tier_label, tier), slos])


def slo_rules(slo: SLO, tenant: Tenant) -> SloRules:
    """The SLO's own rules, each labelled with its name (the part's key in its group)."""
    spec = slo.spec
    c = tenant.conventions
    tiers = {f"spec.alerting.{name}": getattr(spec.alerting, name) for name in ("page", "ticket")}
    check_alert_fields(c, {"spec.labels": spec.labels, **{f"{path}.labels": t.labels for path, t in tiers.items()}},
                       {f"{path}.annotations": t.annotations for path, t in tiers.items()},
                       {"spec.description": spec.description} if spec.description else None)
    generated = (c.slo_label, c.window_label, c.burn_window_label, c.slo_events_kind_label, c.slo_tile_label, c.slo_tier_label,
                 c.slo_shard_label)
    for i, name in enumerate(spec.group_by):
        if name in generated:
            raise CompileError(f"spec.groupBy.{i}", f"{name!r} is a label Observatory sets on the SLO's series, so "
                                                     "groups would merge with its windows; group by another label")
    signals = Signals(tenant, None, tuple(spec.group_by))
    events = _events(slo, signals)
    identity = {c.slo_label: slo.name, c.window_label: spec.window}
    shard = {c.slo_shard_label: shard_text(slo_shard(slo.name))}
    budget = number(1 - spec.objective / 100)

    alerts = []
    for tier_name in ("page", "ticket"):
        tier: AlertTier = getattr(spec.alerting, tier_name)
        if not tier.enabled:
            continue
        # An empty label is no label to Prometheus: one grouped by must not route to an AlertRule's
        # receivers, and the shard is the group's business, not the alert's.
        labels = {**spec.labels, **tier.labels, c.severity_label: tier.severity or DEFAULT_TIER_SEVERITY[tier_name],
                  c.slo_tier_label: tier_name, c.alertrule_label: "", c.slo_shard_label: ""}
        speed = "fast" if tier_name == "page" else "slowly but steadily"
        # Templated by the slo label, so that SLOs alerting alike share the alert rule.
        annotations = {c.summary_annotation: tier.annotations.summary or
                       f"SLO {{{{ $labels.{c.slo_label} }}}} ({spec.objective:g}% over {spec.window}) is burning its "
                       f"error budget {speed}"}
        if tier.annotations.description or spec.description:
            annotations[c.description_annotation] = tier.annotations.description or spec.description
        if tier.annotations.runbook_url:
            annotations[c.runbook_annotation] = tier.annotations.runbook_url
        name = tier.name or f"{c.slo_alert_name}{tier_name.capitalize()}"
        expr = burning(spec.window, shard[c.slo_shard_label], tier_name, [slo.name], c)
        alerts.append(Rule(expr=expr, alert=name, for_=tier.for_, labels=labels, annotations=annotations))

    # Both kinds in one series set, so that every tile of the group's windows is one read for
    # both: errors per budget (as no errors where a success has no error series yet: OpenTelemetry
    # exports one only once a call fails) and requests.
    kind = c.slo_events_kind_label
    # Not grouped, one series or none: a constant zero reads the raw series once less than `0 * total`
    # (`on()`: the sum has the tenant label, vector() none).
    no_errors = "on() vector(0)" if not spec.group_by else "0 * __arg_t__"
    both = promql.build(f'label_replace(__arg_e__ / {budget} or {no_errors}, "{kind}", "errors", "", "") '
                        f'or label_replace(__arg_t__, "{kind}", "requests", "", "")', {"e": events.errors, "t": events.total})
    # Only where a tier asks for one, so that an SLO without keeps its 2 records; the tenant label lets
    # the group's pinned conditions read it.
    minimums = [Rule(expr=promql.parse(f"vector({getattr(spec.alerting, t).min_events})"), record=c.slo_min_events_metric,
                     labels={**identity, **shard, c.slo_tier_label: t, c.tenant_label: tenant.namespace})
                for t in ("page", "ticket") if getattr(spec.alerting, t).enabled and getattr(spec.alerting, t).min_events]
    return SloRules(records=(
        Rule(expr=both, record=c.slo_events_metric, labels={**identity, **shard, c.burn_window_label: SHORTEST_WINDOW}),
        Rule(expr=promql.parse(f"vector({number(spec.objective / 100)})"), record=c.slo_objective_metric, labels=identity),
        *minimums,
    ), alerts=tuple(alerts))


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


class _Windows:
    """The burn rates of a period's SLOs over every window, and their alert conditions: those a
    group's alerts read (`shard_rules`) and the ticket's long windows with the budget (`long_group`)."""

    def __init__(self, period: str, c: Conventions):
        self.period, self.c = period, c
        scaled = {w: (scaled_window(w.long, period), scaled_window(w.short, period)) for w in BURN_WINDOWS}
        self.scaled = scaled
        windows = sorted({x for pair in scaled.values() for x in pair} | {SHORTEST_WINDOW}, key=duration_seconds)
        self.windows = windows
        self.seconds = {w: int(duration_seconds(w)) for w in windows}
        # Only the ticket tier's long windows may trail by one long-window interval (its slack is 5
        # minutes); every page window and the ticket's short ones are exact at every evaluation.
        exact = {x for w in BURN_WINDOWS for x in (scaled[w] if w.tier == "page" else scaled[w][1:])} | {SHORTEST_WINDOW}
        self.fast = [w for w in windows if w in exact]
        self.slow = [w for w in windows if w not in exact]

    def events(self, scope: list[pp.Matcher], window: str, kind: str | None = None) -> pp.Expr:
        c = self.c
        of_kind = [promql.equal(c.slo_events_kind_label, kind)] if kind else []
        return promql.selector(c.slo_events_metric, [*scope, promql.equal(c.burn_window_label, window), *of_kind])

    def scope(self, shard: str | None = None) -> list[pp.Matcher]:
        """The period's series, or those of one group's SLOs."""
        of_shard = [promql.equal(self.c.slo_shard_label, shard)] if shard else []
        return [promql.equal(self.c.window_label, self.period), *of_shard]

    def mean(self, scope: list[pp.Matcher], total: int, shorter: list[str]) -> pp.Expr:
        """Both kinds' mean rates over the last `total` seconds: their tiles' recorded means, weighted
        by length. Exact tiling, where an average of overlapping 5m rates would trail the window by
        2.5 minutes. A tile without a sample (no history that old yet) adds nothing."""
        by_seconds = {v: k for k, v in self.seconds.items()}
        parts = tiling(total, [self.seconds[w] for w in shorter if self.seconds[w] < total])
        unit = math.gcd(*(part for part, _ in parts))
        args, tiles = {}, []
        for i, (part, offset) in enumerate(parts):
            args[f"t{i}"] = self.events(scope, by_seconds[part])
            tile = f"__arg_t{i}__ offset {format_duration(offset)}" if offset else f"__arg_t{i}__"
            tiles.append(f"{part // unit} * {tile}" if part != unit else tile)
        # Tiles of different windows differ in their window label.
        return promql.build(f"{promql.tiles_sum(self.c.slo_tile_label, tiles, (self.c.burn_window_label,))} / {total // unit}",
                            args)

    def means(self, scope: list[pp.Matcher], of: list[str], shorter: list[str]) -> list[Rule]:
        """Shortest first: each window reads the shorter ones this same evaluation recorded."""
        return [Rule(expr=self.mean(scope, self.seconds[w], shorter), record=self.c.slo_events_metric,
                     labels={self.c.burn_window_label: w}) for w in of]

    def burn_rates(self, scope: list[pp.Matcher], of: list[str], one_rule: bool) -> list[Rule]:
        """The burn rates of the windows `of`: errors per budget over requests, per window; all in
        one rule, or one rule per window that says its window (what a reader of the group's
        windows can tell apart from the long ones)."""
        c, kind_label = self.c, self.c.slo_events_kind_label

        def rule(matcher: pp.Matcher, labels: dict[str, str]) -> Rule:
            errors, requests = (promql.selector(c.slo_events_metric, [*scope, matcher, promql.equal(kind_label, k)])
                                for k in ("errors", "requests"))
            return Rule(expr=promql.build(f"__arg_e__ / ignoring({kind_label}) __arg_r__", {"e": errors, "r": requests}),
                        record=c.slo_burn_rate_metric, labels=labels)
        if one_rule:
            return [rule(promql.matches(c.burn_window_label, "|".join(of)), {})]
        return [rule(promql.equal(c.burn_window_label, w), {c.burn_window_label: w}) for w in of]

    def read(self, scope: list[pp.Matcher], window: str, kind: str | None = None) -> pp.Expr:
        """A window's burn rate (or its requests' mean) as the alert conditions read it: a long
        window's latest sample, over two of its group's intervals (an instant read could fall between them)."""
        c = self.c
        selector = self.events(scope, window, kind) if kind else promql.selector(
            c.slo_burn_rate_metric, [*scope, promql.equal(c.burn_window_label, window)])
        if window in self.fast:
            return selector
        span = format_duration(2 * duration_seconds(LONG_WINDOWS_INTERVAL))
        return promql.build(f"last_over_time(__arg_s__[{span}])", {"s": selector})

    def conditions(self, scope: list[pp.Matcher], guarded: Collection[str]) -> list[Rule]:
        """Per tier, whether a pair of its windows burns over its factor; in the `guarded` tiers, not
        for SLOs with fewer events than their minimum in the long window."""
        c, window_label, kind_label = self.c, self.c.burn_window_label, self.c.slo_events_kind_label
        out = []
        for tier in ("page", "ticket"):
            pairs = []
            minimum = promql.selector(c.slo_min_events_metric, [*scope, promql.equal(c.slo_tier_label, tier)])
            for w in (w for w in BURN_WINDOWS if w.tier == tier):
                long, short = self.scaled[w]
                # The value is the long window's burn rate; the window label goes, so that the alert's
                # labels do not change with the pair that holds.
                pair = (f"__arg_long__ > {number(w.threshold)} and ignoring({window_label}) __arg_short__ > "
                        f"{number(w.threshold)}")
                args = {"long": self.read(scope, long), "short": self.read(scope, short)}
                if tier in guarded:  # an SLO that asks for a minimum of events in the long window is silent below it
                    pair = (f"({pair}) unless ignoring({window_label}, {kind_label}) (__arg_n__ * {self.seconds[long]} "
                            f"< on({c.slo_label}, {c.window_label}) group_left() __arg_min__)")
                    args |= {"n": self.read(scope, long, "requests"), "min": minimum}
                pairs.append(promql.build(pair, args))
            out.append(Rule(
                expr=promql.build(f"max without ({window_label}) ((__arg_a__) or (__arg_b__))", {"a": pairs[0], "b": pairs[1]}),
                record=c.slo_burning_metric, labels={c.slo_tier_label: tier}))
        return out


def slo_shard_rules(period: str, shard: str, c: Conventions, guarded: Collection[str] = ()) -> list[Rule]:
    """What a group computes after its SLOs' 5m rates, in order: their windows up to the page's and
    the ticket's short ones (exact at each evaluation, read from this evaluation's shorter ones), the
    burn rates and the alert conditions, which its alerts then read in the same evaluation. Only the
    `guarded` tiers (where one of its SLOs sets minEvents) read the events' minimums."""
    w = _Windows(period, c)
    scope = w.scope(shard)
    return [*w.means(scope, w.fast[1:], w.fast), *w.burn_rates(scope, w.fast, one_rule=True), *w.conditions(scope, guarded)]


def slo_long_groups(period: str, c: Conventions) -> list[RuleGroup]:
    """For every SLO of `period` in the namespace: the ticket tier's long windows, tiled from the
    groups' 6h ones, and the mean over the whole period with the budget (no alert reads them)."""
    w = _Windows(period, c)
    scope = w.scope()
    kind_label = c.slo_events_kind_label
    errors, requests = (w.events(scope, period, kind) for kind in ("errors", "requests"))
    return [
        RuleGroup(name=f"{c.rule_group_prefix}.slo-windows.{period}.long", interval=LONG_WINDOWS_INTERVAL,
                  rules=(*w.means(scope, w.slow, w.windows), *w.burn_rates(scope, w.slow, one_rule=False))),
        RuleGroup(name=f"{c.rule_group_prefix}.slo-windows.{period}.budget", interval=UNREAD_RECORDS_INTERVAL, rules=(
            Rule(expr=w.mean(scope, int(duration_seconds(period)), w.windows), record=c.slo_events_metric,
                 labels={c.burn_window_label: period}),
            # Without the means' window and group labels: the budget is the SLO's, whichever group
            # computes its windows.
            Rule(expr=promql.build(f"max without ({c.burn_window_label}, {c.slo_shard_label}) "
                                   f"(1 - __arg_e__ / ignoring({kind_label}) __arg_r__)", {"e": errors, "r": requests}),
                 record=c.slo_budget_remaining_metric),
        )),
    ]
