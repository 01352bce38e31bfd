"""ObservabilityStack: Helm releases of Phoenix, Langfuse and the OpenTelemetry Collector, the
apps' ConfigMap and the default rule pack; a finalizer uninstalls the releases."""

from __future__ import annotations

import kopf

from ...models.common import GROUP, VERSION
from ..stack_reconcile import PLURAL, StackController

# How often workload readiness is re-read (no helm calls) until and after the stack is ready.
READINESS_SECONDS = 10.0


def register(registry: kopf.OperatorRegistry, controller: StackController, resync_seconds: float,
             readiness_seconds: float = READINESS_SECONDS) -> None:
    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")
    async def reconcile(body: kopf.Body, retry: int, **_) -> None:
        await controller.reconcile(body, retry)

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, id="uninstall")
    async def uninstall(body: kopf.Body, **_) -> None:
        await controller.delete(body)

    @kopf.timer(GROUP, VERSION, PLURAL, registry=registry, id="readiness", interval=readiness_seconds,
                initial_delay=readiness_seconds)
    async def refresh(body: kopf.Body, **_) -> None:
        await controller.refresh(body)

    # Repairs drift: a release changed or removed by hand, a deleted ConfigMap or rule pack.
    @kopf.timer(GROUP, VERSION, PLURAL, registry=registry, id="resync", interval=resync_seconds,
                initial_delay=resync_seconds)
    async def resync(body: kopf.Body, **_) -> None:
        await controller.reconcile(body)
