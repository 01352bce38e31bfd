"""AlertRule: one alert policy for an LLM application, kept in Git."""

from __future__ import annotations

import difflib
import functools
import zoneinfo
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .common import (
    AlertLabelName,
    Annotations,
    CRModel,
    CustomResource,
    Duration,
    EvaluationInterval,
    LabelName,
    PromQL,
    RuleStatus,
    Severity,
    Window,
    duration_seconds,
)
from .routing import Routing

Comparison = Literal[">", ">=", "<", "<=", "==", "!="]
METRIC_NAME_PATTERN = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"


class ThresholdRule(CRModel):
    """Your own PromQL compared with a constant."""

    expr: PromQL = Field(description="Instant-vector PromQL; it is pinned to this namespace.")
    op: Comparison = Field(default=">", description="Comparison that makes the alert fire.")
    value: float = Field(description="Constant the expression is compared with, e.g. 1000 (a number, without quotes).")


class ErrorRateRule(CRModel):
    """Share of failed LLM calls over a window."""

    threshold: float = Field(gt=0, le=1, description="Error ratio that fires the alert, e.g. 0.05 for 5 %.")
    window: Window = Field(default="5m", description="Window the ratio is computed over.")
    errors: PromQL | None = Field(default=None, description="Counter selector of failed calls; default: GenAI operations with an error type.")
    total: PromQL | None = Field(default=None, description="Counter selector of all calls; default: all GenAI operations.")
    min_requests: float = Field(default=0, ge=0, description="Stay silent below this many calls in the window.")

    @model_validator(mode="after")
    def _both_or_neither(self) -> "ErrorRateRule":
        if (self.errors is None) != (self.total is None):
            raise ValueError("set both errors and total, or neither")
        return self


class LatencyRule(CRModel):
    """A latency quantile computed from a histogram."""

    quantile: float = Field(default=0.95, gt=0, lt=1, description="Quantile, e.g. 0.95 for p95.")
    threshold_seconds: float = Field(gt=0, description="Latency in seconds that fires the alert.")
    window: Window = Field(default="5m", description="Rate window of the histogram.")
    histogram: str | None = Field(default=None, pattern=METRIC_NAME_PATTERN,
                                  description="Histogram base name (without _bucket); default: GenAI operation duration.")


class BudgetStep(CRModel):
    """A warning step of a budget: its own severity from a share of the budget on."""

    percent: float = Field(gt=0, le=1000, description="Share of the budget in percent at which this step fires, e.g. 80.")
    severity: Severity = Field(description="Severity of this step's alert: critical, high, warning or info.")


class BudgetForecast(CRModel):
    """Warn before the budget is reached, while the recent rate would reach it."""

    lookback: Window = Field(default="6h", description="Window of the recent spend rate the forecast extrapolates.")
    severity: Severity = Field(default="warning", description="Severity of the forecast alert.")


Weekday = Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@functools.cache
def _zones() -> frozenset[str]:
    # Only the IANA names: ZoneInfo would also open "localtime" or a path-like key, whose rules are the machine's.
    return frozenset(zoneinfo.available_timezones())


class CalendarBudget(CRModel):
    """A budget per calendar day, week or month of a time zone: the spend since the period's start."""

    period: Literal["day", "week", "month"] = Field(
        description="day (from local midnight), week (from weekStart 00:00) or month (from the 1st 00:00).")
    time_zone: str = Field(
        default="UTC", min_length=1, max_length=64,
        description="IANA time zone the period starts in, e.g. Europe/Berlin; daylight saving time included. Its "
                    "rules are compiled in for 1970 to 2049 (after 2049 its last offset holds).")
    week_start: Weekday | None = Field(default=None, description="First day of a week (period: week); default Monday.")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in _zones():
            close = difflib.get_close_matches(value, sorted(_zones()), n=1)
            hint = f"closest match: {close[0]}" if close else "e.g. Europe/Berlin, America/New_York or UTC"
            raise ValueError(f"unknown time zone {value!r}: use an IANA time zone name ({hint})")
        return value

    @model_validator(mode="after")
    def _week_start_for_weeks(self) -> "CalendarBudget":
        if self.week_start is not None and self.period != "week":
            raise ValueError(f"weekStart applies to period: week only; remove it or set period: week (period is {self.period})")
        return self


