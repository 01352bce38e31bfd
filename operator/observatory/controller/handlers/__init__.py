"""kopf registrations, one module per kind; both kinds share `register_kind`."""

from __future__ import annotations

import asyncio

import kopf

from ...models.common import GROUP, VERSION
from ..handled import HandledSpecs
from ..reconcile import Controller, KindInfo

# The id of kopf's index of SLOs by shared object (`SloGroups.index_entry`), and the kwarg it comes as.
SLO_GROUPS_INDEX = "slo_groups"


def register_kind(registry: kopf.OperatorRegistry, controller: Controller, kind: KindInfo,
                  handled: HandledSpecs) -> None:
    """Create, update and resume run the same reconcile; every event keeps the controller's view
    of the live resources current for its periodic resync (see `Controller.resync`), and a deletion
    takes the resource out of the shared objects (`Controller.forget`) and out of kopf's memory of
what it handled (`handled`): without a finalizer, so that a
    stopped operator never blocks a deletion. Every handler hands the controller kopf's index of
    SLOs (kopf runs handlers only once every index has its first full listing)."""

    @kopf.on.resume(GROUP, VERSION, kind.plural, registry=registry, id="reconcile")
    @kopf.on.create(GROUP, VERSION, kind.plural, registry=registry, id="reconcile")
    @kopf.on.update(GROUP, VERSION, kind.plural, registry=registry, id="reconcile")
    def reconcile(body: kopf.Body, retry: int, **kwargs) -> None:
        controller.groups.bind(kwargs[SLO_GROUPS_INDEX])
        controller.reconcile(kind, body, retry)

    @kopf.on.event(GROUP, VERSION, kind.plural, registry=registry, id="observe")
    async def observe(event: kopf.RawEvent, **kwargs) -> None:
        controller.groups.bind(kwargs[SLO_GROUPS_INDEX])
        controller.observe(kind, event["type"], event["object"])
        if event["type"] == "DELETED":
            handled.forget(event["object"]["metadata"]["uid"])
            await asyncio.to_thread(controller.forget, kind, event["object"])
