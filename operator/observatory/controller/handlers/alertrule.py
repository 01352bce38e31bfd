"""AlertRule: compiled into PrometheusRule(s), an AlertmanagerConfig with routing, and, for cost
rules, a share of the namespace's price catalogue."""

from __future__ import annotations

import kopf

from ..handled import HandledSpecs
from ..reconcile import Controller, KindInfo
from . import register_kind

KIND = KindInfo("AlertRule", "alertrules")


def register(registry: kopf.OperatorRegistry, controller: Controller, handled: HandledSpecs) -> None:
    register_kind(registry, controller, KIND, handled)
