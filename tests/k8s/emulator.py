"""A faithful-enough Kubernetes API server for tests, built on kmock's KubernetesEmulator.

kmock stores objects and speaks the URL scheme; this subclass adds the apiserver semantics that
kopf and the official `kubernetes` client depend on: server-assigned metadata, resourceVersion-
aware watches, label/field selectors, proper status codes, optimistic concurrency, server-side
apply, the status subresource, finalizers and owner-reference garbage collection. Plus test
controls: fault injection, watch dropping, a request log.

Usage (the server runs in its own thread and loop, so the blocking `kubernetes` client and an
in-process kopf operator in the test's loop both work against it):

    with running_cluster() as cluster:                    # async: `async with cluster_context()`
        cluster.seed({'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'a'}})
        core = kubernetes.client.CoreV1Api(cluster.api_client())
        cluster.fail('PATCH', r'/alertrules/', status=500, times=2)   # or hang(...), drop_watches()
        assert cluster.write_counts()['alertrules/status'] == 1

    async with cluster_context() as cluster, kopf_operator(cluster, registry):
        cluster.seed(alertrule)
        await cluster.until(lambda: cluster.get(ALERTRULES, 'r1', 'default').get('status'))

Resource URLs are served by this class; kmock's DSL (`emulator['get /x'] << ...`) still answers
other URLs. Approximations are listed in the docstrings where they live (apply, GC, patches).
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import collections
import contextlib
import copy
import datetime
import json
import re
import secrets
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock
import multidict
import yaml
from kmock._internal import apps, parsing, rendering

from . import controllers as controllers_module
from . import rbac as rbac_module
from . import schema as schemas
from . import ssa
from .controllers import Controllers
from .rbac import REQUESTER, Forbidden, Identity, Rbac

Obj = dict[str, Any]
Key = tuple[kmock.resource, str | None, str]

# (apiVersion, plural, kind, namespaced, subresources, tracks metadata.generation)
DEFAULT_RESOURCES: tuple[tuple[str, str, str, bool, tuple[str, ...], bool], ...] = (
    ('v1', 'namespaces', 'Namespace', False, ('status',), False),
    ('v1', 'secrets', 'Secret', True, (), False),
    ('v1', 'configmaps', 'ConfigMap', True, (), False),
    ('v1', 'events', 'Event', True, (), False),
    ('v1', 'services', 'Service', True, ('status',), False),
    ('v1', 'pods', 'Pod', True, ('status',), False),
    ('observatory.dev/v1alpha1', 'alertrules', 'AlertRule', True, ('status',), True),
    ('observatory.dev/v1alpha1', 'slos', 'SLO', True, ('status',), True),
    ('observatory.dev/v1alpha1', 'observabilitystacks', 'ObservabilityStack', True, ('status',), True),
    ('observatory.dev/v1alpha1', 'observabilitystackclasses', 'ObservabilityStackClass', False, (), True),
    # prometheus-operator v0.93 gives both a status subresource (its bindings, see ../shared/upstream/crds).
    ('monitoring.coreos.com/v1', 'prometheusrules', 'PrometheusRule', True, ('status',), True),
    ('monitoring.coreos.com/v1', 'servicemonitors', 'ServiceMonitor', True, (), True),
    ('monitoring.coreos.com/v1', 'prometheuses', 'Prometheus', True, ('status',), True),
    ('monitoring.coreos.com/v1alpha1', 'alertmanagerconfigs', 'AlertmanagerConfig', True, ('status',), True),
    ('coordination.k8s.io/v1', 'leases', 'Lease', True, (), False),
    ('events.k8s.io/v1', 'events', 'Event', True, (), False),
    ('kopf.dev/v1', 'clusterkopfpeerings', 'ClusterKopfPeering', False, (), True),
    ('kopf.dev/v1', 'kopfpeerings', 'KopfPeering', True, (), True),
)
DEFAULT_NAMESPACES = ('default', 'kube-system', 'kube-public')
# Groups served by the apiserver itself; everything else behaves as a CRD-backed custom resource.
BUILTIN_GROUPS = frozenset({'', 'apiextensions.k8s.io', 'apps', 'autoscaling', 'batch', 'coordination.k8s.io', 'events.k8s.io',
                            'networking.k8s.io', 'policy', 'rbac.authorization.k8s.io'})
VERBS = ('create', 'delete', 'get', 'list', 'patch', 'update', 'watch')
WRITE_METHODS = frozenset({'POST', 'PUT', 'PATCH', 'DELETE'})
REASONS = {400: 'BadRequest', 404: 'NotFound', 405: 'MethodNotAllowed', 409: 'Conflict',
           410: 'Expired', 415: 'UnsupportedMediaType', 422: 'Invalid', 429: 'TooManyRequests',
           500: 'InternalError', 504: 'Timeout'}
NAME_RE = re.compile(r'[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?')
# Server-owned metadata that client writes can never change.
SYSTEM_META = ('uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds',
               'generation', 'resourceVersion', 'managedFields')


class ApiError(kmock.KubernetesError):
    """An error answered as a Kubernetes `Status` with the conventional reason for its code."""


def api_error(code: int, message: str, reason: str | None = None) -> ApiError:
    return ApiError(status=code, reason=reason or REASONS.get(code, 'Unknown'), message=message)


def _yaml_or_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return yaml.safe_load(body)


def status_body(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    body = {'apiVersion': 'v1', 'kind': 'Status', 'metadata': {}, 'status': 'Failure',
            'code': code, 'reason': reason, 'message': message}
    return body if details is None else dict(body, details=details)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: dicts merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def get_path(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


# Selectors: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma-separated.
SELECTOR_RE = re.compile(r'\s*(!?)\s*([\w./-]+)\s*(?:(==|=|!=)\s*([\w.-]*)|\s(in|notin)\s*\(([^)]*)\))?\s*(,|$)')


def parse_selector(text: str) -> list[tuple[str, str, set[str]]]:
    """Parse a label/field selector into (key, op, values); raise 400 on bad syntax."""
    requirements, pos = [], 0
    while pos < len(text):
        match = SELECTOR_RE.match(text, pos)
        if match is None or match.end() == pos:
            raise api_error(400, f'unable to parse requirement: {text[pos:]!r}')
        bang, key, eq_op, eq_val, set_op, set_vals, _ = match.groups()
        if bang and (eq_op or set_op):
            raise api_error(400, f'invalid selector: {match.group(0)!r}')
        if eq_op:
            requirements.append((key, '!=' if eq_op == '!=' else '=', {eq_val}))
        elif set_op:
            requirements.append((key, set_op, {v.strip() for v in set_vals.split(',') if v.strip()}))
        else:
            requirements.append((key, '!' if bang else 'exists', set()))
        pos = match.end()
    return requirements


def selector_matches(requirements: list[tuple[str, str, set[str]]], values: Callable[[str], str | None]) -> bool:
    for key, op, wanted in requirements:
        value = values(key)
        ok = {'=': value in wanted, 'in': value in wanted, '!=': value not in wanted,
              'notin': value not in wanted, 'exists': value is not None, '!': value is None}[op]
        if not ok:
            return False
    return True


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version order: v1 > v1beta2 > v1beta1 > v1alpha1 (higher tuple = preferred)."""
    match = re.fullmatch(r'v(\d+)(?:(alpha|beta)(\d+))?', version)
    if match is None:
        return (-1, 0, 0)
    major, level, minor = match.groups()
    return ({None: 2, 'beta': 1, 'alpha': 0}[level], int(major), int(minor or 0))


