"""AlertRule → rule group (recording rules it needs + one alert)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import promql_parser as pp

from .. import promql
from ..conventions import Conventions
from ..models.alertrule import AlertRule, AlertRuleSpec, CostRule
from ..models.common import Annotations, duration_seconds
from .calendar import DEFAULT_INTERVAL, calendar_forecast, calendar_rules
from .errors import CompileError, FieldError
from .rules import Rule, RuleGroup, Tenant
from .signals import Signals, le_pattern, number, parse_field, parse_ratio
from .templates import literal, template_errors

PSI_EPSILON = 1e-4  # keeps ln() finite for empty bins
ANOMALY_SIGNAL_WINDOW = "5m"


@dataclass(frozen=True)
class Compiled:
    """The alert condition of one rule type plus the recording rules it reads; `steps`, when set,
    replace the one alert by one per step, each (condition, severity, summary)."""

    expr: pp.Expr | None
    records: tuple[Rule, ...] = ()
    summary: str = ""
    steps: tuple[tuple[pp.Expr, str, str], ...] = ()
    extra_alerts: tuple[tuple[str, pp.Expr, str, str], ...] = ()  # (name suffix, condition, severity, summary)
    interval: str | None = None  # the group's interval when the rule type needs one and the resource sets none


def alert_name(resource_name: str) -> str:
    """`llm-daily-budget` → `LlmDailyBudget`: Prometheus alert names are CamelCase by custom."""
    return "".join(part[:1].upper() + part[1:] for part in resource_name.replace(".", "-").split("-") if part)


def reserved_labels(c: Conventions) -> dict[str, str]:
    """Labels Observatory or Prometheus set on alerts or Alertmanager routes on, with why: a resource
    setting one could take over another's identity and receivers."""
    return {
        "namespace": "prometheus-operator confines an AlertmanagerConfig to the alerts of its namespace by it",
        c.tenant_label: "Observatory sets it to the namespace, and the tenant's routes match on it",
        c.alertrule_label: "it names the AlertRule an alert comes from, and its receivers are chosen by it",
        c.slo_label: "it names the SLO an alert comes from, and its receivers are chosen by it",
        c.severity_label: "Observatory sets it from the severity field, and receivers are chosen by it",
        c.slo_tier_label: "Observatory sets it on SLO alerts (page or ticket)",
        c.window_label: "Observatory sets it on SLO alerts (the SLO period)",
        c.slo_shard_label: "Observatory removes it from SLO alerts (it tells the SLOs' groups apart)",
        "alertname": "Prometheus sets it to the alert's name",
    }


def check_alert_fields(c: Conventions, labels: Mapping[str, Mapping[str, str]],
                       annotations: Mapping[str, Annotations], texts: Mapping[str, str] | None = None) -> None:
    """Raise CompileError for every reserved label and every template that reads beyond the alert.

    `labels` and `annotations` are by field path (`spec`, `spec.alerting.page`); `texts` maps paths
    to other text that becomes an annotation.
    """
    reserved = reserved_labels(c)
    errors = []
    templates = dict(texts or {})
    for path, of_path in labels.items():
        for name, value in of_path.items():
            if name in reserved:
                errors.append(FieldError(f"{path}.{name}", f"reserved: {reserved[name]}; use another label name"))
            templates[f"{path}.{name}"] = value
    for path, of_path in annotations.items():
        for name, info in Annotations.model_fields.items():
            if (value := getattr(of_path, name)) is not None:
                templates[f"{path}.{info.alias or name}"] = value
    errors += template_errors(templates)
    if errors:
        raise CompileError(errors)


def compile_alertrule(rule: AlertRule, tenant: Tenant) -> RuleGroup:
    spec = rule.spec
    c = tenant.conventions
    check_alert_fields(c, {"spec.labels": spec.labels}, {"spec.annotations": spec.annotations})
    extra = parse_field(spec.selector, "spec.selector", tenant, narrowing=True) if spec.selector else None
    signals = Signals(tenant, extra, tuple(spec.group_by))
    identity = {c.alertrule_label: rule.name}
    rule_type = spec.rule_type
    compiled = _COMPILERS[rule_type](spec, signals, identity)

    annotations = {c.summary_annotation: spec.annotations.summary or compiled.summary}
    if spec.annotations.description:
        annotations[c.description_annotation] = spec.annotations.description
    if spec.annotations.runbook_url:
        annotations[c.runbook_annotation] = spec.annotations.runbook_url
    # An empty label is no label to Prometheus: an slo label of the series must not route to an SLO's receivers.
    labels = {**spec.labels, c.slo_label: "", c.severity_label: spec.severity, **identity}
    variants = compiled.steps or ((compiled.expr, spec.severity, compiled.summary),)
    alerts = tuple(Rule(expr=expr, alert=alert_name(rule.name), for_=spec.for_, labels={**labels, c.severity_label: severity},
                        annotations={**annotations, c.summary_annotation: spec.annotations.summary or summary})
                   for expr, severity, summary in variants)
    alerts += tuple(Rule(expr=expr, alert=alert_name(rule.name) + suffix, for_=spec.for_,
                         labels={**labels, c.severity_label: severity}, annotations={**annotations, c.summary_annotation: summary})
                    for suffix, expr, severity, summary in compiled.extra_alerts)
    return RuleGroup(
        name=f"{c.rule_group_prefix}.alertrule.{rule.name}",
        rules=compiled.records + alerts,
        interval=spec.evaluation_interval or compiled.interval,
    )


