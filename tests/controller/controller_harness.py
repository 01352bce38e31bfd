"""The operator loop run in-process against the apiserver emulator."""

from __future__ import annotations

import contextlib
import copy
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kopf
import yaml
from k8s.emulator import Cluster, kopf_operator, kopf_settings
from observatory.controller.app import build_controller, build_registry, configure
from observatory.controller.handled import HandledSpecs
from observatory.controller.reconcile import Controller
from observatory.controller.settings import Settings

REPO = Path(__file__).resolve().parents[2]
ALERTRULES = 'observatory.dev/v1alpha1/alertrules'
SLOS = 'observatory.dev/v1alpha1/slos'
PROMETHEUSRULES = 'monitoring.coreos.com/v1/prometheusrules'
AMCONFIGS = 'monitoring.coreos.com/v1alpha1/alertmanagerconfigs'
PROMETHEUSES = 'monitoring.coreos.com/v1/prometheuses'
EVENTS = 'events.k8s.io/v1/events'


def example(path: str, **metadata: Any) -> dict[str, Any]:
    """An example resource from examples/, with metadata overridden (e.g. name=, namespace=)."""
    obj = yaml.safe_load((REPO / 'examples' / path).read_text())
    obj['metadata'].update(metadata)
    return obj


def with_spec(obj: dict[str, Any], **spec: Any) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj['spec'].update(spec)
    return obj


@contextlib.asynccontextmanager
async def running_operator(cluster: Cluster, settings: Settings | None = None, timeout: float = 2.0, *,
                           identity: str = 'observatory-test', priority: int = 0,
                           user_agent: str | None = None, handled: HandledSpecs | None = None) -> AsyncIterator[Controller]:
    """The operator as `observatory run` builds it, in this loop, watching all namespaces; with
    `settings.peering_name`, as the peer `identity` of `priority`. `user_agent` tells its requests
    apart; `handled` is kopf's memory of what it handled (a fresh one by default)."""
    settings = settings or Settings()
    api_client = cluster.api_client()
    if user_agent:
        api_client.user_agent = user_agent
    controller = build_controller(api_client, settings, timeout=timeout)
    # Requests logged before this operator starts (an earlier operator's watches) must not count
    # as its own; the list keeps them alive, so their ids cannot be reused by new requests.
    earlier = cluster.requests
    handled = HandledSpecs() if handled is None else handled
    MEMORIES.setdefault(id(cluster), []).append(handled)
    try:
        async with kopf_operator(cluster, build_registry(controller, settings, handled, identity=identity, priority=priority),
                                 settings=configure(kopf_settings(), handled), clusterwide=True,
                                 peering_name=settings.peering_name, priority=priority, identity=identity):
            # kopf reports ready before it discovers the resources; stopping it in the middle of its
            # discovery leaves a request retrying for 5 s. Watches being open means discovery is done.
            await cluster.until(lambda: {'alertrules', 'slos'} <= watched(cluster, earlier))
            yield controller
    finally:
        MEMORIES[id(cluster)].remove(handled)
        if not MEMORIES[id(cluster)]:
            del MEMORIES[id(cluster)]  # another cluster may get this id later
        api_client.close()


# kopf's memory of what it handled, of each operator running on a cluster (by id): what `handled` reads.
MEMORIES: dict[int, list[HandledSpecs]] = {}


def watched(cluster: Cluster, earlier: list[Any]) -> set[str]:
    """Plurals watched by requests not among `earlier`."""
    old = {id(r) for r in earlier}
    return {r.resource.plural for r in cluster.requests if id(r) not in old
            and r.resource is not None and r.method == 'GET' and r.params.get('watch') == 'true'}


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for cond in ((obj or {}).get('status') or {}).get('conditions') or []:
        if cond['type'] == kind:
            return cond
    return {}


def settled(cluster: Cluster, resource: str, name: str, namespace: str) -> dict[str, Any] | None:
    """The resource once its status reports on its current generation; else None."""
    obj = cluster.get(resource, name, namespace)
    if obj and (obj.get('status') or {}).get('observedGeneration') == obj['metadata']['generation']:
        return obj
    return None


def handled(cluster: Cluster, resource: str, name: str, namespace: str) -> dict[str, Any] | None:
    """Settled, and kopf is done with the change: its handler has returned (so its Event is posted
    too), kopf has recorded the spec as handled, and no retry record of its own is left to clear
    (`observatory.dev/<handler>` annotations, removed by a last write once a retried handler succeeds)."""
    obj = settled(cluster, resource, name, namespace)
    if not obj or any(key.startswith('observatory.dev/') for key in obj['metadata'].get('annotations') or {}):
        return None
    recorded = [memory.fetch(body=kopf.Body(obj)) for memory in MEMORIES.get(id(cluster), [])]
    return obj if any(r and r.get('spec') == obj['spec'] for r in recorded) else None


def threshold_rule(name: str, expr: str, namespace: str = 'team-a') -> dict[str, Any]:
    return {'apiVersion': 'observatory.dev/v1alpha1', 'kind': 'AlertRule',
            'metadata': {'name': name, 'namespace': namespace},
            'spec': {'severity': 'warning', 'threshold': {'expr': expr, 'value': 1}}}


def at_generation(cluster: Cluster, resource: str, name: str, namespace: str, generation: int) -> dict[str, Any] | None:
    obj = settled(cluster, resource, name, namespace)
    return obj if obj and obj['metadata']['generation'] == generation else None


def names(cluster: Cluster, resource: str, namespace: str) -> list[str]:
    return [o['metadata']['name'] for o in cluster.list(resource, namespace)]


def expected_objects(live: dict[str, Any], shared: bool = False) -> dict[str, dict[str, Any]]:
    """What the compile core makes of a live resource (default settings), by `Kind/name`: what it
    contributes (its own objects, an SLO's part of its group) or, with `shared`, the namespace's
    shared objects it needs."""
    from observatory.compile import compile_resource, shared_objects
    from observatory.models import parse_resource
    resource = parse_resource({k: v for k, v in live.items() if k != 'status'})
    objects = shared_objects([resource]) if shared else compile_resource(resource)
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in objects}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
