"""Calendar budgets: the spend since the start of a day, week or month in a time zone.

PromQL's calendar functions (hour(), day_of_month(), ...) read UTC, and a range selector's length is
fixed, so neither "since local midnight" nor "since the 1st" is one query. A calendar budget's rule
group keeps a running total instead, in three steps each evaluation:

1. the zone's wall-clock time: time() plus its UTC offset, the zone's transitions from FIRST_YEAR to
   LAST_YEAR compiled in as steps `(time() >= bool T)`, in parts of at most TRANSITIONS_PER_PART so
   that every expression stays well under promql.MAX_BINARY_OPERATORS (the zones with the most
   transitions, e.g. America/Los_Angeles, need 4 parts; UTC none); after LAST_YEAR the last offset
   holds. The years start at 1970 because promtool's tests do: the transitions near it prove DST.
2. the spend since the period's start, per label set: its last value while the period's number (local
   day, week or month) is that of the previous evaluation, else nothing, plus the mean recorded spend
   rate of the last interval times the interval (times the time since the period's start in its
   first evaluation, so the new period counts no spend from before it).
3. the alerts, read from that total.

What a running total loses, and a rolling window (mean recorded rate times covered time) loses too:
spend while the group is not evaluated (Prometheus down, evaluations skipped). The total itself
survives restarts and gaps: it and the previous clock are read back over more than a period.

Costs: every evaluation computes each transition's step, ~20 ms per evaluation for Europe/Berlin's
140 in promtool 2.42 (2 ms with none), once per budget (a clock per namespace and zone, shared as the
price catalogue is, would pay it once). The offsets are those of the tzdata the compiler runs with:
a release changing a zone's rules changes its output.
"""

from __future__ import annotations

import datetime
import functools
import zoneinfo
from dataclasses import dataclass
from typing import get_args

import promql_parser as pp

from .. import promql
from ..models.alertrule import CalendarBudget, Weekday
from ..models.common import duration_seconds
from .rules import Rule
from .signals import Signals, number

FIRST_YEAR, LAST_YEAR = 1970, 2049  # fixed, so output never depends on today's date
TRANSITIONS_PER_PART = 48  # ~2 operators each: a part stays under 100 of the 128 operators allowed
DEFAULT_INTERVAL = "1m"  # the total adds rate × interval, so the group's interval must be known
PREVIOUS = "1s"  # offset reaching the previous evaluation's samples, not this one's
WEEKDAYS = get_args(Weekday)  # Monday first
DAY = 86400


@dataclass(frozen=True)
class Period:
    """A period on the local clock `__arg_l__` (seconds): its number, equal within one period; the seconds
    since its start; its length; how far back the total is read (longer than any one period)."""

    index: str
    elapsed: str
    length: str
    lookback: str
    unit: tuple[str, int]  # the forecast's unit: name, seconds


def _week(start: str) -> Period:
    # 1970-01-01, local day 0, was a Thursday: (day + 3) % 7 counts days since Monday; + 7 keeps it positive.
    shift = 10 - WEEKDAYS.index(start)
    days = f"(floor(__arg_l__ / {DAY}) + {shift})"
    return Period(index=f"floor({days} / 7)", elapsed=f"({days} % 7) * {DAY} + __arg_l__ % {DAY}",
                  length=f"{7 * DAY}", lookback="7d1h", unit=("days", DAY))


PERIODS = {
    # A day of 23 or 25 hours at a DST change is still one day: the lookback covers 25 h and more.
    "day": lambda budget: Period(index=f"floor(__arg_l__ / {DAY})", elapsed=f"__arg_l__ % {DAY}", length=f"{DAY}",
                                 lookback="1d2h", unit=("hours", 3600)),
    "week": lambda budget: _week(budget.week_start or "Monday"),
    "month": lambda budget: Period(index="year(__arg_l__) * 12 + month(__arg_l__)",
                                   elapsed=f"(day_of_month(__arg_l__) - 1) * {DAY} + __arg_l__ % {DAY}",
                                   length=f"days_in_month(__arg_l__) * {DAY}", lookback="31d1h", unit=("days", DAY)),
}