@dataclass
class Fault:
    method: str | None
    path: re.Pattern[str]
    times: int
    status: int = 500
    hang: float | None = None  # seconds to stall before answering 504


@dataclass
class Event:
    rv: int
    resource: kmock.resource
    type: str
    obj: Obj
    old: Obj | None = None  # the previous state, to re-type events across selector boundaries


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator with apiserver semantics; all state lives on the server's event loop."""

    event_window: int = 10_000  # watch events kept for resumption; older resourceVersions get 410
    # The operator's RBAC as charts/observatory renders it: clusterwide, or Roles in these namespaces.
    operator_namespaces: tuple[str, ...] = ()
    operator_peering: bool = False  # the chart rendered with peering.enabled (the peering RBAC too)
    rbac: Rbac = attrs.field(factory=Rbac, init=False)
    controller_delay: float = 0.05  # how long after a change the garbage collector/namespace controller act
    controllers: Controllers = attrs.field(default=None, init=False)

    _rv: int = attrs.field(default=0, init=False)
    _events: list[Event] = attrs.field(factory=list, init=False)
    _compacted_rv: int = attrs.field(default=0, init=False)
    _changed: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    _epoch: int = attrs.field(default=0, init=False)  # bumped to end all active watch streams
    _generation_tracked: set[kmock.resource] = attrs.field(factory=set, init=False)
    _kinds: dict[tuple[str, str], kmock.resource] = attrs.field(factory=dict, init=False)
    _faults: list[Fault] = attrs.field(factory=list, init=False)
    _faults_lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)
    _released: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    _watch_transports: set[Any] = attrs.field(factory=set, init=False)
    internal_errors: list[BaseException] = attrs.field(factory=list, init=False)
    _answers: dict[int, int] = attrs.field(factory=dict, init=False)  # id(raw request) -> HTTP status answered
    # For the garbage collector (controllers.py), kept on every commit: the live objects by uid, and
    # the keys of those with owners or a deletionTimestamp (the only ones a sweep acts on), so that a
    # sweep does not go over every object after each change.
    _keys_by_uid: dict[str, Key] = attrs.field(factory=dict, init=False)
    _gc_candidates: dict[Key, None] = attrs.field(factory=dict, init=False)
    # The live keys of each resource: a list reads those alone, as the apiserver reads one key range
    # of etcd (/registry/<group>/<resource>/[<namespace>/], k8s.io/apiserver storage/etcd3/store.go
    # GetList), not every object of every kind.
    _keys_by_resource: dict[kmock.resource, dict[Key, None]] = attrs.field(factory=dict, init=False)
    # Schemas per served resource (schema.py); a resource without one keeps whatever it is sent.
    _schemas: dict[kmock.resource, schemas.ResourceSchema | None] = attrs.field(factory=dict, init=False)
    # The write being served: its ?fieldValidation= and the Warning headers it collects.
    _field_validation: str | None = attrs.field(default=None, init=False)
    _manager: str = attrs.field(default='emulator', init=False)  # out-of-band writes (seed, GC)
    _warnings: list[str] = attrs.field(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        # Keep kmock's discovery & 404 fallbacks (and its DSL for other URLs) but not its object
        # handling: it mutates state before reactions run, so an injected failure would still
        # change objects. Resource URLs are served by `_serve` directly: kmock's reactions keep the
        # last status they rendered (a 201 for a create would stick to later patches).
        kmock.KubernetesScaffold.__attrs_post_init__(self)
        self.controllers = Controllers(self, self.controller_delay)
        for api_version, plural, kind, namespaced, subresources, generation in DEFAULT_RESOURCES:
            self.register(api_version, plural, kind, namespaced=namespaced,
                          subresources=subresources, generation=generation)
        for api_version, plural, kind, namespaced, subresources, generation in rbac_module.RBAC_RESOURCES:
            self.register(api_version, plural, kind, namespaced=namespaced, subresources=subresources, generation=generation)
        for path in schemas.known_crd_files():  # schemas for the custom resources served above
            crd, _ = schemas.compiled_crd(path)
            if any((crd['spec']['group'], v['name'], crd['spec']['names']['plural']) in
                   {(r.group, r.version, r.plural) for r in self.resources} for v in crd['spec']['versions']):
                self.register_crd(crd, path)
        for name in DEFAULT_NAMESPACES + self.operator_namespaces:
            self.create_object(self.resource_of('v1', 'Namespace'), None, {'metadata': {'name': name}})
        for obj in rbac_module.bootstrap_policy() + list(rbac_module.operator_policy(self.operator_namespaces, self.operator_peering)):
            resource = self.resource_of(obj['apiVersion'], obj['kind'])
            self.create_object(resource, obj['metadata'].get('namespace'), obj)

    def register(self, api_version: str, plural: str, kind: str, *, namespaced: bool = True,
                 subresources: tuple[str, ...] = (), generation: bool = True) -> kmock.resource:
        group, _, version = api_version.rpartition('/')
        resource = kmock.resource(group, version, plural)
        self.resources[resource] = kmock.ResourceInfo(
            kind=kind, singular=kind.lower(), namespaced=namespaced, verbs=VERBS, subresources=subresources)
        self._kinds[api_version, kind] = resource
        if generation:
            self._generation_tracked.add(resource)
        return resource

    def register_crd(self, crd: Obj, path: Any = None) -> list[kmock.resource]:
        """Serve every served version of a CustomResourceDefinition with its schema, as the
        apiserver does once a CRD is established (a file `path` is compiled once per process)."""
        compiled = schemas.compiled_crd(path)[1] if path is not None else \
            {v['name']: schemas.crd_schema(v) for v in crd['spec']['versions'] if v.get('served', True)}
        spec, registered = crd['spec'], []
        for version, schema in compiled.items():
            resource = self.register(f"{spec['group']}/{version}", spec['names']['plural'], spec['names']['kind'],
                                     namespaced=spec.get('scope', 'Namespaced') == 'Namespaced',
                                     subresources=('status',) if schema.status_subresource else ())
            self._schemas[resource] = schema
            registered.append(resource)
            # The apiserver defaults objects as it reads them from etcd: a default added by a CRD
            # update shows on every stored object, with no new resourceVersion.
            for _, obj in self._live(resource):
                schemas.apply_defaults(obj, schema.node)
        return registered

    def schema_of(self, resource: kmock.resource) -> schemas.ResourceSchema | None:
        """The schema writes to `resource` are checked against: its CRD's, or for built-in kinds
        the Kubernetes OpenAPI's (looked up once)."""
        if resource not in self._schemas:
            node = schemas.builtin_schema(f'{resource.group}/{resource.version}'.lstrip('/'), self.resources[resource].kind) \
                if resource.group in BUILTIN_GROUPS else None
            self._schemas[resource] = None if node is None else schemas.ResourceSchema(node, builtin=True)
        return self._schemas[resource]

    def _admit_schema(self, resource: kmock.resource, obj: Obj) -> None:
        """Pruning, defaulting and validation of an object about to be stored (schema.py); a
        stored CRD starts serving its resource."""
        schema = self.schema_of(resource)
        obj['metadata'].pop('managedFields', None)  # server-owned: recomputed after admission
        if schema is not None:
            self._warnings += schemas.admit(schema, obj, self._field_validation,
                                            group=resource.group, kind=self.resources[resource].kind)
        if (resource.group, obj.get('kind')) == ('apiextensions.k8s.io', 'CustomResourceDefinition'):
            self.register_crd(obj)

    def resource_of(self, api_version: str, kind: str) -> kmock.resource:
        try:
            return self._kinds[api_version, kind]
        except KeyError:
            raise ValueError(f'{api_version} {kind} is not registered in the emulator') from None

    # --- HTTP plumbing -----------------------------------------------------------------------

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        response = await self._answer(raw)
        self._answers[id(raw)] = response.status  # unique while its Request (which holds `raw`) is recorded
        return response

    async def _answer(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        requester = REQUESTER.set(None)
        try:
            request = await self._parse(raw)
            self._requests.append(request)
            # Authentication, impersonation and authorization filters run before any handler.
            REQUESTER.set(self.rbac.admit_request(raw.headers, raw.method, raw.path, dict(raw.query)))
            fault = self._take_fault(request)
            if fault is not None and fault.hang is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), fault.hang)
                raise api_error(504, 'injected: the request hung past its deadline')
            if fault is not None:
                raise api_error(fault.status, f'injected {fault.status} for {request.method} {raw.path}')
            return await self._route(request)
        except Forbidden as e:
            self.rbac.denials.append(f'{raw.method} {raw.path_qs}: {e.status()["message"]}')
            return aiohttp.web.json_response(e.status(), status=403)
        except kmock.KubernetesError as e:
            return aiohttp.web.json_response(status_body(e.status, e.reason, e.message, e.details), status=e.status)
        except Exception as e:  # a bug in the emulator: answer 500 and fail the test on exit
            self.internal_errors.append(e)
            return aiohttp.web.json_response(status_body(500, 'InternalError', repr(e)), status=500)
        finally:
            REQUESTER.reset(requester)

    async def _route(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if request.resource is not None and request.resource.plural is not None:
            return await self._serve(request)
        return await apps.RawHandler._handle(self, request)

    async def _parse(self, raw: aiohttp.web.BaseRequest) -> rendering.Request:
        body = await raw.read()
        try:
            # Apply patches are YAML (JSON is a subset, and what clients send: parsed as JSON first,
            # ~50x faster than PyYAML); everything else is JSON.
            data = (None if not body else _yaml_or_json(body) if raw.content_type.endswith('yaml')
                    else json.loads(body))
        except ValueError as e:
            raise api_error(400, f'cannot decode the request body: {e}')
        group, version, plural, namespace, name, sub = split_path(raw.path)
        parsed = parsing.ParsedPath(group, version, plural, namespace, name, sub)
        action = (kmock.action.UPDATE if raw.method == 'PUT' and name is not None
                  else parsing.guess_k8s(parsed, kmock.method(raw.method), dict(raw.query)))
        return rendering.Request(
            # The apiserver ignores a trailing slash (the official client asks for `/apis/`).
            id=len(self._requests), raw_request=raw, url=raw.url.with_path(raw.path.rstrip('/') or '/'), method=raw.method,
            params=dict(raw.query), headers=dict(raw.headers), body=body, text=body.decode(errors='replace'),
            data=data, action=action, namespace=namespace, name=name, subresource=sub,
            resource=None if group is None else kmock.resource(group=group, version=version, plural=plural))

    def _take_fault(self, request: rendering.Request) -> Fault | None:
        with self._faults_lock:
            for fault in self._faults:
                if fault.method in (None, request.method) and fault.path.search(request.url.path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def add_fault(self, fault: Fault) -> None:
        with self._faults_lock:
            self._faults.append(fault)

    async def _serve_apis(self, request: rendering.Request) -> rendering.Payload:
        # kmock picks the preferred version from a set (random); clients expect v1 over v1alpha1.
        answer = await super()._serve_apis(request)
        for group in answer['groups']:
            group['versions'].sort(key=lambda v: version_priority(v['version']), reverse=True)
            group['preferredVersion'] = group['versions'][0]
        answer['groups'].sort(key=lambda g: g['name'])
        return answer

    async def _serve_api(self, request: rendering.Request) -> rendering.Payload:
        # The official client's V1APIVersions requires the CIDR list, as the apiserver sends it.
        answer = await super()._serve_api(request)
        address = request.url.host and f'{request.url.host}:{request.url.port}'
        return dict(answer, serverAddressByClientCIDRs=[{'clientCIDR': '0.0.0.0/0', 'serverAddress': address}])

    async def _serve_version(self, request: rendering.Request) -> rendering.Payload:
        answer = await super()._serve_version(request)
        answer['groupVersion'] = answer['groupVersion'].lstrip('/')  # core is "v1", not "/v1"
        return answer

    # --- request dispatch --------------------------------------------------------------------

    async def _serve(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        # The manager of non-apply writes: ?fieldManager=, else the User-Agent up to its first `/`
        # (apiserver handlers/rest.go prefixFromUserAgent).
        self._manager = request.params.get('fieldManager') or request.headers.get('User-Agent', '').split('/')[0]
        self._field_validation, self._warnings = request.params.get('fieldValidation'), []
        try:
            code, payload = self._dispatch(request)
        finally:
            warnings, self._field_validation, self._warnings, self._manager = self._warnings, None, [], 'emulator'
        if isinstance(payload, dict):
            # RFC 7234 warn-code 299, as k8s.io/apiserver/pkg/warning writes them.
            headers = multidict.CIMultiDict(('Warning', f'299 - {json.dumps(w)}') for w in warnings)
            return aiohttp.web.json_response(payload, status=code, headers=headers)
        assert request._raw_request is not None
        response = aiohttp.web.StreamResponse(headers={'Content-Type': 'application/json'})
        with contextlib.suppress(ConnectionError):  # the client went away: nothing to finish
            async for event in payload:
                if not response.prepared:
                    await response.prepare(request._raw_request)
                if event:
                    await response.write(json.dumps(event).encode() + b'\n')
            await response.write_eof()
        return response

    def _dispatch(self, request: rendering.Request) -> tuple[int, Any]:
        resource, method, name, sub = request.resource, request.method, request.name, request.subresource
        assert resource is not None
        if resource not in self.resources:
            raise api_error(404, f'the server could not find the requested resource ({resource.plural})')
        info = self.resources[resource]
        namespace = request.namespace
        if namespace is not None and not info.namespaced:
            raise api_error(404, f'{resource.plural} is cluster-scoped')
        if sub is not None and sub not in info.subresources:
            raise api_error(404, f'{resource.plural} has no subresource {sub!r}')
        params = request.params
        if 'dryRun' in params:  # fail loudly rather than writing for real
            raise api_error(400, 'dryRun is not supported by the emulator')
        if method == 'GET' and params.get('watch') in ('true', '1'):
            return 200, self._watch(request, resource)
        if method == 'GET' and name is None:
            return 200, self._list(resource, namespace, params)
        if name is None and method != 'POST':
            raise api_error(405, f'{method} is not supported on {request.url.path}')
        key: Key = (resource, namespace, name or '')
        if method == 'GET':
            return 200, self._require(key)
        if method == 'POST':
            return 201, self.create_object(resource, namespace, request.data)
        if method == 'DELETE':
            options = request.data if isinstance(request.data, dict) else {}
            policy = options.get('propagationPolicy') or params.get('propagationPolicy') or 'Background'
            return 200, self.delete_object(key, policy, options.get('preconditions') or {})
        if method == 'PUT':
            if not isinstance(request.data, dict):
                raise api_error(400, 'the request body must be an object')
            if resource.group not in BUILTIN_GROUPS and not request.data.get('metadata', {}).get('resourceVersion'):
                raise api_error(422, 'metadata.resourceVersion: Invalid value: 0x0: must be specified for an update')
            return 200, self.update_object(key, request.data, sub)
        if method == 'PATCH':
            return self._patch(key, request, sub)
        raise api_error(405, f'{method} is not supported')

    def _patch(self, key: Key, request: rendering.Request, sub: str | None) -> tuple[int, Obj]:
        content_type = request.headers.get('Content-Type', '').split(';')[0].strip()
        current = self._current(key)
        applying = content_type == 'application/apply-patch+yaml'
        if current is None and (sub is not None or not applying):  # only apply creates
            raise api_error(404, f'{key[0].plural} "{key[2]}" not found')
        if applying:
            manager = request.params.get('fieldManager')
            force = request.params.get('force', '').lower() in ('1', 't', 'true')  # as Go's ParseBool
            if not manager:
                raise api_error(400, 'fieldManager must be set for apply patches')
            return 201 if current is None else 200, self.apply(key, request.data, manager, force, sub)
        if content_type == 'application/json-patch+json':
            if not isinstance(request.data, list):
                raise api_error(400, 'json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp')
            try:
                patched = jsonpatch.apply_patch(current, request.data)
            except jsonpatch.JsonPatchTestFailed as e:
                raise api_error(422, f'the server rejected our request due to an error in our request: {e}')
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
                raise api_error(422, f'invalid JSON patch: {e}')
        elif content_type == 'application/strategic-merge-patch+json' and key[0].group not in BUILTIN_GROUPS:
            raise api_error(415, 'strategic merge patch is not supported for custom resources')
        elif content_type in ('application/merge-patch+json', 'application/strategic-merge-patch+json'):
            # Strategic merge is approximated as a JSON merge (lists replace, never merge by key).
            patched = merge_patch(current, request.data)
        else:
            raise api_error(415, f'unsupported patch content type {content_type!r}')
        return 200, self.update_object(key, patched, sub)

    # --- object lifecycle (synchronous: runs atomically on the server's loop) ----------------

    def _current(self, key: Key) -> Obj | None:
        stored = self._objects._objects.get(key)
        return None if stored is None or stored.deleted else copy.deepcopy(stored.raw)

    def _peek(self, key: Key) -> Obj | None:
        """The stored object without a copy, for readers that never mutate it (the controllers'
        sweep reads every object after each change: copying them all made it quadratic)."""
        stored = self._objects._objects.get(key)
        return None if stored is None or stored.deleted else stored.raw

    def _require(self, key: Key) -> Obj:
        current = self._current(key)
        if current is None:
            raise api_error(404, f'{key[0].plural} "{key[2]}" not found')
        return current

    def _live(self, resource: kmock.resource | None = None) -> Iterator[tuple[Key, Obj]]:
        """The live objects (of `resource` only, if given)."""
        if resource is None:
            for key, stored in list(self._objects.items()):
                if not stored.deleted:
                    yield key, stored.raw
            return
        for key in list(self._keys_by_resource.get(resource, ())):
            yield key, self._objects._objects[key].raw

    def _commit(self, key: Key, obj: Obj, event: str, old: Obj | None = None) -> Obj:
        """Store a new state (or the removal, for DELETED) under a fresh resourceVersion; publish it."""
        self._rv += 1
        body = copy.deepcopy(obj)
        body['metadata']['resourceVersion'] = str(self._rv)
        if key not in self._objects._objects:
            self._objects[key] = []
        if event == 'DELETED':
            self._objects[key].delete()
        else:
            self._objects[key].create(body)
        self.rbac.observe(*key, None if event == 'DELETED' else body)
        meta = body['metadata']
        if event == 'DELETED':
            self._keys_by_uid.pop(meta.get('uid'), None)
            self._gc_candidates.pop(key, None)
            self._keys_by_resource.get(key[0], {}).pop(key, None)
        else:
            self._keys_by_uid[meta.get('uid')] = key
            self._keys_by_resource.setdefault(key[0], {})[key] = None
            if meta.get('ownerReferences') or meta.get('deletionTimestamp'):
                self._gc_candidates[key] = None
            else:
                self._gc_candidates.pop(key, None)
        if event == 'DELETED' or key in self._gc_candidates:
            self.controllers.kick()
        self._events.append(Event(self._rv, key[0], event, body, old))
        if len(self._events) > self.event_window:
            self._compacted_rv = self._events.pop(0).rv
        self._changed.set()
        self._changed = asyncio.Event()
        return copy.deepcopy(body)

    def create_object(self, resource: kmock.resource, namespace: str | None, body: Any,
                      managed_fields: list[Obj] | None = None) -> Obj:
        if not isinstance(body, dict):
            raise api_error(400, 'the request body must be an object')
        info = self.resources[resource]
        obj = copy.deepcopy(body)
        meta = obj.setdefault('metadata', {})
        if namespace is not None and meta.get('namespace') not in (None, namespace):
            raise api_error(400, 'the namespace of the provided object does not match the namespace sent on the request')
        if meta.get('resourceVersion'):
            raise api_error(400, 'resourceVersion should not be set on objects to be created')
        if not meta.get('name') and meta.get('generateName'):
            meta['name'] = meta['generateName'] + secrets.token_hex(3)[:5]
        name = meta.get('name') or ''
        if resource.group == rbac_module.RBAC_GROUP:
            rbac_module.validate_name(name)
        elif not NAME_RE.fullmatch(name):
            raise api_error(422, f'metadata.name: Invalid value: {name!r}: must be a lowercase RFC 1123 subdomain')
        if info.namespaced:
            if namespace is None:
                raise api_error(405, f'{resource.plural} must be created in a namespace')
            if self._current((self.resource_of('v1', 'Namespace'), None, namespace)) is None:
                raise api_error(404, f'namespaces "{namespace}" not found')
        key: Key = (resource, namespace if info.namespaced else None, name)
        if self._current(key) is not None:
            raise api_error(409, f'{resource.plural} "{name}" already exists', reason='AlreadyExists')
        for field_name in SYSTEM_META:
            meta.pop(field_name, None)
        meta.update(name=name, uid=str(uuid.uuid4()), creationTimestamp=now_iso())
        if info.namespaced:
            meta['namespace'] = namespace
        if resource in self._generation_tracked:
            meta['generation'] = 1
        if 'status' in info.subresources:
            obj.pop('status', None)  # status is written only through /status
        if resource == self.resource_of('v1', 'Namespace'):  # the namespace strategy's PrepareForCreate
            obj['spec'] = {'finalizers': [controllers_module.NAMESPACE_FINALIZER], **(obj.get('spec') or {})}
            obj['status'] = {'phase': 'Active'}
        obj['apiVersion'] = f'{resource.group}/{resource.version}'.lstrip('/')
        obj['kind'] = info.kind
        self._admit_schema(resource, obj)
        meta['managedFields'] = managed_fields if managed_fields is not None else self._managed(resource, None, obj, None)
        self._admit(resource, key[1], obj, None)
        return self._commit(key, obj, 'ADDED')

    def update_object(self, key: Key, new: Obj, sub: str | None = None, managed_fields: list[Obj] | None = None) -> Obj:
        """Replace an object (PUT semantics); the patch and apply paths end here too (an apply
        brings the managedFields it computed; other writes are recorded as Update operations)."""
        old = self._require(key)
        resource, info = key[0], self.resources[key[0]]
        new = copy.deepcopy(new)
        meta = new.setdefault('metadata', {})
        if not isinstance(meta, dict) or meta.get('name') not in (None, key[2]):
            raise api_error(400, f'the name of the object does not match the name on the URL ({key[2]})')
        if meta.get('resourceVersion') not in (None, old['metadata']['resourceVersion']):
            raise api_error(409, f'Operation cannot be fulfilled on {resource.plural} "{key[2]}": '
                                 'the object has been modified; please apply your changes to the latest version and try again')
        if sub == 'status':
            new = dict(old, status=new.get('status'))
            meta = new['metadata'] = copy.deepcopy(old['metadata'])
        elif 'status' in info.subresources:
            new['status'] = old.get('status')
        if new.get('status') is None:
            new.pop('status', None)
        for field_name in SYSTEM_META + ('name', 'namespace'):
            if field_name in old['metadata']:
                meta[field_name] = old['metadata'][field_name]
            else:
                meta.pop(field_name, None)
        new['apiVersion'], new['kind'] = old['apiVersion'], old['kind']
        self._admit_schema(resource, new)
        meta['managedFields'] = managed_fields if managed_fields is not None else self._managed(resource, old, new, sub)
        if resource in self._generation_tracked:
            ignored = ('metadata', 'status') if 'status' in info.subresources else ('metadata',)
            if {k: v for k, v in new.items() if k not in ignored} != {k: v for k, v in old.items() if k not in ignored}:
                meta['generation'] = old['metadata']['generation'] + 1
        if 'deletionTimestamp' in meta and not set(meta.get('finalizers') or []) <= set(old['metadata'].get('finalizers') or []):
            raise api_error(422, 'metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted')
        self._admit(resource, key[1], new, old)
        if new == old:
            return old  # no-op writes neither bump resourceVersion nor emit events
        if 'deletionTimestamp' in meta and not self._pending_finalizers(resource, new):
            return self._remove(key, new)
        return self._commit(key, new, 'MODIFIED', old)

    def _pending_finalizers(self, resource: kmock.resource, obj: Obj) -> bool:
        """Finalizers that keep a deleted object: metadata's, and a namespace's spec.finalizers."""
        spec = obj.get('spec') if resource == self.resource_of('v1', 'Namespace') else None
        return bool(obj['metadata'].get('finalizers') or (spec or {}).get('finalizers'))

    def _admit(self, resource: kmock.resource, namespace: str | None, obj: Obj, old: Obj | None) -> None:
        """Admission and registry checks of a write about to be stored (raise to refuse it)."""
        self.rbac.admit(resource, namespace, obj, old)
        if old is None and namespace is not None:  # NamespaceLifecycle
            ns = self._current((self.resource_of('v1', 'Namespace'), None, namespace)) or {}
            if (ns.get('status') or {}).get('phase') == 'Terminating':
                raise controllers_module.forbidden(
                    resource, obj['metadata']['name'], f'unable to create new content in namespace {namespace} because it is being terminated',
                    [{'reason': 'NamespaceTerminating', 'message': f'namespace {namespace} is being terminated', 'field': 'metadata.namespace'}])
        if resource == self.resource_of('events.k8s.io/v1', 'Event'):
            errors = controllers_module.event_errors(obj, create=old is None)
            if errors:
                raise controllers_module.invalid('Event', 'events.k8s.io', obj['metadata']['name'], errors)

    def apply(self, key: Key, body: Any, manager: str, force: bool, sub: str | None = None) -> Obj:
        """Server-side apply (ssa.py): merged by list/map types, conflicts with other managers'
        fields, fields the manager stopped applying removed."""
        if not isinstance(body, dict) or not body.get('apiVersion') or not body.get('kind'):
            raise api_error(400, 'an apply patch must be an object with apiVersion and kind')
        resource, config = key[0], copy.deepcopy(body)
        schema = self.schema_of(resource)
        unknown: list[str] = []
        if schema is not None:
            schemas.prune(config, schema.node, '', unknown, root=True)
        if unknown and self._field_validation == 'Strict':  # SMD's typed conversion of the patch
            raise api_error(400, f'failed to create typed patch object ({key[1]}/{key[2]}; {resource.group}/{resource.version}, '
                                 f'Kind={self.resources[resource].kind}): ' + ', '.join(f'.{p}: field not declared in schema' for p in unknown))
        if self._field_validation != 'Ignore':
            self._warnings += [f'unknown field "{p}"' for p in unknown]
        current = self._current(key)
        merged, managed = ssa.apply(current or {}, config, schema and schema.node, manager, force, sub,
                                    'status' in self.resources[resource].subresources, now_iso())
        if current is None:
            return self.create_object(resource, key[1], dict(merged, metadata=dict(merged.get('metadata') or {}, name=key[2])), managed)
        return self.update_object(key, merged, sub, managed)

    def _managed(self, resource: kmock.resource, old: Obj | None, new: Obj, sub: str | None) -> list[Obj]:
        schema = self.schema_of(resource)
        return ssa.record_update(old, new, schema and schema.node, self._manager, sub,
                                 'status' in self.resources[resource].subresources, now_iso())

    def delete_object(self, key: Key, policy: str = 'Background', preconditions: Obj | None = None) -> Obj:
        """DELETE: gone now, or marked (deletionTimestamp) while finalizers are pending. `Orphan` and
        `Foreground` add the garbage collector's finalizer; dependents are the controllers' work."""
        current = self._require(key)
        meta = current['metadata']
        for field_name in ('uid', 'resourceVersion'):
            wanted = (preconditions or {}).get(field_name)
            if wanted is not None and wanted != meta[field_name]:
                raise api_error(409, f'Precondition failed: {field_name} in precondition: {wanted}, in object meta: {meta[field_name]}')
        marked = copy.deepcopy(current)
        if key[0] == self.resource_of('v1', 'Namespace'):
            if key[2] in controllers_module.IMMORTAL_NAMESPACES:
                raise controllers_module.forbidden(key[0], key[2], 'this namespace may not be deleted')
            marked['status'] = dict(marked.get('status') or {}, phase='Terminating')  # namespace storage's Delete
        finalizers = list(meta.get('finalizers') or [])
        gc_finalizer = {'Orphan': controllers_module.ORPHAN, 'Foreground': controllers_module.FOREGROUND}.get(policy)
        if gc_finalizer and gc_finalizer not in finalizers:
            finalizers.append(gc_finalizer)
        marked['metadata']['finalizers'] = finalizers
        if not self._pending_finalizers(key[0], marked):
            return self._remove(key, current)
        if 'deletionTimestamp' not in meta:
            # markAsDeleting (registry/generic/registry/store.go): the first mark bumps the generation.
            marked['metadata'].update(deletionTimestamp=now_iso(), deletionGracePeriodSeconds=0)
            if key[0] in self._generation_tracked:
                marked['metadata']['generation'] += 1
        if not finalizers:
            marked['metadata'].pop('finalizers')
        return current if marked == current else self._commit(key, marked, 'MODIFIED', current)

    def _remove(self, key: Key, last: Obj) -> Obj:
        return self._commit(key, last, 'DELETED')

    # The controllers' writes (controllers.py): as their own clients, never refused by RBAC.
    def _set_owner_refs(self, key: Key, refs: list[Obj]) -> None:
        # the refs may be the stored state's own dicts (the controllers read without copying)
        self.update_object(key, merge_patch(self._require(key), {'metadata': {'ownerReferences': copy.deepcopy(refs) or None}}))

    def _remove_finalizer(self, key: Key, finalizer: str) -> None:
        obj = self._require(key)
        remaining = [f for f in obj['metadata'].get('finalizers') or [] if f != finalizer]
        self.update_object(key, merge_patch(obj, {'metadata': {'finalizers': remaining or None}}))

    def _finalize_namespace(self, key: Key) -> None:
        obj = self._require(key)
        remaining = [f for f in obj['spec'].get('finalizers') or [] if f != controllers_module.NAMESPACE_FINALIZER]
        self.update_object(key, merge_patch(obj, {'spec': {'finalizers': remaining or None}}))

    # --- reading: list & watch ---------------------------------------------------------------

    def _selected(self, obj: Obj, resource: kmock.resource, namespace: str | None, params: dict[str, str]) -> bool:
        meta = obj['metadata']
        labels = meta.get('labels') or {}
        return (namespace is None or meta.get('namespace') == namespace) and \
            selector_matches(parse_selector(params.get('labelSelector', '')), labels.get) and \
            selector_matches(parse_selector(params.get('fieldSelector', '')),
                             lambda path: _str_or_none(get_path(obj, tuple(path.split('.')))))

    def _list(self, resource: kmock.resource, namespace: str | None, params: dict[str, str]) -> Obj:
        items = sorted((obj for _, obj in self._live(resource) if self._selected(obj, resource, namespace, params)),
                       key=lambda o: (o['metadata'].get('namespace') or '', o['metadata']['name']))
        after = params.get('continue')
        if after:
            start = json.loads(base64.urlsafe_b64decode(after))
            items = [o for o in items if [o['metadata'].get('namespace') or '', o['metadata']['name']] > start]
        meta: Obj = {'resourceVersion': str(self._rv)}
        limit = int(params.get('limit') or 0)
        if limit and len(items) > limit:
            last = items[limit - 1]['metadata']
            meta['continue'] = base64.urlsafe_b64encode(json.dumps(
                [last.get('namespace') or '', last['name']]).encode()).decode()
            meta['remainingItemCount'] = len(items) - limit
            items = items[:limit]
        kind = self.resources[resource].kind
        return {'apiVersion': f'{resource.group}/{resource.version}'.lstrip('/'), 'kind': f'{kind}List',
                'metadata': meta, 'items': copy.deepcopy(items)}

    async def _watch(self, request: rendering.Request, resource: kmock.resource) -> AsyncIterator[Obj | bytes]:
        params = dict(request.params)
        if request.name is not None:  # the legacy per-object watch URL
            params['fieldSelector'] = ','.join(filter(None, [params.get('fieldSelector'), f'metadata.name={request.name}']))
        self._selected({'metadata': {}}, resource, None, params)  # validate selectors before streaming
        namespace, epoch = request.namespace, self._epoch
        timeout = float(params['timeoutSeconds']) if params.get('timeoutSeconds') else None
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        transport = request._raw_request.transport if request._raw_request is not None else None
        self._watch_transports.add(transport)
        try:
            yield b''  # send the headers now, as the apiserver does, even if no events follow
            since = params.get('resourceVersion')
            initial = params.get('sendInitialEvents') == 'true'
            if not since or since == '0' or initial:
                listed = self._list(resource, namespace, params)
                for obj in listed['items']:
                    yield {'type': 'ADDED', 'object': obj}
                if initial:
                    yield {'type': 'BOOKMARK', 'object': {
                        'kind': self.resources[resource].kind, 'apiVersion': listed['apiVersion'],
                        'metadata': {'resourceVersion': listed['metadata']['resourceVersion'],
                                     'annotations': {'k8s.io/initial-events-end': 'true'}}}}
                since = listed['metadata']['resourceVersion']
            position = int(since)
            while epoch == self._epoch:
                if position < self._compacted_rv:
                    yield {'type': 'ERROR', 'object': status_body(410, 'Expired', f'too old resource version: {position} ({self._compacted_rv})')}
                    return
                changed = self._changed
                for event in self._events[bisect.bisect_right(self._events, position, key=lambda e: e.rv):]:
                    position = event.rv
                    typed = self._event_for(event, resource, namespace, params)
                    if typed is not None:
                        yield typed
                remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
                if remaining is not None and remaining <= 0:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
        finally:
            self._watch_transports.discard(transport)

    def _event_for(self, event: Event, resource: kmock.resource, namespace: str | None, params: dict[str, str]) -> Obj | None:
        """The event as this watcher sees it: objects entering/leaving its selector are ADDED/DELETED."""
        if event.resource != resource:
            return None
        deleted = event.type == 'DELETED'
        previous = event.obj if deleted else event.old  # None for ADDED
        before = previous is not None and self._selected(previous, resource, namespace, params)
        now = not deleted and self._selected(event.obj, resource, namespace, params)
        kind = {(True, True): 'MODIFIED', (False, True): 'ADDED', (True, False): 'DELETED'}.get((before, now))
        return None if kind is None else {'type': kind, 'object': copy.deepcopy(event.obj)}

    def drop_watches(self, abrupt: bool = False) -> None:
        """End all active watch streams: gracefully (EOF) or abruptly (connection reset)."""
        if abrupt:
            for transport in list(self._watch_transports):
                if transport is not None:
                    transport.close()
        self._epoch += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def compact(self) -> None:
        """Forget all past events, as etcd compaction does: resuming older versions gets 410."""
        self._events.clear()
        self._compacted_rv = self._rv

    def release_hung(self) -> None:
        self._released.set()


def _str_or_none(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else json.dumps(value)


def split_path(path: str) -> tuple[str | None, str | None, str | None, str | None, str | None, str | None]:
    """(group, version, plural, namespace, name, subresource) of an API path; group None if not one.

    kmock's own parser crashes on `/api/v1/namespaces` and reads `/api/v1/namespaces/x` as a
    namespace without a resource, so the namespace object's URLs are recognised here.
    """
    parts = [p for p in path.split('/') if p]
    if len(parts) >= 2 and parts[0] == 'api':
        group, version, rest = '', parts[1], parts[2:]
    elif len(parts) >= 2 and parts[0] == 'apis':
        group, version, rest = parts[1], parts[2] if len(parts) > 2 else None, parts[3:]
    else:
        return None, None, None, None, None, None
    namespace = None
    if len(rest) >= 3 and rest[0] == 'namespaces' and rest[2] not in ('status', 'finalize'):
        namespace, rest = rest[1], rest[2:]
    plural = rest[0] if rest else None
    name = rest[1] if len(rest) > 1 else None
    return group, version, plural, namespace, name, '/'.join(rest[2:]) or None


class Cluster:
    """A running emulator, served from its own thread and event loop.

    The own loop keeps the server responsive while a test blocks in the synchronous `kubernetes`
    client, or while kopf runs in the test's loop. The helpers below are safe to call from any
    thread; they run on the server's loop and bypass HTTP (so they are not in the request log).
    """

    def __init__(self, emulator: Emulator, loop: asyncio.AbstractEventLoop, url: str, https_url: str) -> None:
        # `https_url` serves the same API over TLS (certificate: `ca_file`), for client-go clients.
        self.emulator, self.url, self.https_url, self._loop = emulator, url, https_url, loop
        self.ca_file = rbac_module.serving_certificate()[0]

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` atomically on the server's loop; API errors propagate as ApiError."""
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def register(self, api_version: str, plural: str, kind: str, **info: Any) -> kmock.resource:
        """Serve one more resource, e.g. `register('apps/v1', 'deployments', 'Deployment')`."""
        return self.call(lambda: self.emulator.register(api_version, plural, kind, **info))

    def _key(self, resource: str | kmock.resource, name: str, namespace: str | None) -> Key:
        return kmock.resource(resource), namespace, name

    def seed(self, obj: Obj) -> Obj:
        """Create an object (its namespace too, if missing) as if POSTed; return the stored object."""
        def create() -> Obj:
            resource = self.emulator.resource_of(obj['apiVersion'], obj['kind'])
            namespace = (obj.get('metadata') or {}).get('namespace')
            if not self.emulator.resources[resource].namespaced:
                namespace = None
            elif namespace is None:
                namespace = 'default'
            elif self.emulator._current((self.emulator.resource_of('v1', 'Namespace'), None, namespace)) is None:
                self.emulator.create_object(self.emulator.resource_of('v1', 'Namespace'), None, {'metadata': {'name': namespace}})
            return self.emulator.create_object(resource, namespace, obj)
        return self.call(create)

    def get(self, resource: str | kmock.resource, name: str, namespace: str | None = None) -> Obj | None:
        """The current object, e.g. `get('observatory.dev/v1alpha1/alertrules', 'r1', 'default')`."""
        return self.call(self.emulator._current, self._key(resource, name, namespace))

    def list(self, resource: str | kmock.resource, namespace: str | None = None, **params: str) -> list[Obj]:
        return self.call(self.emulator._list, kmock.resource(resource), namespace, params)['items']

    def history(self, resource: str | kmock.resource, name: str, namespace: str | None = None) -> list[Obj | None]:
        """Every stored state of the object, oldest first; None marks a deletion."""
        def read() -> list[Obj | None]:
            return [None if v is None else copy.deepcopy(v.raw)
                    for v in self.emulator.objects[self._key(resource, name, namespace)].history]
        return self.call(read)

    def patch(self, resource: str | kmock.resource, name: str, namespace: str | None, patch: Obj,
              sub: str | None = None) -> Obj:
        """A JSON merge patch, as an outside actor (a user, another controller) would write it;
        `sub='status'` writes the status subresource, as the controller owning a status does."""
        key = self._key(resource, name, namespace)
        return self.call(lambda: self.emulator.update_object(key, merge_patch(self.emulator._require(key), patch), sub))

    def delete(self, resource: str | kmock.resource, name: str, namespace: str | None = None,
               policy: str = 'Background') -> Obj:
        return self.call(self.emulator.delete_object, self._key(resource, name, namespace), policy)

    # Faults. `path` is a regex searched in the URL path; `method` None matches any method.
    def fail(self, method: str | None, path: str, status: int = 500, times: int = 1) -> None:
        """Answer the next `times` matching requests with `status` (no state change happens)."""
        self.emulator.add_fault(Fault(method and method.upper(), re.compile(path), times, status=status))

    def hang(self, method: str | None, path: str, seconds: float = 3600, times: int = 1) -> None:
        """Stall the next matching requests for `seconds` (past any client timeout), then 504."""
        self.emulator.add_fault(Fault(method and method.upper(), re.compile(path), times, hang=seconds))

    def drop_watches(self, abrupt: bool = False) -> None:
        self.call(self.emulator.drop_watches, abrupt)

    def compact(self) -> None:
        self.call(self.emulator.compact)

    def controllers_idle(self) -> bool:
        """The garbage collector and namespace controller have nothing left to do (for now)."""
        return self.call(lambda: self.emulator.controllers.idle)

    # The request log (kmock `Request`s: .method, .url, .resource, .namespace, .name, .subresource).
    @property
    def requests(self) -> list[rendering.Request]:
        return list(self.emulator._requests)

    def clear_requests(self) -> None:
        self.emulator._requests.clear()
        self.emulator._answers.clear()

    def answered(self, request: rendering.Request) -> int | None:
        """The HTTP status the emulator answered a logged request with (None while it is being served)."""
        return self.emulator._answers.get(id(request._raw_request))  # kmock keeps the aiohttp request private

    def write_counts(self) -> collections.Counter[str]:
        """Write requests (POST/PUT/PATCH/DELETE) per resource plural, e.g. `alertrules/status`."""
        return collections.Counter(
            '/'.join(filter(None, [r.resource.plural, r.subresource]))
            for r in self.requests if r.method in WRITE_METHODS and r.resource is not None)

    def wait(self, predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
        """`until` for blocking tests: poll `predicate` until truthy; its result."""
        deadline = time.monotonic() + timeout
        while not (result := predicate()):
            if time.monotonic() > deadline:
                raise TimeoutError(f'condition not met within {timeout}s: {predicate}')
            time.sleep(0.02)
        return result

    async def until(self, predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
        """Poll `predicate` without blocking the caller's loop (kopf may run in it); its truthy result.
        The timeout only bounds a hang: on a loaded machine a reconcile can take seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not (result := predicate()):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f'condition not met within {timeout}s: {predicate}')
            await asyncio.sleep(0.02)
        return result

    def request(self, method: str, path: str, body: Obj | None = None, identity: Identity | None = rbac_module.ADMIN,
                headers: dict[str, str] | None = None) -> tuple[int, Obj]:
        """One blocking HTTP request as `identity` (None: no credentials): its status and decoded body."""
        headers = {**({'Content-Type': 'application/json'} if body is not None else {}), **(headers or {})}
        if identity is not None:
            headers['Authorization'] = f'Bearer {self.token(identity)}'
        request = urllib.request.Request(self.url + path, method=method, headers=headers,
                                         data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b'{}')
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    # Clients. Each authenticates as `identity` (a bearer token the emulator knows); the default is
    # the operator's ServiceAccount with the RBAC charts/observatory grants; `rbac.ADMIN` for setup.
    def token(self, identity: Identity = rbac_module.OPERATOR) -> str:
        return self.call(self.emulator.rbac.token_for, identity)

    def api_client(self, identity: Identity = rbac_module.OPERATOR) -> Any:
        """An official `kubernetes.client.ApiClient` pointed at the emulator (close it after use)."""
        import kubernetes.client
        return kubernetes.client.ApiClient(kubernetes.client.Configuration(
            host=self.url, api_key={'authorization': self.token(identity)}, api_key_prefix={'authorization': 'Bearer'}))

    def kopf_connection(self, identity: Identity = rbac_module.OPERATOR) -> Any:
        import kopf
        return kopf.ConnectionInfo(server=self.url, default_namespace='default', scheme='Bearer', token=self.token(identity))


@contextlib.contextmanager
def running_cluster(emulator_class: type[Emulator] | None = None, **options: Any) -> Iterator[Cluster]:
    """Serve a fresh `Emulator(**options)` (or a subclass) on 127.0.0.1 (random port) in a background thread.

    On exit, any exception the emulator itself raised while serving fails the caller.
    """
    started: dict[str, Any] = {}
    ready = threading.Event()

    async def serve() -> None:
        emulator = (emulator_class or Emulator)(**options)
        stop = asyncio.Event()
        # handler_cancellation: a client disconnect cancels the handler, ending its watch stream.
        runner = aiohttp.web.ServerRunner(aiohttp.web.Server(emulator, handler_cancellation=True))
        await runner.setup()
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(*rbac_module.serving_certificate())
        for site in (aiohttp.web.TCPSite(runner, '127.0.0.1', 0), aiohttp.web.TCPSite(runner, '127.0.0.1', 0, ssl_context=tls)):
            await site.start()
        (host, port), (_, tls_port) = (address[:2] for address in runner.addresses)
        async with emulator:
            started.update(cluster=Cluster(emulator, asyncio.get_running_loop(), f'http://{host}:{port}',
                                           f'https://{host}:{tls_port}'), stop=stop)
            ready.set()
            await stop.wait()
            emulator.release_hung()
            emulator.drop_watches()
            await runner.cleanup()

    def main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as e:
            started['error'] = e
            ready.set()

    thread = threading.Thread(target=main, name='k8s-emulator', daemon=True)
    thread.start()
    # `ready` is set on start and on failure; the bound only catches a hang (start takes >10 s at load 10).
    ready.wait(300)
    if 'cluster' not in started:
        raise RuntimeError('the emulator did not start') from started.get('error')
    cluster: Cluster = started['cluster']
    try:
        yield cluster
    finally:
        cluster._loop.call_soon_threadsafe(started['stop'].set)
        thread.join(10)
    errors = cluster.emulator.internal_errors + ([started['error']] if 'error' in started else [])
    if errors:
        raise ExceptionGroup('the emulator failed while serving', errors)


@contextlib.asynccontextmanager
async def cluster_context(**options: Any) -> AsyncIterator[Cluster]:
    """`running_cluster` for async tests and fixtures; starting/stopping does not block the loop."""
    manager = running_cluster(**options)
    cluster = await asyncio.to_thread(manager.__enter__)
    try:
        yield cluster
    except BaseException as e:
        if not await asyncio.to_thread(manager.__exit__, type(e), e, e.__traceback__):
            raise
    else:
        await asyncio.to_thread(manager.__exit__, None, None, None)


def kopf_settings() -> Any:
    """kopf settings for tests: no k8s-event posting, short timeouts, quick shutdown."""
    import kopf
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False
    settings.networking.request_timeout = 5
    settings.watching.connect_timeout = 2
    settings.queueing.exit_timeout = 1
    return settings


@contextlib.asynccontextmanager
async def kopf_operator(cluster: Cluster, registry: Any, *, settings: Any = None,
                        namespaces: tuple[str, ...] = ('default',), clusterwide: bool = False,
                        peering_name: str | None = None, priority: int = 0, identity: str | None = None,
                        user: Identity = rbac_module.OPERATOR) -> AsyncIterator[None]:
    """Run a kopf operator in the current loop against `cluster`, authenticated as `user`, until the
    block exits; with `peering_name`, as one of several peers `identity` (kopf pauses a peer while
    one of higher priority lives)."""
    import kopf
    from kopf._cogs.structs.credentials import (
        Vault,  # pre-filled credentials: no login handler
    )

    stop, ready = asyncio.Event(), asyncio.Event()
    existing = asyncio.all_tasks()
    tasks = await kopf.spawn_tasks(
        registry=registry, settings=settings or kopf_settings(), standalone=peering_name is None,
        peering_name=peering_name, priority=priority, identity=identity,
        clusterwide=clusterwide, namespaces=() if clusterwide else namespaces,
        stop_flag=stop, ready_flag=ready, vault=Vault({'k8s-emulator': cluster.kopf_connection(user)}))
    runner = asyncio.create_task(kopf.run_tasks(tasks, ignored=existing))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        yield
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)
