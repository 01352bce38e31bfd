"""Reading Sloth's and OpenSLO's PromQL back into the counters Observatory's indicators take.

Observatory's indicators name counters and compute the rates themselves (`ratio`: bad and all
events; `latency`: a histogram and a bucket bound). A source query is parsed (never matched as
text) and accepted only in the shapes that say exactly that: `sum [by (…)] (rate|increase(S[w]))`
of a selector `S` (`or vector(0)` allowed: Observatory counts a missing error series as no
errors), a histogram's `count - bucket{le="T"}` for slow events, or a bare counter selector where
the source declares it a counter. Anything else raises `NotExpressible` saying why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import promql_parser as pp

from .. import promql

# Sloth's only template variable (pkg/prometheus/api/v1/v1.go: "Requires the usage of `{{.window}}`");
# the window it stands for is irrelevant here: Observatory picks its own.
WINDOW_TEMPLATE = re.compile(r"\{\{\s*\.window\s*\}\}")
MAX_QUERY_LENGTH = 16384  # the model's PromQL field limit


class NotExpressible(ValueError):
    """The query has no Observatory equivalent; the message says why."""


@dataclass(frozen=True)
class Counter:
    """`sum by (by) (rate(selector[…]))`: events per second of a counter."""

    selector: pp.VectorSelector
    by: tuple[str, ...]
    aggregated: bool

    @property
    def key(self) -> tuple[str, frozenset[tuple[str, str, str]]]:
        return self.selector.name or "", frozenset((m.name, str(m.op), m.value) for m in _matchers(self.selector))


def _matchers(selector: pp.VectorSelector) -> list[pp.Matcher]:
    if selector.matchers.or_matchers:
        raise NotExpressible("selectors with `or` between matchers are not supported")
    return list(selector.matchers.matchers)


def _unwrap(expr: pp.Expr) -> pp.Expr:
    while isinstance(expr, pp.ParenExpr):
        expr = expr.expr
    return expr


def parse(text: str) -> pp.Expr:
    if len(text) > MAX_QUERY_LENGTH:
        raise NotExpressible(f"longer than {MAX_QUERY_LENGTH} characters")
    text = WINDOW_TEMPLATE.sub("5m", text)
    if "{{" in text:
        raise NotExpressible("uses a template other than {{.window}}")
    try:
        return _unwrap(promql.parse(text))
    except promql.PromQLError as err:
        raise NotExpressible(str(err)) from None


def _without_or_vector_zero(expr: pp.Expr) -> pp.Expr:
    if isinstance(expr, pp.BinaryExpr) and str(expr.op) == "or" and (expr.modifier is None or expr.modifier.matching is None):
        rhs = _unwrap(expr.rhs)
        if (isinstance(rhs, pp.Call) and rhs.func.name == "vector" and len(rhs.args) == 1
                and isinstance(rhs.args[0], pp.NumberLiteral) and rhs.args[0].val == 0):
            return _unwrap(expr.lhs)
    return expr


def counter(expr: pp.Expr, *, bare_is_counter: bool = False) -> Counter:
    """The counter an expression rates, or NotExpressible."""
    expr = _without_or_vector_zero(_unwrap(expr))
    if isinstance(expr, pp.VectorSelector) and bare_is_counter:
        return Counter(_plain(expr), (), False)
    by: tuple[str, ...] = ()
    aggregated = isinstance(expr, pp.AggregateExpr)
    if aggregated:
        if str(expr.op) != "sum" or expr.param is not None:
            raise NotExpressible(f"aggregates with {expr.op}; only sum(rate(…)) or sum by (…) (rate(…)) is expressible")
        if expr.modifier is not None:
            if "Without" in str(expr.modifier.type):
                raise NotExpressible("sums `without` labels; only `sum by (…)` is expressible (as groupBy)")
            by = tuple(expr.modifier.labels)
        expr = _unwrap(expr.expr)
    if not (isinstance(expr, pp.Call) and expr.func.name in ("rate", "increase") and len(expr.args) == 1
            and isinstance(expr.args[0], pp.MatrixSelector)):
        raise NotExpressible("is not sum(rate(counter[…])) of one counter selector: Observatory's indicators take "
                             "counters and compute the rates themselves")
    return Counter(_plain(expr.args[0].vector_selector), by, aggregated)


def _plain(selector: pp.VectorSelector) -> pp.VectorSelector:
    if selector.offset is not None or selector.at is not None:
        raise NotExpressible("uses offset or @; Observatory's windows end now")
    if not selector.name:
        raise NotExpressible("selects without a metric name; Observatory's counters are named metrics")
    _matchers(selector)
    return selector


def selector_text(selector: pp.VectorSelector, *, named: bool = True) -> str:
    """Selector text for an Observatory field (without the metric name for a narrowing selector such
    as latency's), checked to parse back to the same matchers."""
    matchers = _matchers(selector)
    text = promql.render(promql.selector(selector.name, matchers))
    if not named:
        text = text[len(selector.name):]
    try:
        back = promql.parse(text)
    except promql.PromQLError as err:
        raise NotExpressible(f"its selector {text} cannot stand alone in an Observatory field ({err})") from None
    if not isinstance(back, pp.VectorSelector) or {(m.name, str(m.op), m.value) for m in _matchers(back)} != {
            (m.name, str(m.op), m.value) for m in matchers}:
        raise NotExpressible("has label values that cannot be written back as PromQL (control characters?)")
    return text


def _same_grouping(errors: Counter, total: Counter) -> list[str]:
    if set(errors.by) != set(total.by) or errors.aggregated != total.aggregated:
        raise NotExpressible("the bad-events and total queries are not summed by the same labels")
    return list(total.by)


def _le(counter_: Counter) -> float | None:
    bounds = [m for m in _matchers(counter_.selector) if m.name == "le"]
    if len(bounds) != 1 or str(bounds[0].op) != "MatchOp.Equal":
        return None
    try:
        value = float(bounds[0].value)
    except ValueError:
        return None
    return value if 0 < value < float("inf") else None


def _latency(bucket: Counter, total: Counter) -> dict[str, Any] | None:
    """`bucket` is `<h>_bucket{le="T", S}` and `total` is `<h>_count{S}`: a latency indicator."""
    name = total.selector.name or ""
    threshold = _le(bucket)
    if not name.endswith("_count") or threshold is None or bucket.selector.name != name[:-len("_count")] + "_bucket":
        return None
    rest = {m for m in bucket.key[1] if m[0] != "le"}
    if rest != total.key[1]:
        return None
    indicator: dict[str, Any] = {"histogram": name[:-len("_count")], "thresholdSeconds": threshold, "buckets": [threshold]}
    if rest:
        indicator["selector"] = selector_text(total.selector, named=False)
    return {"latency": indicator}


def ratio(errors: Counter, total: Counter) -> dict[str, Any]:
    return {"ratio": {"errors": selector_text(errors.selector), "total": selector_text(total.selector)}}


def bad_events(errors: pp.Expr, total: Counter) -> tuple[dict[str, Any], list[str]]:
    """Indicator and groupBy for a bad-events query over `total`: a histogram's count minus one
    bucket (slow events), else one counter of bad events."""
    errors = _without_or_vector_zero(_unwrap(errors))
    if isinstance(errors, pp.BinaryExpr) and str(errors.op) == "-" and errors.modifier is None:
        count, bucket = counter(errors.lhs), counter(errors.rhs)
        if count.key == total.key and (indicator := _latency(bucket, total)):
            _same_grouping(count, total)
            return indicator, _same_grouping(bucket, total)
        raise NotExpressible("subtracts two queries; only a histogram's <h>_count minus <h>_bucket{le=\"T\"} over the "
                             "total query's selector is expressible (as a latency indicator)")
    return bad_counter(counter(errors), total)


def bad_counter(bad: Counter, total: Counter) -> tuple[dict[str, Any], list[str]]:
    return ratio(bad, total), _same_grouping(bad, total)


def good_events(good: Counter, total: Counter) -> tuple[dict[str, Any], list[str]]:
    """Indicator and groupBy for a good-events counter over `total`: a histogram bucket (fast
    events), or the total's counter with one more matcher, whose negation selects the bad events."""
    group_by = _same_grouping(good, total)
    if indicator := _latency(good, total):
        return indicator, group_by
    extra = good.key[1] - total.key[1]
    if good.key[0] == total.key[0] and total.key[1] <= good.key[1] and len(extra) == 1:
        (name, op, value), = extra
        negated = {"MatchOp.Equal": pp.MatchOp.NotEqual, "MatchOp.NotEqual": pp.MatchOp.Equal,
                   "MatchOp.Re": pp.MatchOp.NotRe, "MatchOp.NotRe": pp.MatchOp.Re}[op]
        bad = promql.selector(total.selector.name, [*_matchers(total.selector), pp.Matcher(negated, name, value)])
        return ratio(Counter(bad, good.by, good.aggregated), total), group_by
    raise NotExpressible("good events are not the total's counter narrowed by one matcher, nor a bucket of the total's "
                         "histogram; Observatory counts bad events: write the SLI with `bad` instead of `good`")