def _threshold(spec: AlertRuleSpec, signals: Signals, identity: dict[str, str]) -> Compiled:
    block = spec.threshold
    user = parse_field(block.expr, "spec.threshold.expr", signals.tenant, instant=True)
    expr = promql.build(f"(__arg_e__) {block.op} {number(block.value)}", {"e": user})
    return Compiled(expr, summary=f"{{{{ $value | humanize }}}} {block.op} {block.value:g}")


def _error_rate(spec: AlertRuleSpec, signals: Signals, identity: dict[str, str]) -> Compiled:
    block = spec.error_rate
    if block.errors:
        errors, total = parse_ratio(block.errors, block.total, "spec.errorRate", signals.tenant)
    else:
        errors, total = signals.failed_operations(), signals.operations()
    expr = promql.build(f"(__arg_ratio__) > {number(block.threshold)}", {"ratio": signals.ratio(errors, total, block.window)})
    if block.min_requests > 0:
        expr = promql.build(f"__arg_cond__ and __arg_n__ >= {number(block.min_requests)}",
                            {"cond": expr, "n": signals.increase_sum(total, block.window)})
    return Compiled(expr, summary=f"LLM error rate {{{{ $value | humanizePercentage }}}} over {block.window} "
                                  f"(threshold {block.threshold:.2%})")


def _latency(spec: AlertRuleSpec, signals: Signals, identity: dict[str, str]) -> Compiled:
    block = spec.latency
    histogram = block.histogram or signals.conventions.operation_duration_metric
    quantile = signals.quantile(block.quantile, histogram, block.window)
    expr = promql.build(f"__arg_q__ > {number(block.threshold_seconds)}", {"q": quantile})
    percentile = f"p{block.quantile * 100:g}"
    return Compiled(expr, summary=f"LLM {percentile} latency {{{{ $value | humanizeDuration }}}} over {block.window} "
                                  f"(threshold {block.threshold_seconds:g}s)")


def _cost(spec: AlertRuleSpec, signals: Signals, identity: dict[str, str]) -> Compiled:
    block = spec.cost
    if block.calendar:
        return _calendar_cost(spec, signals, identity)
    forecast = (_forecast(block, signals),) if block.forecast else ()
    return _budget_alerts(block, signals.cost(block.rolling_window), f"over the last {block.rolling_window}", (), forecast)


def _calendar_cost(spec: AlertRuleSpec, signals: Signals, identity: dict[str, str]) -> Compiled:
    block = spec.cost
    calendar = block.calendar
    interval = spec.evaluation_interval or DEFAULT_INTERVAL
    records, total, local, period = calendar_rules(calendar, signals, identity, interval)
    start = f" (from {calendar.week_start or 'Monday'})" if calendar.period == "week" else ""
    since = f"since the start of the {calendar.period}{start} in {calendar.time_zone}"
    forecast = ()
    if f := block.forecast:
        summary = (f"At the spend rate of the last {f.lookback}, the {calendar.period}'s budget (${block.budget_usd:g}) "
                   f"is exceeded in {{{{ $value | printf \"%.1f\" }}}} {period.unit[0]} ({calendar.time_zone})")
        forecast = (("Forecast", calendar_forecast(block.budget_usd, f.lookback, total, local, period, signals), f.severity, summary),)
    return dataclasses.replace(_budget_alerts(block, total, since, records, forecast), interval=interval)


def _budget_alerts(block: CostRule, spend: pp.Expr, over: str, records: tuple[Rule, ...],
                   forecast: tuple[tuple[str, pp.Expr, str, str], ...]) -> Compiled:
    """One alert above the budget, or one per warning step, on `spend` (USD `over` a window or period)."""
    summary = f"LLM spend ${{{{ $value | printf \"%.2f\" }}}} {over} (budget ${block.budget_usd:g})"
    if not block.steps:
        return Compiled(promql.build(f"__arg_spend__ > {number(block.budget_usd)}", {"spend": spend}), records=records,
                        summary=summary, extra_alerts=forecast)
    steps = []
    for step, following in zip(block.steps, [*block.steps[1:], None]):
        # Banded: the next step's alert takes over, so one step is active at a time.
        condition = f"__arg_spend__ >= {number(block.budget_usd * step.percent / 100)}"
        if following is not None:
            condition += f" < {number(block.budget_usd * following.percent / 100)}"
        steps.append((promql.build(condition, {"spend": spend}), step.severity,
                      (f"LLM spend ${{{{ $value | printf \"%.2f\" }}}} {over} is {step.percent:g}% "
                       f"or more of the budget (${block.budget_usd:g})")))
    return Compiled(None, records=records, steps=tuple(steps), extra_alerts=forecast)