class CostRule(CRModel):
    """LLM spend over a rolling window or a calendar period, from token usage priced at the moment it was used."""

    budget_usd: float = Field(alias="budgetUSD", gt=0, description="Spend in US dollars that fires the alert.")
    # No schema default: the apiserver would write it into every stored budget, calendar ones too.
    window: Window | None = Field(default=None, description="Rolling window the spend is summed over; default 1d (not with "
                                                           "calendar).")
    calendar: CalendarBudget | None = Field(
        default=None,
        description="A budget per calendar day, week or month in a time zone instead of a rolling window: the spend "
                    "since the period's start, per label set, reset at its start (a running total the rule group keeps from "
                    "its first evaluation: spend earlier in that period, or while Prometheus evaluates no rules, is not "
                    "counted). The group is evaluated every "
                    "evaluationInterval, default 1m.")
    steps: list[BudgetStep] = Field(
        default_factory=list, max_length=10,
        description="Warning steps, e.g. [{percent: 80, severity: info}, {percent: 90, severity: warning}, "
                    "{percent: 100, severity: critical}]: each fires while the spend is at or above its share of the "
                    "budget and below the next step's, so one step is active at a time. Empty: one alert above the "
                    "budget, with spec.severity.")
    forecast: BudgetForecast | None = Field(
        default=None, description="An alert <Name>Forecast while, at the spend rate of the last lookback, the spend over "
                                  "the window reaches the budget, saying in how long (the window's older spend assumed to "
                                  "leave it at the window's mean rate); with calendar, while it reaches the budget before "
                                  "the period ends, saying in how many hours (day) or days (week, month); silent once the "
                                  "budget is reached.")

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[BudgetStep]) -> list[BudgetStep]:
        percents = [s.percent for s in steps]
        if percents != sorted(set(percents)):
            raise ValueError(f"steps must have increasing, distinct percents, got {', '.join(f'{p:g}' for p in percents)}")
        return steps

    @model_validator(mode="after")
    def _window_or_calendar(self) -> "CostRule":
        if self.calendar is not None and self.window is not None:
            raise ValueError("set window (a rolling budget) or calendar (a budget per day, week or month), not both: "
                             "remove one")
        return self

    @property
    def rolling_window(self) -> str:
        return self.window or "1d"


class QualityRule(CRModel):
    """Average evaluation score (e.g. answer relevance, hallucination) over a window."""

    evaluation: str = Field(min_length=1, max_length=128, description="Evaluation name, matched on the evaluation name label.")
    min_score: float | None = Field(default=None, ge=0, le=1, description="Fire when the average score falls below this.")
    max_score: float | None = Field(default=None, ge=0, le=1, description="Fire when the average score rises above this (e.g. hallucination rate).")
    window: Window = Field(default="1h", description="Window the average is taken over.")
    min_samples: int = Field(default=1, ge=1, description="Stay silent with fewer scored samples in the window.")

    @model_validator(mode="after")
    def _one_bound(self) -> "QualityRule":
        if (self.min_score is None) == (self.max_score is None):
            raise ValueError("set exactly one of minScore, maxScore")
        return self


class DriftRule(CRModel):
    """A distribution's recent window compared with a baseline window of the same histogram."""

    histogram: str | None = Field(default=None, pattern=METRIC_NAME_PATTERN,
                                  description="Histogram base name (without _bucket); default: GenAI operation duration.")
    current: Window = Field(default="1d", description="Recent window whose distribution is judged, e.g. 1d.")
    baseline: Window = Field(default="7d", description="Baseline window, ending where the recent window starts.")
    ks_threshold: float | None = Field(default=None, gt=0, le=1,
                                       description="Fire when the Kolmogorov-Smirnov statistic (max |CDF difference|) exceeds this.")
    psi_threshold: float | None = Field(default=None, gt=0,
                                        description="Fire when the population stability index exceeds this (0.25 is a common limit).")
    buckets: list[float] | None = Field(default=None, min_length=2, max_length=64,
                                              description="The histogram's bucket bounds (le); default: the GenAI duration buckets.")
    min_samples: int = Field(default=100, ge=1, description="Stay silent with fewer observations in either window.")

    @field_validator("baseline")
    @classmethod
    def _baseline_covers_current(cls, value: str, info: ValidationInfo) -> str:
        current = info.data.get("current")  # absent when current itself was refused
        if current and duration_seconds(value) < duration_seconds(current):
            raise ValueError(f"{value} is shorter than current ({current}): a baseline shorter than the window it "
                             "judges is mostly noise; use at least as long, e.g. 7d against 1d")
        return value

    @model_validator(mode="after")
    def _checks(self) -> "DriftRule":
        if self.ks_threshold is None and self.psi_threshold is None:
            raise ValueError("set ksThreshold, psiThreshold or both")
        if self.buckets is not None and list(self.buckets) != sorted(set(self.buckets)):
            raise ValueError("buckets must be strictly increasing")
        return self


