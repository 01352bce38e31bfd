"""Building blocks shared by the three custom resources.

Every field carries a description: the CRD schemas are generated from these models and
`kubectl explain` shows the descriptions to the platform teams.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "observatory.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# prometheus-operator's Duration: each unit at most once, largest first (`1h30m`, never `30m1h`), so
# every duration we accept is one its CRDs accept too.
DURATION_PATTERN = r"^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$"
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
# DNS-1123 subdomain, the rule for Kubernetes object names.
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration such as `1h30m`."""
    return sum(int(n) * _DURATION_UNITS[u] for n, u in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", text))


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration for whole milliseconds, largest units first."""
    millis = int(round(seconds * 1000))
    if millis <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000), ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _duration(value: str) -> str:
    if not re.fullmatch(DURATION_PATTERN, value) or not value:
        raise ValueError(f"{value!r} is not a duration: use e.g. 5m or 1h30m (whole numbers with units y, w, d, h, "
                         "m, s, ms, each unit once and the largest unit first)")
    if duration_seconds(value) <= 0:
        raise ValueError("must be longer than zero")
    return value


# The longest range a rule may read: the longest SLO period (models/slo.py). Prometheus keeps 15 days
# by default; a range beyond what it keeps reads everything it has, at every evaluation.
MAX_RANGE = "90d"
# Below a scrape interval (10 s is the shortest in common use) an evaluation sees no new sample;
# Prometheus's own default is 1m. Also the shortest subquery step.
MIN_EVALUATION_INTERVAL = "10s"


def _within(minimum: str = "0s", maximum: str | None = None) -> Callable[[str], str]:
    def check(value: str) -> str:
        if duration_seconds(value) < duration_seconds(minimum):
            raise ValueError(f"must be at least {minimum}")
        if maximum is not None and duration_seconds(value) > duration_seconds(maximum):
            raise ValueError(f"must be at most {maximum}, the longest range Observatory reads")
        return value
    return check


def nearest_bounds(value: float, bounds: list[float] | tuple[float, ...]) -> str:
    """Words for a threshold that is not a bucket bound: the bounds either side of it."""
    below = [b for b in bounds if b < value]
    above = [b for b in bounds if b > value]
    if below and above:
        return f"the nearest bounds are {max(below):g} and {min(above):g}"
    return f"the {'largest' if below else 'smallest'} bound is {(max(below) if below else min(above)):g}"


# The pattern is checked by the validator (for a message that says how to write one) and goes into the CRD schema.
Duration = Annotated[str, Field(json_schema_extra={"pattern": DURATION_PATTERN}), AfterValidator(_duration)]
# A duration a rule reads as a range: rate windows, baselines.
Window = Annotated[Duration, AfterValidator(_within(maximum=MAX_RANGE))]
EvaluationInterval = Annotated[Duration, AfterValidator(_within(MIN_EVALUATION_INTERVAL))]
LabelName = Annotated[str, Field(pattern=LABEL_NAME_PATTERN, max_length=128)]


def _settable_label(name: str) -> str:
    if name.startswith("__"):
        raise ValueError("label names starting with __ are reserved for Prometheus' internal use (Prometheus rejects "
                         "a rule setting one); use another label name")
    return name


# A label a resource sets on its alerts.
AlertLabelName = Annotated[LabelName, AfterValidator(_settable_label)]
Severity = Literal["critical", "high", "warning", "info"]
PromQL = Annotated[str, Field(min_length=1, max_length=16384)]


class CRModel(BaseModel):
    """Base of every spec model: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=False,
        # As the API server: a quoted number or boolean is a string (models/__init__ says what to write);
        # `.inf` and `.nan` are never a usable threshold (`> +Inf` never fires).
        strict=True,
        allow_inf_nan=False,
    )


class SecretKeyRef(CRModel):
    """A key of a Secret in the resource's own namespace."""

    name: str = Field(description="Name of the Secret, in the same namespace as this resource.",
                      pattern=K8S_NAME_PATTERN, max_length=253)
    key: str = Field(description="Key inside the Secret.", min_length=1, max_length=253,
                     pattern=r"^[-._a-zA-Z0-9]+$")


class Annotations(CRModel):
    """Human-facing text attached to the generated alerts."""

    summary: str | None = Field(default=None, description="One-line summary; Prometheus templates that read the alert, "
                                "such as {{ $value | humanize }} or {{ $labels.model }}, are allowed (query is not).")
    description: str | None = Field(default=None, description="Longer description of the alert and its impact.")
    runbook_url: str | None = Field(default=None, description="Link to the runbook responders should follow.",
                                    pattern=r"^https?://\S+$")


class ObjectMeta(BaseModel):
    """The subset of Kubernetes object metadata that Observatory reads."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(description="Object name.", pattern=K8S_NAME_PATTERN, max_length=253)
    namespace: str | None = Field(default=None, description="Object namespace.",
                                  pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    labels: dict[str, str] = Field(default_factory=dict, description="Object labels.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Object annotations.")
    uid: str | None = Field(default=None, description="Object UID, set by the API server.")
    generation: int | None = Field(default=None, description="Spec generation, set by the API server.")


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(CRModel):
    """A standard Kubernetes condition."""

    type: str = Field(description="Condition type, e.g. Ready or Valid.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase machine-readable reason for the last transition.")
    message: str = Field(default="", description="Human-readable detail.")
    observed_generation: int | None = Field(default=None, description="metadata.generation the condition was computed from.")
    last_transition_time: str | None = Field(default=None, description="When the status last changed (RFC 3339).")


class RuleStatus(CRModel):
    """Status shared by AlertRule and SLO: what was generated and whether it worked."""

    conditions: list[Condition] = Field(default_factory=list, description="Ready, Valid and RulesLoaded conditions.")
    observed_generation: int | None = Field(default=None, description="Last metadata.generation reconciled.")
    prometheus_rules: list[str] = Field(default_factory=list, description="Names of the PrometheusRule objects holding its rules (its own, or its part of a group it shares) and the shared rules they read.")
    alertmanager_config: str | None = Field(default=None, description="Name of the generated AlertmanagerConfig, if routing is set.")
    recording_rules: int = Field(default=0, description="Number of generated recording rules.")
    alerting_rules: int = Field(default=0, description="Number of generated alerting rules.")


class CustomResource(BaseModel):
    """The envelope every custom resource shares; subclasses pin kind and spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    api_version: Literal["observatory.dev/v1alpha1"] = Field(alias="apiVersion", description="observatory.dev/v1alpha1")
    metadata: ObjectMeta = Field(description="Standard object metadata.")
    # A kind whose derived names need a shorter metadata.name sets this (and explains it in
    # `name_limit_reason`); the CRD gets the same limit as a root CEL rule (crdgen).
    max_name_length: ClassVar[int | None] = None
    name_limit_reason: ClassVar[str] = ""

    @property
    def namespace(self) -> str:
        if not self.metadata.namespace:
            raise ValueError("metadata.namespace is not set")
        return self.metadata.namespace

    @property
    def name(self) -> str:
        return self.metadata.name