def _forecast(block: CostRule, signals: Signals) -> tuple[str, pp.Expr, str, str]:
    """Hours until the window's spend S reaches the budget B at the recent rate r: the window gains r and
    loses its older spend at its mean rate S/W, so it grows by r - S/W an hour; a window all of the new
    rate would hold r·W, so the alert holds while r·W > B and S < B (linear, like predict_linear, but
    from the rate itself, which the recorded spend gives exactly)."""
    f = block.forecast
    hours = duration_seconds(block.rolling_window) / 3600
    budget = number(block.budget_usd)
    expr = promql.build(
        f"((({budget} - __arg_s__) / (__arg_r__ - __arg_s__ / {number(hours)})) and __arg_r__ * {number(hours)} > {budget}) "
        f"and __arg_s__ < {budget}",
        {"s": signals.cost(block.rolling_window), "r": promql.build("__arg_x__ * 3600", {"x": signals.cost(f.lookback, as_rate=True)})})
    summary = (f"At the spend rate of the last {f.lookback}, spend over the last {block.rolling_window} reaches the budget "
               f"(${block.budget_usd:g}) in {{{{ $value | printf \"%.1f\" }}}} h")
    return "Forecast", expr, f.severity, summary


def _quality(spec: AlertRuleSpec, signals: Signals, identity: dict[str, str]) -> Compiled:
    block = spec.quality
    c = signals.conventions
    name_matcher = promql.equal(c.evaluation_name_label, block.evaluation)
    scores = signals.increase_sum(signals.metric(c.evaluation_score_metric + "_sum", name_matcher), block.window)
    samples = signals.increase_sum(signals.metric(c.evaluation_score_metric + "_count", name_matcher), block.window)
    op, bound = ("<", block.min_score) if block.min_score is not None else (">", block.max_score)
    expr = promql.build(f"(__arg_s__ / __arg_n__) {op} {number(bound)} and __arg_n__ >= {block.min_samples}",
                        {"s": scores, "n": samples})
    word = "below" if op == "<" else "above"
    return Compiled(expr, summary=f"Average {literal(block.evaluation)} score {{{{ $value }}}} is {word} {bound:g} over {block.window}")


def _drift(spec: AlertRuleSpec, signals: Signals, identity: dict[str, str]) -> Compiled:
    block = spec.drift
    c = signals.conventions
    histogram = block.histogram or c.operation_duration_metric
    buckets = list(block.buckets or c.operation_duration_buckets)
    cdf_metric = f"{c.drift_cdf_metric_prefix}:ratio"
    windows = {"current": (block.current, None), "baseline": (block.baseline, block.current)}

    records = []
    for window_name, (length, offset) in windows.items():
        cdf = signals.cdf(histogram, length, offset)
        records.append(Rule(expr=cdf, record=cdf_metric, labels={**identity, c.window_label: window_name}))

    def cdf_at(window_name: str, bound: float | None) -> pp.Expr:
        matchers = [promql.equal(k, v) for k, v in identity.items()] + [promql.equal(c.window_label, window_name)]
        if bound is not None:
            matchers.append(promql.matches("le", le_pattern(bound)))
        return promql.selector(cdf_metric, matchers)

    def cdf_pair() -> dict[str, pp.Expr]:
        return {"cur": cdf_at("current", None), "base": cdf_at("baseline", None)}

    conditions = []
    if block.ks_threshold is not None:
        ks = promql.build(f"max by ({signals.by()}) (abs(__arg_cur__ - ignoring ({c.window_label}) __arg_base__))", cdf_pair())
        conditions.append(promql.build(f"__arg_ks__ > {number(block.ks_threshold)}", {"ks": ks}))
    if block.psi_threshold is not None:
        terms = [_psi_term(signals, cdf_at, low, high) for low, high in zip([None] + buckets, buckets + [None])]
        psi = terms[0]
        for term in terms[1:]:
            psi = promql.build("__arg_a__ + __arg_b__", {"a": psi, "b": term})
        conditions.append(promql.build(f"(__arg_psi__) > {number(block.psi_threshold)}", {"psi": psi}))
    expr = conditions[0]
    for condition in conditions[1:]:
        expr = promql.build("__arg_a__ or __arg_b__", {"a": expr, "b": condition})

    count = signals.metric(histogram + "_count")
    enough = promql.build(
        f"__arg_cond__ and on ({signals.by()}) (__arg_cur__ >= {block.min_samples})"
        f" and on ({signals.by()}) (__arg_base__ >= {block.min_samples})",
        {"cond": expr, "cur": signals.increase_sum(count, block.current),
         "base": promql.build(f"sum by ({signals.by()}) (increase(__arg_n__[{block.baseline}] offset {block.current}))", {"n": count})},
    )
    return Compiled(enough, records=tuple(records),
                    summary=f"Distribution of {histogram} over the last {block.current} drifted from the {block.baseline} before")


