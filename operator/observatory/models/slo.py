"""SLO: a service level objective with multi-window multi-burn-rate alerts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .alertrule import METRIC_NAME_PATTERN
from .common import (
    MAX_RANGE,
    AlertLabelName,
    Annotations,
    CRModel,
    CustomResource,
    Duration,
    LabelName,
    PromQL,
    RuleStatus,
    Severity,
    duration_seconds,
    nearest_bounds,
)
from .routing import Routing

MIN_WINDOW_DAYS = 7
MAX_WINDOW_DAYS = int(duration_seconds(MAX_RANGE) // 86400)  # its budget reads the whole period


class RatioIndicator(CRModel):
    """Bad events over all events, from two counters."""

    errors: PromQL = Field(description="Counter selector of bad events, e.g. http_requests_total{code=~\"5..\"}.")
    total: PromQL = Field(description="Counter selector of all events.")


class LatencyIndicator(CRModel):
    """Events slower than a threshold, from a histogram whose buckets include the threshold."""

    histogram: str = Field(pattern=METRIC_NAME_PATTERN, description="Histogram base name (without _bucket).")
    selector: PromQL | None = Field(default=None, description="Series selector narrowing the histogram, e.g. {route=\"/chat\"} or {verb!=\"WATCH\"}.")
    threshold_seconds: float = Field(gt=0, description="Latency objective in seconds; must be one of the buckets.")
    buckets: list[float] = Field(min_length=1, max_length=64, description="The histogram's bucket bounds (le values).")

    @model_validator(mode="after")
    def _threshold_is_a_bucket(self) -> "LatencyIndicator":
        if not any(abs(b - self.threshold_seconds) < 1e-9 for b in self.buckets):
            raise ValueError(f"thresholdSeconds {self.threshold_seconds:g} is not one of the buckets {list(self.buckets)}; "
                             f"{nearest_bounds(self.threshold_seconds, self.buckets)}")
        return self


class LLMIndicator(CRModel):
    """Ready-made indicators over the OpenTelemetry GenAI signals."""

    preset: Literal["availability", "latency", "quality"] = Field(
        description="availability: calls without error; latency: calls faster than the threshold; quality: evaluations above the minimum score.")
    selector: PromQL | None = Field(default=None, description="Series selector narrowing the signals, e.g. {gen_ai_request_model=\"gpt-4o\"} or {gen_ai_request_model!=\"test\"}.")
    latency_threshold_seconds: float | None = Field(default=None, gt=0,
                                                    description="latency preset: objective in seconds; must be a GenAI duration bucket.")
    evaluation: str | None = Field(default=None, min_length=1, max_length=128, description="quality preset: evaluation name.")
    min_score: float | None = Field(default=None, gt=0, le=1,
                                    description="quality preset: a score at or below this is bad; must be a score bucket.")

    @model_validator(mode="after")
    def _preset_fields(self) -> "LLMIndicator":
        needed = {"availability": (), "latency": ("latency_threshold_seconds",), "quality": ("evaluation", "min_score")}[self.preset]
        missing = [type(self).model_fields[n].alias for n in needed if getattr(self, n) is None]
        if missing:
            raise ValueError(f"preset {self.preset} needs {', '.join(missing)}")
        extra = [type(self).model_fields[n].alias for n in ("latency_threshold_seconds", "evaluation", "min_score")
                 if n not in needed and getattr(self, n) is not None]
        if extra:
            raise ValueError(f"preset {self.preset} does not use {', '.join(extra)}")
        return self


class Indicator(CRModel):
    """What counts as a bad event; set exactly one of ratio, latency, llm."""

    ratio: RatioIndicator | None = Field(default=None, description="Errors over total from two counters.")
    latency: LatencyIndicator | None = Field(default=None, description="Slow events from a histogram.")
    llm: LLMIndicator | None = Field(default=None, description="Ready-made indicators over the OpenTelemetry GenAI signals: availability, latency or quality.")

    @model_validator(mode="after")
    def _exactly_one(self) -> "Indicator":
        chosen = [n for n in ("ratio", "latency", "llm") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ValueError(f"set exactly one of ratio, latency, llm (got {chosen or 'none'})")
        return self


class AlertTier(CRModel):
    """One burn-rate alert (page or ticket)."""

    enabled: bool = Field(default=True, description="Generate this alert.")
    name: str | None = Field(default=None, pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=128,
                             description="Alert name; default SLOErrorBudgetBurnPage or SLOErrorBudgetBurnTicket, "
                                         "told apart by the slo label (one alert rule for the SLOs of a group alerting alike).")
    severity: Severity | None = Field(default=None, description="Severity label; page defaults to critical, ticket to warning.")
    for_: Duration | None = Field(default=None, alias="for", description="How long the burn must hold before firing.")
    # 0 as in Sloth and Pyrra, which have no such guard (Pyrra's users ask for one off by default,
    # pyrra-dev/pyrra#1925): where traffic is low enough for it to matter, only its owner knows how low.
    min_events: int = Field(default=0, ge=0, le=10**12,
                            description="Fire only with at least this many events in the long window of the pair that "
                                        "holds (e.g. 100: 3 failures in 10 requests do not page); 0: no minimum.")
    labels: dict[AlertLabelName, str] = Field(default_factory=dict, description="Extra labels on this alert.")
    annotations: Annotations = Field(default_factory=Annotations, description="Summary, description and runbook URL.")


class SLOAlerting(CRModel):
    """The two alert tiers of the SRE workbook's multi-window multi-burn-rate scheme."""

    page: AlertTier = Field(default_factory=AlertTier, description="Fast burn: 14.4x over 1h and 5m, or 6x over 6h and 30m (30d SLO).")
    ticket: AlertTier = Field(default_factory=AlertTier, description="Slow burn: 3x over 1d and 2h, or 1x over 3d and 6h (30d SLO).")