@functools.cache
def transitions(zone: str) -> tuple[int, tuple[tuple[int, int], ...]]:
    """The zone's UTC offset at the start of FIRST_YEAR and its changes until LAST_YEAR ends, each
    (UTC second it takes effect, change in seconds). zoneinfo has no list of transitions: the offset is
    sampled daily and each change bisected to its second (sampling every 3 hours finds the same changes
    for every zone of this image's tzdata: none changes twice within a day in these years)."""
    tz = zoneinfo.ZoneInfo(zone)

    def offset(second: int) -> int:
        return int(datetime.datetime.fromtimestamp(second, tz).utcoffset().total_seconds())

    start, end = (int(datetime.datetime(y, 1, 1, tzinfo=datetime.timezone.utc).timestamp()) for y in (FIRST_YEAR, LAST_YEAR + 1))
    first = current = offset(start)
    changes = []
    for day in range(start, end, DAY):
        if (following := offset(day + DAY)) != current:
            low, high = day, day + DAY
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == current else (low, middle)
            changes.append((high, following - current))
            current = following
    return first, tuple(changes)


def _balanced(terms: list[str]) -> str:
    """A sum as a balanced tree: a chain of 48 additions would nest 48 deep."""
    if not terms:
        return "0"
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return f"({_balanced(terms[:middle])} + {_balanced(terms[middle:])})"


def _offset_part(changes: tuple[tuple[int, int], ...]) -> pp.Expr:
    """Σ change · (time() >= bool T), the changes of one size summed before one multiplication."""
    sums = []
    for size in sorted({abs(change) for _, change in changes}):
        steps = {sign: [f"(time() >= bool {at})" for at, change in changes if change == sign * size] for sign in (1, -1)}
        sums.append(f"{size} * ({_balanced(steps[1])} - {_balanced(steps[-1])})")
    return promql.parse(f"vector({_balanced(sums)})")


def calendar_rules(budget: CalendarBudget, signals: Signals, identity: dict[str, str], interval: str) -> tuple[
        tuple[Rule, ...], pp.Expr, pp.Expr, Period]:
    """The recording rules of a calendar budget, the total's selector, the local clock's, and the period."""
    c = signals.conventions
    period = PERIODS[budget.period](budget)
    mine = [promql.equal(k, v) for k, v in identity.items()]
    first, changes = transitions(budget.time_zone)
    parts = [changes[i:i + TRANSITIONS_PER_PART] for i in range(0, len(changes), TRANSITIONS_PER_PART)]
    records = [Rule(expr=_offset_part(part), record=c.calendar_offset_part_metric,
                    labels={**identity, c.calendar_part_label: str(n + 1)}) for n, part in enumerate(parts)]
    clock = promql.parse(f"vector(time() + {first})")
    if parts:
        clock = promql.build("__arg_clock__ + sum(__arg_parts__)",
                             {"clock": clock, "parts": promql.selector(c.calendar_offset_part_metric, mine)})
    records.append(Rule(expr=clock, record=c.calendar_local_time_metric, labels=identity))

    local = promql.selector(c.calendar_local_time_metric, mine)
    total = promql.selector(c.calendar_spend_metric, mine)
    now, before = (period.index.replace("__arg_l__", name) for name in ("__arg_l__", "__arg_lp__"))
    previous = promql.build(
        f"last_over_time(__arg_t__[{period.lookback}]) and on () ({now} == {before})",
        {"t": total, "l": local, "lp": promql.build(f"last_over_time(__arg_l__[{period.lookback}] offset {PREVIOUS})", {"l": local})})
    added = promql.build(
        f"__arg_rate__ * on () group_left () clamp_max({period.elapsed}, {number(duration_seconds(interval))})",
        {"rate": signals.cost(interval, as_rate=True), "l": local})
    # The previous total keeps its alertrule label and what is added has none: `or` keeps both, and the
    # sum adds them where a label set has both, without writing either twice.
    records.append(Rule(expr=promql.build(f"sum by ({signals.by()}) (__arg_p__ or __arg_a__)", {"p": previous, "a": added}),
                        record=c.calendar_spend_metric, labels=identity))
    return tuple(records), total, local, period


def calendar_forecast(budget_usd: float, lookback: str, total: pp.Expr, local: pp.Expr, period: Period,
                      signals: Signals) -> pp.Expr:
    """In how many units the budget B is reached at the recent rate r: what is left of it over r,
    (B - S) / r, the time B lasts if r holds (linear like predict_linear, but from the recorded rate,
    which a period's reset to 0 does not bend). Only while that is before the period ends (measured
    on the local clock: in a period whose clocks change, off by the change) and S < B."""
    unit = number(period.unit[1])
    budget = number(budget_usd)
    spent = promql.build(f"sum by ({signals.by()}) (__arg_t__)", {"t": total})
    return promql.build(
        f"(({budget} - __arg_s__) / __arg_r__ / {unit} < on () group_left () ({period.length} - ({period.elapsed})) / {unit}) "
        f"and __arg_s__ < {budget}",
        {"s": spent, "r": signals.cost(lookback, as_rate=True), "l": local})
