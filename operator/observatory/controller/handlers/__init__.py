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
    """Create, update and resume run the same reconcile, which also puts the resource on the
    controller's list for its periodic resync (see `Controller.resync`); a deletion takes it out of
    the shared objects and off that list (`Controller.forget`) and out of kopf's memory of what it
    handled (`handled`): without a finalizer, so that a stopped operator never blocks a deletion.
    Every handler hands the controller kopf's index of SLOs (kopf runs handlers only once every
    index has its first full listing)."""

    @kopf.on.resume(GROUP, VERSION, kind.plural, registry=registry, id="reconcile")
    @kopf.on.create(GROUP, VERSION, kind.plural, registry=registry, id="reconcile")
    @kopf.on.update(GROUP, VERSION, kind.plural, registry=registry, id="reconcile")
    def reconcile(body: kopf.Body, retry: int, **kwargs) -> None:
        controller.groups.bind(kwargs[SLO_GROUPS_INDEX])
        controller.reconcile(kind, body, retry)

    # Only deletions: kopf's filter is far cheaper than invoking (and logging) a handler for each of
    # the other events, two or more per change.
    @kopf.on.event(GROUP, VERSION, kind.plural, registry=registry, id="forget",
                   when=lambda type, **_: type == "DELETED")
    async def forget(event: kopf.RawEvent, **kwargs) -> None:
        controller.groups.bind(kwargs[SLO_GROUPS_INDEX])
        handled.forget(event["object"]["metadata"]["uid"])
        await asyncio.to_thread(controller.forget, kind, event["object"])
