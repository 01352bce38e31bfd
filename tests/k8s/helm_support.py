"""What the real `helm` binary needs from the emulator, as a subclass: `HelmEmulator`.

Measured against helm 3.17 and 4.3 (see tests/stack_operator/test_helm_emulator.py):

- **Protobuf request bodies.** helm's release storage (the Secrets driver) talks protobuf: it
  POSTs/PUTs `v1.Secret` and DELETEs with `DeleteOptions` as `application/vnd.kubernetes.protobuf`.
  client-go does not fall back to JSON when the server answers 415, so the few messages helm
  sends are decoded here (Secret, ConfigMap, DeleteOptions); any other protobuf message or an
  unknown field is answered 415 naming it, so a gap fails loudly. Responses stay JSON: helm's
  `Accept` lists `application/json` after protobuf.
- **OpenAPI.** Before creating objects helm validates them. The client asks `/openapi/v3` whether
  the server validates fields itself (a `fieldValidation` query parameter on the resource's
  operations); when it does, it skips client-side validation and never downloads `/openapi/v2`
  (which it only accepts as gnostic protobuf). So `/openapi/v3` and one document per registered
  group-version are served, advertising `fieldValidation`, which the emulator honours (schema.py:
  measured, helm 3.17 POSTs with `fieldManager=helm` and no fieldValidation, so unknown fields
  are dropped with a Warning; helm 4.3 server-side applies with `fieldValidation=Strict` and
  `force=false`, so they are a 400 and another manager's changed fields a 409).
- **Resources** every kind the real upstream charts create with Observatory's values (Phoenix
  12.0.4, Langfuse 2.0.0 with its subcharts, OpenTelemetry Collector 0.170.0: workloads,
  PodDisruptionBudgets, Jobs, ServiceAccounts, PVCs, the SeaweedFS ClusterRole/-Binding) and
  CustomResourceDefinitions (prerequisite detection reads them) are registered; custom kinds
  from CRD files with `install_crds`.
- **The Job controller** is played: a Job is reported Complete right after it is created, since
  helm waits for its hook Jobs (Langfuse's bucket Job, post-install/-upgrade) to complete
  (helm/helm pkg/kube/client.go waitForJob: the Complete condition; helm 4's kstatus reads the
  same). `complete_jobs=False` leaves them running, for a hook that never finishes.
- `kind: XList` lists, PUT and discovery of every registered group-version come from the base
  emulator.

Use: `running_cluster(HelmEmulator)` / `cluster_context(HelmEmulator)`; `kubeconfig(cluster)` for
a helm kubeconfig; `set_available(cluster, namespace)` plays the Deployment and StatefulSet
controllers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import yaml
from kmock._internal import rendering

from .emulator import Cluster, Emulator, api_error, merge_patch, now_iso
from .rbac import OPERATOR, Identity

PROTOBUF = 'application/vnd.kubernetes.protobuf'
PROTOBUF_MAGIC = b'k8s\x00'

EXTRA_RESOURCES: tuple[tuple[str, str, str, bool, tuple[str, ...], bool], ...] = (
    ('apps/v1', 'deployments', 'Deployment', True, ('status',), True),
    ('apps/v1', 'statefulsets', 'StatefulSet', True, ('status',), True),
    ('apps/v1', 'replicasets', 'ReplicaSet', True, ('status',), True),
    ('v1', 'serviceaccounts', 'ServiceAccount', True, (), False),
    ('v1', 'persistentvolumeclaims', 'PersistentVolumeClaim', True, ('status',), False),
    ('apiextensions.k8s.io/v1', 'customresourcedefinitions', 'CustomResourceDefinition', False, ('status',), True),
    ('policy/v1', 'poddisruptionbudgets', 'PodDisruptionBudget', True, ('status',), True),
    ('batch/v1', 'jobs', 'Job', True, ('status',), True),
    ('rbac.authorization.k8s.io/v1', 'clusterroles', 'ClusterRole', False, (), False),
    ('rbac.authorization.k8s.io/v1', 'clusterrolebindings', 'ClusterRoleBinding', False, (), False),
)

# --- protobuf ----------------------------------------------------------------------------------
# Field tables of the k8s.io/api messages helm sends: number -> (JSON name, type). Types: 'string',
# 'bytes' (JSON: base64, as the API's JSON has it), 'int', 'bool', a nested table, ('map', value
# type), ('list', item type). Only fields helm sets are listed; others are refused. Go's protobuf
# encodes non-pointer fields even when empty, where JSON omits them: empty strings and zero
# numbers are dropped (no field helm sets means anything by them).
Schema = dict[int, tuple[str, Any]]
TIME: Schema = {1: ('seconds', 'int'), 2: ('nanos', 'int')}
OWNER_REFERENCE: Schema = {1: ('kind', 'string'), 3: ('name', 'string'), 4: ('uid', 'string'),
                           5: ('apiVersion', 'string'), 6: ('controller', 'bool'), 7: ('blockOwnerDeletion', 'bool')}
OBJECT_META: Schema = {
    1: ('name', 'string'), 2: ('generateName', 'string'), 3: ('namespace', 'string'), 4: ('selfLink', 'string'),
    5: ('uid', 'string'),
    6: ('resourceVersion', 'string'), 7: ('generation', 'int'), 8: ('creationTimestamp', TIME),
    11: ('labels', ('map', 'string')), 12: ('annotations', ('map', 'string')),
    13: ('ownerReferences', ('list', OWNER_REFERENCE)), 14: ('finalizers', ('list', 'string')),
}
MESSAGES: dict[tuple[str, str], Schema] = {
    ('v1', 'Secret'): {1: ('metadata', OBJECT_META), 2: ('data', ('map', 'bytes')), 3: ('type', 'string'),
                       4: ('stringData', ('map', 'string')), 5: ('immutable', 'bool')},
    ('v1', 'ConfigMap'): {1: ('metadata', OBJECT_META), 2: ('data', ('map', 'string')),
                          3: ('binaryData', ('map', 'bytes')), 4: ('immutable', 'bool')},
    ('v1', 'DeleteOptions'): {1: ('gracePeriodSeconds', 'int'),
                              2: ('preconditions', {1: ('uid', 'string'), 2: ('resourceVersion', 'string')}),
                              3: ('orphanDependents', 'bool'), 4: ('propagationPolicy', 'string'),
                              5: ('dryRun', ('list', 'string'))},
}
UNKNOWN: Schema = {1: ('typeMeta', {1: ('apiVersion', 'string'), 2: ('kind', 'string')}), 2: ('raw', 'raw'),
                   3: ('contentEncoding', 'string'), 4: ('contentType', 'string')}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """The (field number, value) pairs of one message; varints as int, length-delimited as bytes."""
    out, pos = [], 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        else:
            raise api_error(415, f'protobuf wire type {wire} (field {number}) is not supported by the emulator')
        out.append((number, value))
    return out


def _value(kind: Any, raw: int | bytes, where: str) -> Any:
    if kind == 'string':
        return raw.decode()
    if kind == 'bytes':
        return base64.b64encode(raw).decode()
    if kind == 'int':
        return raw - (1 << 64) if raw >= 1 << 63 else raw
    if kind == 'bool':
        return bool(raw)
    if kind == 'raw':
        return raw
    return decode_message(raw, kind, where)


def decode_message(data: bytes, schema: Schema, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, raw in _fields(data):
        if number not in schema:
            raise api_error(415, f'protobuf field {number} of {where} is not supported by the emulator')
        name, kind = schema[number]
        if isinstance(kind, tuple) and kind[0] == 'map':
            entry = dict(_fields(raw))
            key = entry.get(1, b'').decode()
            out.setdefault(name, {})[key] = _value(kind[1], entry.get(2, b''), f'{where}.{name}')
        elif isinstance(kind, tuple) and kind[0] == 'list':
            out.setdefault(name, []).append(_value(kind[1], raw, f'{where}.{name}'))
        elif (value := _value(kind, raw, f'{where}.{name}')) not in ('', 0):
            out[name] = value
    return out


def decode_protobuf(body: bytes) -> dict[str, Any]:
    """A Kubernetes protobuf request body (magic + runtime.Unknown envelope) as its JSON object."""
    if not body.startswith(PROTOBUF_MAGIC):
        raise api_error(400, 'protobuf body without the k8s magic prefix')
    envelope = decode_message(body[len(PROTOBUF_MAGIC):], UNKNOWN, 'runtime.Unknown')
    type_meta = envelope.get('typeMeta', {})
    api_version, kind = type_meta.get('apiVersion', ''), type_meta.get('kind', '')
    schema = MESSAGES.get((api_version, kind))
    if schema is None:
        raise api_error(415, f'protobuf {api_version} {kind} is not supported by the emulator; send JSON')
    obj = decode_message(envelope.get('raw', b''), schema, kind)
    meta = obj.get('metadata')
    if meta is not None:
        created = meta.pop('creationTimestamp', None)
        if created and created.get('seconds'):  # the zero Time is always encoded; it means unset
            raise api_error(415, 'protobuf metadata.creationTimestamp is not supported by the emulator')
    return {'apiVersion': api_version, 'kind': kind, **obj}


# --- OpenAPI -------------------------------------------------------------------------------------

def _group_version_path(group: str, version: str) -> str:
    return f'api/{version}' if not group else f'apis/{group}/{version}'


@attrs.define(kw_only=True)
class HelmEmulator(Emulator):
    """The emulator plus what helm needs (see the module docstring)."""

    complete_jobs: bool = True

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for api_version, plural, kind, namespaced, subresources, generation in EXTRA_RESOURCES:
            self.register(api_version, plural, kind, namespaced=namespaced,
                          subresources=subresources, generation=generation)

    def _commit(self, key: Any, obj: dict[str, Any], event: str, old: dict[str, Any] | None = None) -> dict[str, Any]:
        stored = super()._commit(key, obj, event, old)
        if self.complete_jobs and event == 'ADDED' and key[0] == self._kinds.get(('batch/v1', 'Job')):
            asyncio.get_running_loop().call_soon(self._complete_job, key)
        return stored

    def _complete_job(self, key: Any) -> None:
        job = self._current(key)
        if job is None:
            return
        done = [{'type': kind, 'status': 'True', 'lastTransitionTime': now_iso()} for kind in ('SuccessCriteriaMet', 'Complete')]
        status = {'startTime': now_iso(), 'completionTime': now_iso(), 'succeeded': 1, 'ready': 0, 'conditions': done}
        self.update_object(key, merge_patch(job, {'status': status}), 'status')

    async def _route(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        path = request.url.path
        if path == '/openapi/v3' or path.startswith('/openapi/v3/'):
            return aiohttp.web.json_response(self._openapi_v3(path.removeprefix('/openapi/v3').strip('/')))
        return await super()._route(request)

    async def _parse(self, raw: aiohttp.web.BaseRequest) -> rendering.Request:
        if raw.content_type != PROTOBUF:
            return await super()._parse(raw)
        # Re-enter the base parser with the JSON equivalent, as if the client had sent JSON (a
        # request can only be cloned before its body is read; read() returns _read_bytes once set).
        clone = raw.clone(headers={**raw.headers, 'Content-Type': 'application/json'})
        clone._read_bytes = json.dumps(decode_protobuf(await raw.read())).encode()
        return await super()._parse(clone)

    def _openapi_v3(self, group_version: str) -> dict[str, Any]:
        by_path: dict[str, list] = {}
        for resource, info in self.resources.items():
            by_path.setdefault(_group_version_path(resource.group, resource.version), []).append((resource, info))
        if not group_version:
            return {'paths': {path: {'serverRelativeURL': f'/openapi/v3/{path}?hash=emulator'} for path in sorted(by_path)}}
        if group_version not in by_path:
            raise api_error(404, f'no OpenAPI document for {group_version}')
        paths: dict[str, Any] = {}
        field_validation = [{'name': 'fieldValidation', 'in': 'query', 'schema': {'type': 'string', 'uniqueItems': True}}]
        for resource, info in by_path[group_version]:
            gvk = {'group': resource.group, 'version': resource.version, 'kind': info.kind}
            scope = '/namespaces/{namespace}' if info.namespaced else ''
            operation = {'x-kubernetes-group-version-kind': gvk, 'parameters': field_validation, 'responses': {}}
            paths[f'/{group_version}{scope}/{resource.plural}'] = {'post': operation}
            paths[f'/{group_version}{scope}/{resource.plural}/{{name}}'] = {'put': operation, 'patch': operation}
        return {'openapi': '3.0.0', 'info': {'title': 'Kubernetes (emulator)', 'version': 'v1'},
                'paths': paths, 'components': {'schemas': {}}}


# --- test helpers -------------------------------------------------------------------------------

# The operator's chart environment (helm.operator_charts) pointing at the first-party stand-in charts.
STAND_IN_CHARTS = {f'OBSERVATORY_{component.upper()}_CHART': str(Path(__file__).parents[1] / 'stack_operator' / 'charts' / chart)
                   for component, chart in (('phoenix', 'phoenix-helm'), ('langfuse', 'langfuse'),
                                            ('collector', 'opentelemetry-collector'))}

@contextlib.asynccontextmanager
async def stack_operator(cluster: Cluster, helm_binary: Path, env: dict[str, str],
                         namespaces: tuple[str, ...] = ()) -> AsyncIterator[Any]:
    """One incarnation of the ObservabilityStack operator in this loop, as `observatory run` builds
    it: its own adapter (as the operator's ServiceAccount), helm and kopf; chart sources from `env`
    (OBSERVATORY_<COMPONENT>_CHART), watching `namespaces` (none: every namespace). Yields the
    StackController."""
    import kopf
    from observatory.compile import CompileOptions
    from observatory.controller.app import configure
    from observatory.controller.handled import HandledSpecs
    from observatory.controller.handlers import stack as stack_handlers
    from observatory.controller.metrics import Metrics
    from observatory.controller.stack_kube import StackKube
    from observatory.controller.stack_reconcile import build_stack_controller
    from observatory.conventions import DEFAULT

    from .emulator import kopf_operator, kopf_settings

    api_client = cluster.api_client()
    controller = build_stack_controller(StackKube(api_client, DEFAULT), CompileOptions(), Metrics(),
                                        kubeconfig=kubeconfig(cluster), helm_executable=str(helm_binary), env=env)
    registry = kopf.OperatorRegistry()
    handled = HandledSpecs()
    stack_handlers.register(registry, controller, resync_seconds=3600, handled=handled, readiness_seconds=0.2)
    settings = configure(kopf_settings(), handled)
    # kopf keeps the finalizer until timers exit and polls for that every 60 s by default.
    settings.background.cancellation_polling = 0.1
    try:
        async with kopf_operator(cluster, registry, settings=settings, clusterwide=not namespaces, namespaces=namespaces):
            yield controller
    finally:
        controller.helm.close()
        api_client.close()


def seed_installer(cluster: Cluster, namespace: str) -> None:
    """What the operator keeps in each stack namespace (StackKube.ensure_installer): the installer
    ServiceAccount and its RoleBinding to the installer ClusterRole charts/observatory ships."""
    from observatory.rbac import INSTALLER, RBAC_GROUP
    cluster.seed({'apiVersion': 'v1', 'kind': 'ServiceAccount', 'metadata': {'name': INSTALLER, 'namespace': namespace}})
    cluster.seed({'apiVersion': f'{RBAC_GROUP}/v1', 'kind': 'RoleBinding', 'metadata': {'name': INSTALLER, 'namespace': namespace},
                  'roleRef': {'apiGroup': RBAC_GROUP, 'kind': 'ClusterRole', 'name': INSTALLER},
                  'subjects': [{'kind': 'ServiceAccount', 'name': INSTALLER, 'namespace': namespace}]})


def kubeconfig(cluster: Cluster, namespace: str = 'default', identity: Identity = OPERATOR) -> str:
    """A kubeconfig for helm/kubectl as `identity` (default: the operator's ServiceAccount, so helm
    runs with the operator's RBAC), over https: client-go sends no credentials over plain http."""
    return yaml.safe_dump({
        'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'emulator',
        'clusters': [{'name': 'emulator', 'cluster': {'server': cluster.https_url, 'certificate-authority': cluster.ca_file}}],
        'users': [{'name': 'emulator', 'user': {'token': cluster.token(identity)}}],
        'contexts': [{'name': 'emulator', 'context': {'cluster': 'emulator', 'user': 'emulator', 'namespace': namespace}}],
    })


DEPLOYMENTS = 'apps/v1/deployments'
WORKLOADS = ('Deployment', 'StatefulSet')


def set_available(cluster: Cluster, namespace: str, available: bool = True) -> list[str]:
    """Play the Deployment and StatefulSet controllers: report every one in `namespace` (un)available."""
    emulator, names = cluster.emulator, []
    for kind in WORKLOADS:
        resource = emulator.resource_of('apps/v1', kind)
        for workload in cluster.list(resource, namespace):
            name, replicas = workload['metadata']['name'], workload['spec'].get('replicas', 1)
            ready = replicas if available else 0
            status = {'observedGeneration': workload['metadata'].get('generation'), 'replicas': replicas,
                      'readyReplicas': ready, 'availableReplicas': ready, 'updatedReplicas': replicas,
                      'currentReplicas': replicas}
            key = (resource, namespace, name)
            cluster.call(lambda key=key, status=status: emulator.update_object(
                key, merge_patch(emulator._require(key), {'status': status}), 'status'))
            names.append(name)
    return names


def install_crds(cluster: Cluster, paths: list[Path]) -> list[str]:
    """CustomResourceDefinitions from files: stored as objects (what prerequisite checks read) and
    their served versions registered, so their custom resources can be created. Returns the names."""
    names = []
    for path in paths:
        for crd in filter(None, yaml.safe_load_all(path.read_text())):
            cluster.seed(crd)
            spec = crd['spec']
            for version in spec['versions']:
                if version.get('served', True):
                    cluster.register(f"{spec['group']}/{version['name']}", spec['names']['plural'], spec['names']['kind'],
                                     namespaced=spec['scope'] == 'Namespaced',
                                     subresources=tuple(version.get('subresources') or {}), generation=True)
            names.append(crd['metadata']['name'])
    return names


def clickhouse_crds(cluster: Cluster, upstream_dir: Path) -> list[str]:
    """The ClickHouse operator's real CRDs (../shared/upstream/crds): what the bundled ClickHouse of
    a dedicated Langfuse needs, as the operator's prerequisite check and as served kinds."""
    return install_crds(cluster, sorted((upstream_dir / 'crds').glob('clickhouse.com_*.yaml')))


def helm_objects(cluster: Cluster, releases: set[str]) -> list[tuple[str, str | None, str, str | None]]:
    """(kind, namespace, name, helm.sh/resource-policy) of every stored object helm created for one
    of `releases` (its meta.helm.sh/release-name annotation), across all registered kinds."""
    def read() -> list[tuple[str, str | None, str, str | None]]:
        found = []
        for _, obj in cluster.emulator._live():
            annotations = obj['metadata'].get('annotations') or {}
            if annotations.get('meta.helm.sh/release-name') in releases:
                found.append((obj['kind'], obj['metadata'].get('namespace'), obj['metadata']['name'],
                              annotations.get('helm.sh/resource-policy')))
        return sorted(found)
    return cluster.call(read)
