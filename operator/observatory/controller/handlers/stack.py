"""ObservabilityStack: Helm releases of Phoenix, Langfuse and the OpenTelemetry Collector, the
apps' ConfigMap, the OpenTelemetry Operator Instrumentation and the default rule pack; a finalizer
uninstalls the releases.

ObservabilityStackClasses are only read: kopf indexes them (every stack handler gets the index), and a
change to one re-reconciles the stacks it applies to, found through kopf's index of stacks by class.
kopf watches cluster-scoped kinds cluster-wide even when it serves a list of namespaces
(kopf/_core/reactor/orchestration.py spawn_missing_watchers), and holds every handler until the
indexes have their first full listing, so no stack is reconciled against a partial list of classes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from ...compile.stack import INSTRUMENTATION_CRD
from ...models.common import GROUP, VERSION
from ..handled import HandledSpecs
from ..stack_reconcile import CLASS_PLURAL, KIND, PLURAL, StackController

log = logging.getLogger(__name__)

# How often workload readiness is re-read (no helm calls) until and after the stack is ready.
READINESS_SECONDS = 10.0


def register(registry: kopf.OperatorRegistry, controller: StackController, resync_seconds: float,
             handled: HandledSpecs, readiness_seconds: float = READINESS_SECONDS) -> None:
    @kopf.index(GROUP, VERSION, CLASS_PLURAL, registry=registry, id="stackclasses")  # the kwarg name of the index
    def stackclasses(name: str, body: kopf.Body, **_) -> dict[str, Any]:
        return {name: dict(body)}

    @kopf.index(GROUP, VERSION, PLURAL, registry=registry, id="stacks_by_class")
    def stacks_by_class(namespace: str, name: str, spec: kopf.Spec, **_) -> dict[str, tuple[str, str]]:
        return {spec.get("className") or "": (namespace, name)}  # "": stacks taking the default class

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")
    async def reconcile(body: kopf.Body, retry: int, stackclasses: kopf.Index, **_) -> None:
        await controller.reconcile(body, retry, classes=by_name(stackclasses))

    # Raw watch-event handlers: kopf writes nothing to a class or a CRD (no progress annotations, no
    # finalizer), so the operator needs only read access to them.
    @kopf.on.event(GROUP, VERSION, CLASS_PLURAL, registry=registry)
    async def class_changed(name: str, stackclasses: kopf.Index, stacks_by_class: kopf.Index, **_) -> None:
        # Stacks without a className follow whichever class is the default, which any class change may alter.
        await reconcile_each({*stacks_by_class.get(name, ()), *stacks_by_class.get("", ())}, stackclasses,
                             f"a change of ObservabilityStackClass {name}")

    # The Instrumentation CRD created or changed (established: served) after the stacks were reconciled;
    # its listing at start-up (type None) is not news: the resume handlers reconcile every stack anyway.
    @kopf.on.event("apiextensions.k8s.io", "v1", "customresourcedefinitions", registry=registry,
                   when=lambda name, type, **_: name == INSTRUMENTATION_CRD and type in ("ADDED", "MODIFIED"))
    async def instrumentation_crd(stackclasses: kopf.Index, stacks_by_class: kopf.Index, **_) -> None:
        # Every stack, read again: one whose reconcile is under way when the CRD appears has not
        # reported it yet, and is reconciled again once that one is done (the stack's lock).
        await reconcile_each({s for store in stacks_by_class.values() for s in store}, stackclasses,
                             f"the CRD {INSTRUMENTATION_CRD} appeared", when=awaiting_instrumentation)

    async def reconcile_each(stacks: set[tuple[str, str]], stackclasses: kopf.Index, why: str, **kw: Any) -> None:
        for namespace, stack_name in sorted(stacks):
            try:
                await controller.reconcile_current(namespace, stack_name, by_name(stackclasses), **kw)
            except kopf.TemporaryError as e:  # the stack's own retries and resync pick it up again
                log.warning("%s %s/%s after %s: %s", KIND, namespace, stack_name, why, e)

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, id="uninstall")
    async def uninstall(body: kopf.Body, **_) -> None:
        await controller.delete(body)

    # kopf records the spec it handled after the uninstall too, and a finalizer removed by hand (or
    # an uninstall a peer ran) runs no handler here: the deletion itself clears the memories.
    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="forget", when=lambda type, **_: type == "DELETED")
    async def forget(uid: str, **_) -> None:
        handled.forget(uid)
        controller.forget(uid)

    @kopf.timer(GROUP, VERSION, PLURAL, registry=registry, id="readiness", interval=readiness_seconds,
                initial_delay=readiness_seconds)
    async def refresh(body: kopf.Body, **_) -> None:
        await controller.refresh(body)

    # Repairs drift: a release changed or removed by hand, a deleted ConfigMap or rule pack.
    @kopf.timer(GROUP, VERSION, PLURAL, registry=registry, id="resync", interval=resync_seconds,
                initial_delay=resync_seconds)
    async def resync(body: kopf.Body, stackclasses: kopf.Index, **_) -> None:
        await controller.reconcile(body, classes=by_name(stackclasses))


def awaiting_instrumentation(body: Mapping[str, Any]) -> bool:
    """The stack wants an Instrumentation and has not reported one created."""
    enabled = ((body.get("spec") or {}).get("instrumentation") or {}).get("enabled", True)
    return enabled and ((body.get("status") or {}).get("instrumentation") or {}).get("created") is not True


def by_name(index: kopf.Index) -> Mapping[str, Mapping[str, Any]]:
    """The class index as name → object (a name indexes one object: classes are cluster-scoped)."""
    return {name: next(iter(store)) for name, store in index.items()}
