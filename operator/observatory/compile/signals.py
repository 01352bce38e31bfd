"""The LLM signals (GenAI semantic conventions) as PromQL trees, shared by every compiler."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

import promql_parser as pp

from .. import promql
from ..conventions import Conventions
from ..models.common import duration_seconds, format_duration
from .errors import CompileError
from .rules import Tenant


def parse_field(text: str, field: str, tenant: Tenant, *, selector_only: bool = False, narrowing: bool = False,
                instant: bool = False) -> pp.Expr:
    """Parse user PromQL from `field`, rejecting what reaches outside the tenant. `narrowing`: a
    selector of label matchers that narrows built-in signals; `instant`: an instant vector, which
    the rule compares with a constant (Prometheus refuses comparisons of scalars without bool)."""
    try:
        expr = promql.parse_narrowing(text) if narrowing else promql.parse(text)
        promql.check_tenant(expr, tenant.conventions.tenant_label, tenant.namespace)
        if selector_only:
            promql.as_selector(expr)
        if narrowing:
            promql.narrowing(expr)
        kind = promql.value_type(expr)
        if instant and kind != "vector":
            raise promql.PromQLError(f"is a {kind}; an instant vector is needed here: wrap a scalar in vector(...)")
    except promql.PromQLError as err:
        raise CompileError(field, str(err)) from None
    return expr


def parse_ratio(errors: str, total: str, prefix: str, tenant: Tenant) -> tuple[pp.Expr, pp.Expr]:
    """The `errors` and `total` counter selectors under `prefix`; the same query twice is refused (a ratio of 1)."""
    parsed = (parse_field(errors, f"{prefix}.errors", tenant, selector_only=True),
              parse_field(total, f"{prefix}.total", tenant, selector_only=True))
    if promql.render(parsed[0]) == promql.render(parsed[1]):
        raise CompileError(f"{prefix}.errors", "is the same query as total: every event would count as bad; select "
                                               "only the failed ones, e.g. add a matcher such as {code=~\"5..\"}")
    return parsed


def le_pattern(bound: float) -> str:
    """A regex matching every way exporters print a bucket bound (`1`, `1.0`, `1e+06`, ...)."""
    value = float(bound)
    spellings = {repr(value), format(Decimal(repr(value)), "f"), f"{value:g}"}
    if value.is_integer():
        spellings.add(str(int(value)))
    return "|".join(re.escape(s) for s in sorted(spellings))


def number(value: float) -> str:
    """A float as PromQL text, rounded so that 14.4 * 0.001 reads 0.0144."""
    return promql.number(float(f"{value:.12g}"))


@dataclass(frozen=True)
class Signals:
    tenant: Tenant
    extra: pp.Expr | None = None  # user selector narrowing every built-in signal
    group_by: tuple[str, ...] = ()

    @property
    def conventions(self) -> Conventions:
        return self.tenant.conventions

    def by(self, *more: str) -> str:
        labels = [self.conventions.tenant_label, *self.group_by, *more]
        return ", ".join(dict.fromkeys(labels))

    def metric(self, name: str, *matchers: pp.Matcher) -> pp.Expr:
        return promql.selector(name, matchers, self.extra)

    def operations(self) -> pp.Expr:
        return self.metric(self.conventions.operation_duration_metric + "_count")

    def failed_operations(self) -> pp.Expr:
        return self.metric(self.conventions.operation_duration_metric + "_count",
                           promql.not_equal(self.conventions.error_type_label, ""))

    def rate_sum(self, selector: pp.Expr, window: str) -> pp.Expr:
        return promql.build(f"sum by ({self.by()}) (rate(__arg_s__[{window}]))", {"s": selector})

    def or_zero(self, errors: pp.Expr, total: pp.Expr) -> pp.Expr:
        """`errors`, or 0 wherever `total` has traffic: a failed-call series exists only after a failure,
        and averages or baselines over time must count the minutes before it as zero errors."""
        return promql.build("__arg_e__ or 0 * __arg_t__", {"e": errors, "t": total})

    def increase_sum(self, selector: pp.Expr, window: str) -> pp.Expr:
        return promql.build(f"sum by ({self.by()}) (increase(__arg_s__[{window}]))", {"s": selector})

    def ratio(self, errors: pp.Expr, total: pp.Expr, window: str) -> pp.Expr:
        return promql.build("__arg_e__ / __arg_t__",
                            {"e": self.rate_sum(errors, window), "t": self.rate_sum(total, window)})

    def quantile(self, q: float, histogram: str, window: str) -> pp.Expr:
        return promql.build(f"histogram_quantile({number(q)}, sum by ({self.by('le')}) (rate(__arg_b__[{window}])))",
                            {"b": self.metric(histogram + "_bucket")})

    def cdf(self, histogram: str, window: str, offset: str | None = None) -> pp.Expr:
        """The cumulative distribution of `histogram` over `window` (ending `offset` ago): per bucket
        bound `le`, the share of observations at or below it."""
        shift = f" offset {offset}" if offset else ""
        return promql.build(
            f"sum by ({self.by('le')}) (increase(__arg_b__[{window}]{shift}))"
            f" / ignoring (le) group_left () sum by ({self.by()}) (increase(__arg_inf__[{window}]{shift}))",
            {"b": self.metric(histogram + "_bucket"), "inf": self.metric(histogram + "_bucket", promql.equal("le", "+Inf"))},
        )

    def cost(self, window: str, *, as_rate: bool = False, rate_metric: str | None = None) -> pp.Expr:
        """Spend in USD over `window` (or USD per second), from the spend rate recorded at the prices of
        each moment (compile/prices.py; `rate_metric`, default per token series): a price change leaves
        the spend before it as it was.

        Dollars are the mean recorded rate times the time it covers, the window or, for a series younger
        than it, its samples' span: not a sum of samples times their spacing, whose count depends on
        where the window's edges fall (closed ranges before Prometheus 3, aligned steps in promtool).
        The range is the window less a second: at the recorded spacing it holds the window's samples
        and not one more, whether ranges are closed (Prometheus 2) or open at the start (3), so that
        the oldest and the newest minute do not both count when the rate changes in between."""
        spend = self.metric(rate_metric or self.conventions.spend_rate_metric)
        reach = format_duration(duration_seconds(window) - 1)
        if as_rate:
            return promql.build(f"sum by ({self.by()}) (avg_over_time(__arg_s__[{reach}]))", {"s": spend})
        spacing, seconds = (number(duration_seconds(w)) for w in (self.conventions.prices_interval, window))
        return promql.build(f"sum by ({self.by()}) (avg_over_time(__arg_s__[{reach}]) * "
                            f"clamp_max(count_over_time(__arg_s__[{reach}]) * {spacing}, {seconds}))", {"s": spend})

    def tokens_rate(self, window: str) -> pp.Expr:
        return self.rate_sum(self.metric(self.conventions.token_usage_metric + "_sum"), window)
