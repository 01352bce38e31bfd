"""The rule pack every ObservabilityStack gets unless it opts out, built from ordinary AlertRules."""

from __future__ import annotations

import datetime

from ..conventions import Conventions
from ..models.alertrule import AlertRule
from ..models.common import API_VERSION
from ..models.stack import ObservabilityStack
from .prices import ModelPrice, from_spec


def catalogue_for(stack: ObservabilityStack, defaults: tuple[ModelPrice, ...]) -> tuple[ModelPrice, ...]:
    """The operator's catalogue with the stack's own prices taking precedence: a model (and provider)
    the stack prices keeps only the stack's entries (each from its date)."""
    own = [from_spec(p) for p in stack.spec.pricing]
    priced = {(p.model, p.provider) for p in own}
    return tuple(sorted([*(p for p in defaults if (p.model, p.provider) not in priced), *own],
                        key=lambda p: (p.model, p.provider or "", p.effective_from or datetime.date.min)))


def default_alert_rules(stack: ObservabilityStack, conventions: Conventions) -> list[AlertRule]:
    settings = stack.spec.default_rules
    c = conventions
    specs = {
        "errors": {"severity": "critical", "errorRate": {"threshold": settings.error_rate_threshold, "window": "5m"}},
        "latency": {"severity": "warning", "for": "5m", "groupBy": [c.model_label],
                    "latency": {"quantile": 0.95, "thresholdSeconds": settings.p95_latency_seconds, "window": "10m"}},
    }
    # Token usage of a model missing from the catalogue would silently cost $0 in every budget.
    specs["unpriced-model"] = {
        "severity": "info", "for": "15m",
        "annotations": {"summary": f"Model {{{{ $labels.{c.model_label} }}}} has no price: its spend counts as $0; "
                                   "add it to spec.pricing"},
        "threshold": {
            "expr": f"sum by ({c.model_label}) (rate({c.token_usage_metric}_sum[1h]))"
                    f" unless on ({c.model_label}) group by ({c.model_label}) ({c.token_price_metric})",
            "op": ">", "value": 0,
        },
    }
    if settings.daily_budget_usd is not None:
        specs["daily-budget"] = {"severity": "critical", "cost": {"budgetUSD": settings.daily_budget_usd, "window": "1d"}}
    return [
        AlertRule.model_validate({
            "apiVersion": API_VERSION,
            "kind": "AlertRule",
            "metadata": {"name": f"{stack.name}-default-{suffix}", "namespace": stack.namespace},
            "spec": spec,
        })
        for suffix, spec in specs.items()
    ]
