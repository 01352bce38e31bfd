"""The operator process: kopf registry and settings, health and metrics, `observatory run`."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import os
import socket
import threading

import kopf

from .handled import HandledSpecs, UnmarkedProgressStorage
from .handlers import alertrule, slo, stack
from .metrics import Metrics
from .peering import PeeringView
from .reconcile import Controller
from .settings import Settings
from .stack_kube import StackKube
from .stack_reconcile import StackController, build_stack_controller

# kopf keeps its progress in annotations: the status schema is structural, so an apiserver would
# silently drop a `status.kopf` stanza (kopf's default keeps it there too).
ANNOTATION_PREFIX = "observatory.dev"
# How stale the list of Prometheus objects behind RulesLoaded may be (at most the resync interval).
PROMETHEUS_CACHE_SECONDS = 5.0
HANDLER_THREADS = 16
# Allocations between young collections (CPython's default is 700) and young collections between
# older ones (10 and 10): see `tune_garbage_collector`.
GC_THRESHOLDS = (10_000, 20, 100)


def build_controller(api_client, settings: Settings, *, timeout: float = 10.0) -> Controller:
    conventions = settings.conventions()
    instance = instance_identity()
    # StackKube extends the adapter with the calls stacks need; rules and stacks share one client.
    return Controller(kube=StackKube(api_client, conventions, timeout=timeout, instance=instance),
                      options=settings.compile_options(), metrics=Metrics(),
                      prometheus_ttl=min(PROMETHEUS_CACHE_SECONDS, settings.resync_seconds))


def peering_priority(instance: str) -> int:
    """A stable priority per replica: kopf pauses every peer when priorities tie, so replicas differ."""
    return int(hashlib.sha256(instance.encode()).hexdigest()[:8], 16)


def build_stacks(controller: Controller) -> StackController:
    """The ObservabilityStack controller on the same adapter, options and metrics as the rules."""
    return build_stack_controller(controller.kube, controller.options, controller.metrics)


def instance_identity() -> str:
    """This replica's name among its peers (kopf's own choice too when POD_ID is set)."""
    return os.environ.get("POD_ID") or socket.gethostname()


def build_registry(controller: Controller, settings: Settings, handled: HandledSpecs,
                   stacks: StackController | None = None, *,
                   identity: str | None = None, priority: int | None = None) -> kopf.OperatorRegistry:
    """Handlers of every kind and the resync loop; `handled` is the diff base kopf runs `configure`d
    with, which the handlers clear of deleted resources. `identity` and `priority` are the ones kopf
    runs with as a peer (defaults: `instance_identity()` and its `peering_priority`)."""
    registry = kopf.OperatorRegistry()
    alertrule.register(registry, controller, handled)
    slo.register(registry, controller, handled)
    if stacks is not None:
        stack.register(registry, stacks, settings.resync_seconds, handled)
    identity = identity or instance_identity()
    peers = PeeringView(controller.kube.peering_status, settings.peering_name, identity,
                        peering_priority(identity) if priority is None else priority, settings.watch_namespaces)
    # One resync loop for all resources: kopf's timers would add a finalizer to every AlertRule and
    # SLO (a deletion would then wait for a running operator) and keep running for a resource deleted
    # without one. The loop is paused whenever kopf pauses this replica (see `PeeringView`).
    resync: list[asyncio.Task] = []
    # A round runs in a thread, which cancelling the loop's task does not stop: on cleanup the round
    # breaks off before its next resource and is waited for, so that nothing is written from kopf's
    # stopped view (e.g. while the next replica starts).
    rounds: list[asyncio.Future] = []
    stopping = threading.Event()

    def paused() -> bool:
        return stopping.is_set() or peers.paused()

    async def resync_forever() -> None:
        while True:
            await asyncio.sleep(settings.resync_seconds)
            rounds[:] = [asyncio.ensure_future(asyncio.to_thread(controller.resync, paused, handled.forget))]
            await asyncio.shield(rounds[0])

    @kopf.on.startup(registry=registry)
    async def start_resync(**_) -> None:
        stopping.clear()
        resync.append(asyncio.create_task(resync_forever()))

    @kopf.on.cleanup(registry=registry)
    async def stop_resync(**_) -> None:
        stopping.set()
        for task in resync:
            task.cancel()
        await asyncio.gather(*resync, *rounds, return_exceptions=True)

    return registry


def configure(kopf_settings: kopf.OperatorSettings, handled: HandledSpecs) -> kopf.OperatorSettings:
    """The kopf settings the operator needs, on top of whatever `kopf_settings` holds."""
    kopf_settings.persistence.progress_storage = UnmarkedProgressStorage(prefix=ANNOTATION_PREFIX)
    kopf_settings.persistence.diffbase_storage = handled
    kopf_settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/kopf-finalizer"
    # Our own Events report transitions; kopf's would add one per handled change (and a write).
    kopf_settings.posting.level = logging.WARNING
    # Handlers are synchronous (the official client blocks) and run in this many threads.
    kopf_settings.execution.max_workers = HANDLER_THREADS
    # kopf waits this long for a stack's timers to stop before releasing its finalizer (default 60 s).
    kopf_settings.background.cancellation_polling = 1.0
    return kopf_settings


def tune_garbage_collector() -> None:
    """Stop the cyclic collector re-scanning what never becomes garbage. Measured in bench/reconcile
    (1,000 CRs): with CPython's defaults the operator spent 3.3 s of its 18 s of CPU collecting,
    most of it full collections walking the ~86,000 objects of its imported modules; frozen after
    start-up, and collected less often, 1.4 s — and a smaller resident set."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(settings: Settings) -> None:
    """Run until terminated, as `kopf run` would: login, watch, handle; health and metrics served."""
    import kubernetes.client
    from prometheus_client import start_http_server

    kopf.configure(log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.PLAIN)
    # kopf's login loads the official client's default configuration (in-cluster or kubeconfig), so
    # the adapter talks to the same server with the same credentials.
    kopf.login_via_client(logger=logging.getLogger(__name__), settings=kopf.OperatorSettings())
    configuration = kubernetes.client.Configuration.get_default_copy()
    # A connection per thread that calls the API: kopf's handler threads and asyncio's default pool
    # (the resync, deletions, the stack controller). The client's default (5 per CPU) is fewer on a
    # small node: in a burst urllib3 discarded connections and opened new ones for most requests.
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize,
                                                HANDLER_THREADS + min(32, (os.cpu_count() or 1) + 4))
    api_client = kubernetes.client.ApiClient(configuration)
    controller = build_controller(api_client, settings)
    identity = instance_identity()
    handled = HandledSpecs()
    registry = build_registry(controller, settings, handled, build_stacks(controller), identity=identity)

    @kopf.on.login(registry=registry)
    def login(**kwargs):
        return kopf.login_via_client(**kwargs)

    start_http_server(settings.metrics_port, registry=controller.metrics.registry)
    tune_garbage_collector()
    kopf.run(
        registry=registry,
        settings=configure(kopf.OperatorSettings(), handled),
        standalone=settings.peering_name is None,
        peering_name=settings.peering_name,
        identity=identity,
        priority=peering_priority(identity),
        clusterwide=settings.clusterwide,
        namespaces=settings.watch_namespaces,
        liveness_endpoint=f"http://0.0.0.0:{settings.health_port}/healthz",
    )
