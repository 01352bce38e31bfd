"""SLO: compiled into multi-window multi-burn-rate PrometheusRule(s) and, with routing, an
AlertmanagerConfig."""

from __future__ import annotations

import kopf

from ..reconcile import Controller, KindInfo
from . import register_kind

KIND = KindInfo("SLO", "slos")


def register(registry: kopf.OperatorRegistry, controller: Controller) -> None:
    register_kind(registry, controller, KIND)
