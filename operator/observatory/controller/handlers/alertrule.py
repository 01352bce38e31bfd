"""AlertRule: compiled into PrometheusRule(s), an AlertmanagerConfig with routing, and, for cost
rules, a share of the namespace's price catalogue."""

from __future__ import annotations

import kopf

from ..reconcile import Controller, KindInfo
from . import register_kind

KIND = KindInfo("AlertRule", "alertrules")


def register(registry: kopf.OperatorRegistry, controller: Controller) -> None:
    register_kind(registry, controller, KIND)