def _psi_term(signals: Signals, cdf_at: Callable[[str, float | None], pp.Expr], low: float | None, high: float | None) -> pp.Expr:
    """(p_current - p_baseline) * ln(p_current / p_baseline) for the bin (low, high]."""

    def probability(window_name: str) -> pp.Expr:
        upper = cdf_at(window_name, high) if high is not None else promql.parse("1")
        if low is None:
            inner = promql.build(f"sum by ({signals.by()}) (__arg_u__)", {"u": upper})
        elif high is None:
            inner = promql.build(f"1 - sum by ({signals.by()}) (__arg_l__)", {"l": cdf_at(window_name, low)})
        else:
            inner = promql.build(f"sum by ({signals.by()}) (__arg_u__) - sum by ({signals.by()}) (__arg_l__)",
                                 {"u": upper, "l": cdf_at(window_name, low)})
        return promql.build(f"clamp_min(__arg_p__, {number(PSI_EPSILON)})", {"p": inner})

    return promql.build("(__arg_cur__ - __arg_base__) * ln(__arg_cur__ / __arg_base__)",
                        {"cur": probability("current"), "base": probability("baseline")})


def anomaly_signal(name: str, signals: Signals) -> pp.Expr:
    window = ANOMALY_SIGNAL_WINDOW
    if name == "requestRate":
        return signals.rate_sum(signals.operations(), window)
    if name == "errorRatio":
        # An error-free baseline must hold zeros, or the first errors have no baseline to stand out from.
        total = signals.rate_sum(signals.operations(), window)
        errors = signals.or_zero(signals.rate_sum(signals.failed_operations(), window), total)
        return promql.build("__arg_e__ / __arg_t__", {"e": errors, "t": total})
    if name == "latencyP95":
        return signals.quantile(0.95, signals.conventions.operation_duration_metric, window)
    if name == "tokenRate":
        return signals.tokens_rate(window)
    if name == "costRate":
        return signals.cost(window, as_rate=True)
    raise ValueError(f"unknown anomaly signal {name}")


def _anomaly(spec: AlertRuleSpec, signals: Signals, identity: dict[str, str]) -> Compiled:
    block = spec.anomaly
    c = signals.conventions
    if block.expr:
        source = parse_field(block.expr, "spec.anomaly.expr", signals.tenant, instant=True)
    else:
        source = anomaly_signal(block.signal, signals)
    metric = f"{c.signal_metric_prefix}:value"
    record = Rule(expr=source, record=metric, labels=identity)
    series = promql.selector(metric, [promql.equal(k, v) for k, v in identity.items()])
    z = promql.build(f"(__arg_s__ - avg_over_time(__arg_s__[{block.baseline}])) / stddev_over_time(__arg_s__[{block.baseline}])",
                     {"s": series})
    k = number(block.z_score)
    comparison = {"up": f"(__arg_z__) > {k}", "down": f"(__arg_z__) < -{k}", "both": f"abs(__arg_z__) > {k}"}[block.direction]
    expr = promql.build(f"{comparison} and stddev_over_time(__arg_s__[{block.baseline}]) > 0", {"z": z, "s": series})
    what = block.signal or "signal"
    return Compiled(expr, records=(record,),
                    summary=f"{what} is {{{{ $value | printf \"%.1f\" }}}} standard deviations from its {block.baseline} mean")


def _absent(spec: AlertRuleSpec, signals: Signals, identity: dict[str, str]) -> Compiled:
    block = spec.absent
    if block.expr:
        target = parse_field(block.expr, "spec.absent.expr", signals.tenant, selector_only=True)
    else:
        target = signals.operations()
    expr = promql.build(f"absent_over_time(__arg_s__[{block.window}])", {"s": target})
    return Compiled(expr, summary=f"No data for {block.window}")


_COMPILERS = {
    "threshold": _threshold,
    "error_rate": _error_rate,
    "latency": _latency,
    "cost": _cost,
    "quality": _quality,
    "drift": _drift,
    "anomaly": _anomaly,
    "absent": _absent,
}