AnomalySignal = Literal["requestRate", "errorRatio", "latencyP95", "tokenRate", "costRate"]


class AnomalyRule(CRModel):
    """A signal far from its own recent normal (z-score against a baseline mean and deviation)."""

    signal: AnomalySignal | None = Field(default=None, description="Built-in LLM signal to watch.")
    expr: PromQL | None = Field(default=None, description="Your own instant-vector PromQL signal instead of a built-in one.")
    baseline: Window = Field(default="1d", description="Window the mean and standard deviation are taken over.")
    z_score: float = Field(default=3, gt=0, description="Deviations from the mean that fire the alert.")
    direction: Literal["up", "down", "both"] = Field(default="both", description="Which side of the mean counts.")

    @model_validator(mode="after")
    def _one_source(self) -> "AnomalyRule":
        if (self.signal is None) == (self.expr is None):
            raise ValueError("set exactly one of signal, expr")
        return self


class AbsentRule(CRModel):
    """No data: the signal stopped reporting."""

    expr: PromQL | None = Field(default=None, description="Series selector expected to exist; default: GenAI operation counts.")
    window: Window = Field(default="10m", description="How long the series must be missing.")


RULE_TYPES = ("threshold", "error_rate", "latency", "cost", "quality", "drift", "anomaly", "absent")


class AlertRuleSpec(CRModel):
    """An alert policy; set exactly one rule type."""

    severity: Severity = Field(description="Severity label of the alert: critical, high, warning or info; receivers select on it.")
    for_: Duration | None = Field(default=None, alias="for", description="How long the condition must hold before firing.")
    labels: dict[AlertLabelName, str] = Field(default_factory=dict, description="Extra labels on the alert.")
    annotations: Annotations = Field(default_factory=Annotations, description="Summary, description and runbook URL.")
    selector: PromQL | None = Field(default=None,
                                    description="Series selector narrowing the built-in LLM signals, e.g. {service_name=\"chat\"}.")
    group_by: list[LabelName] = Field(default_factory=list, description="Labels to alert on separately, e.g. gen_ai_request_model.")
    evaluation_interval: EvaluationInterval | None = Field(default=None, description="Rule group evaluation interval; Prometheus' default when unset.")
    threshold: ThresholdRule | None = Field(default=None, description="Your PromQL against a constant.")
    error_rate: ErrorRateRule | None = Field(default=None, description="Alert on the ratio of failed to all LLM calls over a window.")
    latency: LatencyRule | None = Field(default=None, description="Alert on a latency quantile (e.g. p95) of a histogram.")
    cost: CostRule | None = Field(default=None, description="Alert when LLM spend over a rolling window or a calendar period exceeds a budget in USD.")
    quality: QualityRule | None = Field(default=None, description="Alert on the average of an evaluation score (e.g. relevance, hallucination).")
    drift: DriftRule | None = Field(default=None, description="Distribution drift (KS and PSI).")
    anomaly: AnomalyRule | None = Field(default=None, description="Alert when a signal is far from its baseline mean (z-score).")
    absent: AbsentRule | None = Field(default=None, description="Alert when a series stops reporting.")
    routing: Routing | None = Field(default=None, description="Notification routing, compiled to an AlertmanagerConfig.")

    @model_validator(mode="after")
    def _exactly_one_type(self) -> "AlertRuleSpec":
        chosen = [name for name in RULE_TYPES if getattr(self, name) is not None]
        if len(chosen) != 1:
            aliases = [type(self).model_fields[n].alias or n for n in RULE_TYPES]
            raise ValueError(f"set exactly one rule type of {', '.join(aliases)}")
        return self

    @property
    def rule_type(self) -> str:
        return next(name for name in RULE_TYPES if getattr(self, name) is not None)


class AlertRule(CustomResource):
    """GitOps-managed alert policy compiled into a PrometheusRule (and AlertmanagerConfig)."""

    kind: Literal["AlertRule"] = Field(description="AlertRule")
    spec: AlertRuleSpec = Field(description="The alert policy: a severity and exactly one rule type (threshold, errorRate, latency, cost, quality, drift, anomaly or absent).")
    status: RuleStatus | None = Field(default=None, description="What Observatory generated and whether it is loaded.")
