"""SLO: an AlertmanagerConfig with routing; its rules in a group of its namespace and period and
its burn-rate windows in one object per namespace and period, each written whole from kopf's
index of SLOs by those objects."""

from __future__ import annotations

from typing import Any

import kopf

from ...models.common import GROUP, VERSION
from ..handled import HandledSpecs
from ..reconcile import Controller, KindInfo
from . import SLO_GROUPS_INDEX, register_kind

KIND = KindInfo("SLO", "slos")


def register(registry: kopf.OperatorRegistry, controller: Controller, handled: HandledSpecs) -> None:
    # Async, so on kopf's loop: kopf runs a sync handler in its thread pool, a hop per watch event
    # for what is a cache lookup after the first event of a generation.
    @kopf.index(GROUP, VERSION, KIND.plural, registry=registry, id=SLO_GROUPS_INDEX)
    async def slo_groups(body: kopf.Body, **_) -> dict[Any, Any]:
        return controller.groups.index_entry(body)

    register_kind(registry, controller, KIND, handled)