class SLOSpec(CRModel):
    """A service level objective."""

    description: str | None = Field(default=None, max_length=1024, description="What the SLO protects, for humans.")
    objective: float = Field(gt=0, lt=100, description="Target percentage of good events, e.g. 99.5 (a percentage from 1 to below 100, not a fraction like 0.995).")
    window: Duration = Field(default="30d", description="Rolling SLO period, 7d to 90d.")
    indicator: Indicator = Field(description="How good and bad events are counted.")
    group_by: list[LabelName] = Field(default_factory=list, description="Labels to evaluate the SLO separately for, e.g. gen_ai_request_model.")
    alerting: SLOAlerting = Field(default_factory=SLOAlerting, description="Page and ticket alerts.")
    labels: dict[AlertLabelName, str] = Field(default_factory=dict, description="Extra labels on every alert of this SLO.")
    routing: Routing | None = Field(default=None, description="Notification routing, compiled to an AlertmanagerConfig.")

    @field_validator("objective")
    @classmethod
    def _a_percentage(cls, value: float) -> float:
        if value < 1:  # 0.995 would be 0.995 %: an SLO whose budget is never spent
            raise ValueError(f"{value:g} looks like a fraction: objective is a percentage, write {value * 100:g} "
                             f"for {value * 100:g} %")
        return value

    @field_validator("window")
    @classmethod
    def _window_range(cls, value: str) -> str:
        days = duration_seconds(value) / 86400
        if not MIN_WINDOW_DAYS <= days <= MAX_WINDOW_DAYS:
            raise ValueError(f"must be between {MIN_WINDOW_DAYS}d and {MAX_WINDOW_DAYS}d")
        return value


class SLO(CustomResource):
    """A service level objective compiled into multi-window multi-burn-rate rules."""

    kind: Literal["SLO"] = Field(description="SLO")
    spec: SLOSpec = Field(description="The objective: a target percentage over a rolling window, the indicator that counts bad events, and the alerts.")
    status: RuleStatus | None = Field(default=None, description="What Observatory generated and whether it is loaded.")


# Referenced by the tier defaults in the compiler.
DEFAULT_TIER_SEVERITY: dict[str, Severity] = {"page": "critical", "ticket": "warning"}
