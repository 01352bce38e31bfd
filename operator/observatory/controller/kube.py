"""The Kubernetes adapter: the only code of the operator loop that calls the API.

Generated objects are written with server-side apply under one field manager and carry an owner
reference to the resource they come from, so deleting the resource deletes them (the garbage
collector does it). Writes are skipped when the live object already holds what would be applied:
an operator restart re-reconciles everything without writing anything.

Every call is declared against `observatory.rbac.REQUIRED_PERMISSIONS` (or, for an adapter acting
as a stack's installer, `INSTALLER_PERMISSIONS`) before it is made, so a call the Helm chart does
not grant fails the tests instead of failing with 403 in a cluster.
"""

from __future__ import annotations

import collections
import copy
import datetime
import functools
import hashlib
import json
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..compile.rules import owner_labels
from ..conventions import Conventions
from ..models.common import GROUP, VERSION
from ..rbac import REQUIRED_PERMISSIONS, Permission, permission_for

FIELD_MANAGER = "observatory"
# Hash of the labels and spec last applied: tells "unchanged" from "a field was dropped", which a
# subset comparison cannot see (and the apiserver may add defaulted fields, so equality cannot either).
APPLIED_HASH_ANNOTATION = "observatory.dev/applied-hash"
REPORTING_CONTROLLER = "observatory.dev/operator"
# Kinds the compile core generates: (group, version, plural).
GENERATED = {
    "PrometheusRule": ("monitoring.coreos.com", "v1", "prometheusrules"),
    "AlertmanagerConfig": ("monitoring.coreos.com", "v1alpha1", "alertmanagerconfigs"),
}
# Answers worth retrying: conflicts, throttling, server errors and timeouts (0 = no answer at all).
TRANSIENT_CODES = frozenset({0, 409, 429, 500, 502, 503, 504})
# Read-modify-write rounds of a shared object before a conflict is left to the reconcile's retry.
SHARED_WRITE_ATTEMPTS = 4
# events.k8s.io/v1 `note` is limited to 1 KiB of UTF-8 (k8s pkg/apis/core/validation/events.go).
EVENT_NOTE_BYTES = 1024

log = logging.getLogger(__name__)


class ApiProblem(Exception):
    """An API call failed. `transient` ones are retried with backoff; others need a human."""

    def __init__(self, code: int, message: str):
        self.code, self.message = code, message
        super().__init__(f"{code or 'no answer'}: {message}")

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES


@dataclass(frozen=True)
class Owner:
    """The custom resource generated objects belong to."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def reference(self, controller: bool = True) -> dict[str, Any]:
        ref = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name, "uid": self.uid}
        if controller:
            ref.update(controller=True, blockOwnerDeletion=True)
        return ref


@dataclass(frozen=True)
class Sync:
    """What a sync wrote: objects applied (created or changed) and deleted, as `Kind/name`; and
    the desired objects as they are now (their status tells whether prometheus-operator took them)."""

    applied: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    live: tuple[dict[str, Any], ...] = ()


@functools.cache
def _declared(group: str, resource: str, verb: str, name: str | None, permissions: tuple[Permission, ...]) -> None:
    permission_for(group, resource, verb, name, permissions)  # raises UndeclaredPermission


def applied_hash(obj: Mapping[str, Any]) -> str:
    owned = {"labels": obj["metadata"].get("labels") or {}, "spec": obj.get("spec")}
    return hashlib.sha256(json.dumps(owned, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:20]


def contains(live: Any, desired: Any) -> bool:
    """Whether `live` holds every field of `desired` with the same value (extra live fields allowed)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(contains(live.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(map(contains, live, desired))
    return live == desired


def _key(obj: Mapping[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


class Kube:
    def __init__(self, api_client: client.ApiClient, conventions: Conventions, *, timeout: float = 10.0,
                 instance: str = "observatory"):
        self._api_client = api_client
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._conventions = conventions
        self._timeout = timeout
        self._instance = instance
        # Shared objects are read-modify-written; serialising per namespace avoids self-inflicted 409s.
        self._shared_locks: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()
        # Who the calls run as (an Impersonate-User, None: the operator itself) and what they may do.
        self._impersonate: str | None = None
        self._permissions = REQUIRED_PERMISSIONS

    def _call(self, group: str, resource: str, verb: str, fn: Callable[..., Any], *args: Any,
              named: str | None = None, **kwargs: Any) -> Any:
        """One API call; `named` is the object's name where the permission is limited to names."""
        _declared(group, resource, verb, named, self._permissions)
        if self._impersonate is not None:
            kwargs["_headers"] = {"Impersonate-User": self._impersonate}
        try:
            return fn(*args, _request_timeout=self._timeout, **kwargs)
        except ApiException as e:
            raise ApiProblem(e.status or 0, _message(e)) from None
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise ApiProblem(0, f"{type(e).__name__} talking to the API server") from None

    def _send(self, method: str, path: str, body: Any = None, *, query: Mapping[str, str] | None = None,
              content_type: str = "application/json", _request_timeout: float,
              _headers: Mapping[str, str] | None = None) -> Any:
        """A request to `path` with the client's server, credentials and connection pool, minus its
        generated methods' per-call work: pydantic's argument validation, a walk of the body through
        `sanitize_for_serialization` (ours is JSON already: the client's `json.dumps` sends it) and
        one of the answer — a sixth of the operator's CPU in a burst (py-spy). Errors raise the
        client's `ApiException`, as the generated methods do. Call it through `_call`."""
        headers = {"Accept": "application/json", "Content-Type": content_type, **(_headers or {})}
        method, url, headers, _, _ = self._api_client.param_serialize(
            method, path, query_params=list((query or {}).items()) or None, header_params=headers,
            auth_settings=["BearerToken"])
        response = self._api_client.call_api(method, url, headers, body, _request_timeout=_request_timeout)
        data = response.read()
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=data.decode("utf-8", "replace"), data=None)
        try:  # every request made here answers the object or list (an apiserver always sends one)
            return json.loads(data)
        except ValueError:
            raise ApiProblem(0, f"{method} {path} answered {response.status} without a JSON body") from None

    # --- generated objects -----------------------------------------------------------------------

    def _list(self, kind: str, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        group, version, plural = GENERATED[kind]
        answer = self._call(group, plural, "list", self._send, "GET", _path(group, version, namespace, plural),
                            query={"labelSelector": _selector(labels)})
        return [dict(item, kind=kind) for item in answer.get("items") or []]

    def _create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """POST: fails with 409 AlreadyExists when another writer created the object meanwhile."""
        group, version, plural = GENERATED[obj["kind"]]
        return dict(self._call(group, plural, "create", self._send, "POST",
                               _path(group, version, obj["metadata"]["namespace"], plural), obj,
                               query={"fieldManager": FIELD_MANAGER}), kind=obj["kind"])

    def _replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT with the resourceVersion read: fails with 409 Conflict when the object changed since."""
        group, version, plural = GENERATED[obj["kind"]]
        meta = obj["metadata"]
        return dict(self._call(group, plural, "update", self._send, "PUT",
                               _path(group, version, meta["namespace"], plural, meta["name"]), obj,
                               query={"fieldManager": FIELD_MANAGER}), kind=obj["kind"])

    def _apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        group, version, plural = GENERATED[obj["kind"]]
        meta = obj["metadata"]
        answer = self._call(group, plural, "patch", self._send, "PATCH",
                            _path(group, version, meta["namespace"], plural, meta["name"]), obj,
                            query={"fieldManager": FIELD_MANAGER, "force": "true"},
                            content_type="application/apply-patch+yaml")  # JSON is YAML
        return dict(answer, kind=obj["kind"])

    def _delete(self, obj: Mapping[str, Any], *, unchanged: bool = False) -> None:
        """The uid precondition never deletes a same-named object created meanwhile; `unchanged`
        also refuses (409) when another writer changed the object since it was read."""
        group, version, plural = GENERATED[obj["kind"]]
        meta = obj["metadata"]
        preconditions = {"uid": meta["uid"], **({"resourceVersion": meta["resourceVersion"]} if unchanged else {})}
        try:
            self._call(group, plural, "delete", self._custom.delete_namespaced_custom_object,
                       group, version, meta["namespace"], plural, meta["name"], body={"preconditions": preconditions})
        except ApiProblem as e:
            if e.code != 404:
                raise

    def _get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        group, version, plural = GENERATED[kind]
        try:
            obj = self._call(group, plural, "get", self._send, "GET", _path(group, version, namespace, plural, name))
        except ApiProblem as e:
            if e.code == 404:
                return None
            raise
        return dict(obj, kind=kind)

    def _find(self, namespace: str, labels: Mapping[str, str], names: Iterable[tuple[str, str]] | None) -> list[dict[str, Any]]:
        """Live objects: by name (cheap, one GET each) or, with `names` None, every one with `labels`."""
        if names is None:
            return [o for kind in GENERATED for o in self._list(kind, namespace, labels)]
        return self._get_named(namespace, names)

    def _get_named(self, namespace: str, names: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
        return [o for kind, name in sorted(set(names)) if (o := self._get(kind, namespace, name)) is not None]

    def sync_owned(self, owner: Owner, desired: Iterable[Mapping[str, Any]],
                   previous: Iterable[tuple[str, str]] | None = None, *, unseen: bool = False) -> Sync:
        """Make the owner's generated objects exactly `desired`: apply what differs, delete the rest.

        `previous` names (kind, name) what the owner had before (from its status): only those and
        the desired ones are read. With None, every object carrying the owner labels is listed,
        which also finds what a status never recorded. Either way an object counts as the owner's
        only if `owner` is its controller: one a deleted namesake left for the garbage collector is not.
        `unseen` (the owner never reported a status, so it has most likely no objects yet) applies
        without reading: applying what is already there changes nothing, and the resync's listing
        finds anything left over.
        """
        desired = list(desired)
        names = None if previous is None else [*previous, *((o["kind"], o["metadata"]["name"]) for o in desired)]
        if unseen and previous is not None:
            names = []
        labels = owner_labels(self._conventions, owner.kind, owner.name)
        live = {_key(o): o for o in self._find(owner.namespace, labels, names)
                if any(r.get("uid") == owner.uid and r.get("controller") for r in o["metadata"].get("ownerReferences") or [])}
        applied, wanted, now = [], set(), []
        for obj in desired:
            body = self._body(obj, [owner.reference()])
            wanted.add(_key(body))
            if _up_to_date(live.get(_key(body)), body):
                now.append(live[_key(body)])
            else:
                now.append(self._apply(body))
                applied.append(_key(body))
        deleted = []
        for key, obj in sorted(live.items()):
            if key not in wanted:
                self._delete(obj)
                deleted.append(key)
        return Sync(tuple(applied), tuple(deleted), tuple(now))

    def _body(self, obj: Mapping[str, Any], refs: list[dict[str, Any]]) -> dict[str, Any]:
        body = copy.deepcopy(dict(obj))
        meta = body["metadata"]
        meta["ownerReferences"] = refs
        meta["annotations"] = {**(meta.get("annotations") or {}), APPLIED_HASH_ANNOTATION: applied_hash(body)}
        return body

    def sync_shared(self, owner: Owner, namespace: str, desired: Iterable[Mapping[str, Any]],
                    names: Iterable[tuple[str, str]]) -> Sync:
        """Objects several resources need (the price catalogue, the SLO windows, the SLOs' rules):
        each needing one is an owner (not the controller), so the garbage collector removes the
        object with its last owner.

        `owner` is added to the owners of `desired` and removed from the other objects `names`
        (kind, name) in `namespace`, which are deleted when no owner is left.
        """
        desired, names = list(desired), list(names)
        with self._locks_guard:
            lock = self._shared_locks[namespace]
        with lock:
            # Every write is conditional on what was read; a conflict (another replica wrote
            # meanwhile) is resolved by reading again, a few times before giving up for a retry.
            conflicts = 0
            while True:
                try:
                    return self._sync_shared(owner, namespace, desired, names)
                except ApiProblem as e:
                    conflicts += 1
                    if e.code != 409 or conflicts == SHARED_WRITE_ATTEMPTS:
                        raise

    def _sync_shared(self, owner: Owner, namespace: str, desired: list[Mapping[str, Any]],
                     names: list[tuple[str, str]]) -> Sync:
        live = {_key(o): o for o in self._get_named(namespace, [*names, *((o["kind"], o["metadata"]["name"]) for o in desired)])}
        applied, deleted, wanted, now = [], [], set(), []
        for obj in desired:
            key = _key(obj)
            wanted.add(key)
            current = live.get(key)
            refs = [r for r in (current or {}).get("metadata", {}).get("ownerReferences") or [] if r.get("uid") != owner.uid]
            refs.append(owner.reference(controller=False))
            written = self._write_shared(obj, current, refs)
            if written is not None:
                applied.append(key)
            now.append(written or current)
        for key, current in sorted(live.items()):
            refs = current["metadata"].get("ownerReferences") or []
            if key in wanted or any(r.get("controller") for r in refs):  # not shared: someone's own
                continue
            remaining = [r for r in refs if r.get("uid") != owner.uid]
            if remaining:
                if self._write_shared(_declared_of(current), current, remaining) is not None:
                    applied.append(key)
            elif refs:  # the owner was the last
                self._delete(current, unchanged=True)
                deleted.append(key)
        return Sync(tuple(applied), tuple(deleted), tuple(now))

    def list_shared(self, namespace: str) -> list[dict[str, Any]]:
        """The PrometheusRules `namespace` shares among its resources (price catalogue, SLO objects)."""
        return self._list("PrometheusRule", namespace, owner_labels(self._conventions, "Namespace", namespace))

    def get_shared(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get("PrometheusRule", namespace, name)

    def write_shared(self, obj: Mapping[str, Any], current: Mapping[str, Any] | None, refs: list[dict[str, Any]],
                     digest: str) -> dict[str, Any]:
        """Create `obj` (409 if it exists meanwhile) or replace `current` at its resourceVersion (409
        if it changed since), owned by `refs`; `digest` stands for its labels and spec."""
        body = copy.deepcopy(dict(obj))
        meta = body["metadata"]
        meta["ownerReferences"] = refs
        meta["annotations"] = {**(meta.get("annotations") or {}), APPLIED_HASH_ANNOTATION: digest}
        if current is None:
            return self._create(body)
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self._replace(body)

    def delete_shared(self, obj: Mapping[str, Any]) -> None:
        self._delete(obj, unchanged=True)

    def _write_shared(self, obj: Mapping[str, Any], current: Mapping[str, Any] | None,
                      refs: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The object as written, or None when `current` already holds it."""
        body = self._body(obj, refs)
        if current is None:
            return self._create(body)
        if _up_to_date(current, body):
            return None
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self._replace(body)

    # --- the custom resources ---------------------------------------------------------------------

    def patch_status(self, plural: str, namespace: str, name: str, status: Mapping[str, Any],
                     *before: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the status stanza, whichever of `before` it holds (keys no longer reported are
        removed, at any depth); the resource as written."""
        patch = _merge_patch(functools.reduce(_union, before, {}), status)
        return self._call(GROUP, f"{plural}/status", "patch", self._send, "PATCH",
                   _path(GROUP, VERSION, namespace, plural, name, "status"), {"status": patch},
                   content_type="application/merge-patch+json")

    def get_resource(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One of our custom resources as it is now; None when it is gone."""
        try:
            return self._call(GROUP, plural, "get", self._send, "GET", _path(GROUP, VERSION, namespace, plural, name))
        except ApiProblem as e:
            if e.code == 404:
                return None
            raise

    def peering_status(self, name: str, namespace: str | None) -> dict[str, Any] | None:
        """The peers kopf records in its peering object (ClusterKopfPeering, or KopfPeering in `namespace`)."""
        try:
            if namespace is None:
                obj = self._call("kopf.dev", "clusterkopfpeerings", "get", self._custom.get_cluster_custom_object,
                                 "kopf.dev", "v1", "clusterkopfpeerings", name)
            else:
                obj = self._call("kopf.dev", "kopfpeerings", "get", self._custom.get_namespaced_custom_object,
                                 "kopf.dev", "v1", namespace, "kopfpeerings", name)
        except ApiProblem as e:
            if e.code == 404:
                return None
            raise
        return obj.get("status")

    def list_resources(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        """Our custom resources of a kind in `namespace`, as they are now."""
        answer = self._call(GROUP, plural, "list", self._send, "GET", _path(GROUP, VERSION, namespace, plural))
        return list(answer.get("items") or [])

    def post_event(self, owner: Owner, type_: str, reason: str, note: str) -> None:
        """An events.k8s.io/v1 Event about `owner`. Best effort: a lost event must not fail a reconcile."""
        now = datetime.datetime.now(datetime.UTC)
        body = {
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"generateName": f"{owner.name}.", "namespace": owner.namespace},
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingController": REPORTING_CONTROLLER, "reportingInstance": self._instance,
            "action": "Reconcile", "reason": reason, "type": type_, "note": _truncate_utf8(note, EVENT_NOTE_BYTES),
            "regarding": {"apiVersion": owner.api_version, "kind": owner.kind, "namespace": owner.namespace,
                          "name": owner.name, "uid": owner.uid},
        }
        try:
            self._call("events.k8s.io", "events", "create", self._send, "POST",
                       _path("events.k8s.io", "v1", owner.namespace, "events"), body)
        except ApiProblem as e:
            log.warning("could not post event %s for %s/%s: %s", reason, owner.namespace, owner.name, e)

    # --- what loads the rules ---------------------------------------------------------------------

    def list_prometheuses(self) -> list[dict[str, Any]]:
        """Every prometheus-operator Prometheus; none when prometheus-operator is not installed."""
        try:
            answer = self._call("monitoring.coreos.com", "prometheuses", "list",
                                self._custom.list_cluster_custom_object, "monitoring.coreos.com", "v1", "prometheuses")
        except ApiProblem as e:
            if e.code == 404:  # the CRD is not installed
                return []
            raise
        return list(answer.get("items") or [])

    def namespace_labels(self, name: str) -> dict[str, str]:
        namespace = self._call("", "namespaces", "get", self._core.read_namespace, name)
        return dict(namespace.metadata.labels or {})


def _path(group: str, version: str, namespace: str, plural: str, *name_and_subresource: str) -> str:
    """The URL path of a namespaced resource collection, or of an object (and its subresource) in it."""
    parts = [namespace, plural, *name_and_subresource]
    return f"/apis/{group}/{version}/namespaces/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)


def _up_to_date(live: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
    if live is None:
        return False
    meta, want = live["metadata"], body["metadata"]
    return ((meta.get("annotations") or {}).get(APPLIED_HASH_ANNOTATION) == want["annotations"][APPLIED_HASH_ANNOTATION]
            and contains(live.get("spec"), body.get("spec"))
            and contains(meta.get("labels") or {}, want.get("labels") or {})
            and sorted(map(_ref_key, meta.get("ownerReferences") or [])) == sorted(map(_ref_key, want["ownerReferences"])))


def _merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch turning `old` into `new`: a merge patch merges nested objects (RFC 7386),
    so a key gone from one (status.endpoints.phoenixUI) is nulled there, not only at the top."""
    patch: dict[str, Any] = {k: None for k in old if k not in new}
    for key, value in new.items():
        before = old.get(key)
        patch[key] = _merge_patch(before, value) if isinstance(value, dict) and isinstance(before, dict) else value
    return patch


def _union(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Every key of `a` and `b` at any depth: what a merge patch must null to remove from either."""
    merged = dict(a)
    for key, value in b.items():
        merged[key] = _union(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


class StatusWrites:
    """The status each resource's last write in this process left, with the resourceVersion the
    write gave it. kopf hands a handler the latest event it has, which can predate that write (its
    own event still on the way): `held` is what the resource holds now, for a status to be computed
    from and to replace, keys included."""

    def __init__(self) -> None:
        self._left: dict[str, tuple[str | None, Mapping[str, Any]]] = {}
        self._lock = threading.Lock()

    def held(self, uid: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """The body's status, unless the body is older than this process's last write of it."""
        with self._lock:
            left = self._left.get(uid)
        if left is not None and _older(body["metadata"].get("resourceVersion"), left[0]):
            return left[1]
        return body.get("status") or {}

    def write(self, kube: Kube, plural: str, owner: Owner, status: Mapping[str, Any],
              held: Mapping[str, Any]) -> bool:
        """Write `status` unless the resource holds it already; whether it wrote."""
        if status == held:
            return False
        with self._lock:
            left = self._left.pop(owner.uid, None)  # a write that fails may have landed: the body decides
        answer = kube.patch_status(plural, owner.namespace, owner.name, status, held, *([left[1]] if left else []))
        with self._lock:
            self._left[owner.uid] = ((answer or {}).get("metadata", {}).get("resourceVersion"), status)
        return True

    def forget(self, uid: str) -> None:
        with self._lock:
            self._left.pop(uid, None)


def _older(version: str | None, than: str | None) -> bool:
    """Whether resourceVersion `version` predates `than`. The apiserver's are etcd revisions, which
    increase, but API conventions call them opaque: a version that is no integer trusts the body."""
    try:
        return int(version) < int(than)
    except (TypeError, ValueError):
        return False


def _truncate_utf8(text: str, limit: int) -> str:
    """`text` within `limit` bytes of UTF-8, cut on a character boundary and marked with an ellipsis."""
    if len(text.encode()) <= limit:
        return text
    ellipsis = "…"
    return text.encode()[:limit - len(ellipsis.encode())].decode(errors="ignore") + ellipsis


def _declared_of(live: Mapping[str, Any]) -> dict[str, Any]:
    """What Observatory declares of a live object: the rest is the API server's."""
    meta = live["metadata"]
    return {"apiVersion": live["apiVersion"], "kind": live["kind"], "spec": live["spec"],
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": meta.get("labels") or {}}}


def _ref_key(ref: Mapping[str, Any]) -> tuple:
    return (ref.get("uid"), bool(ref.get("controller")), bool(ref.get("blockOwnerDeletion")))


def _message(e: ApiException) -> str:
    try:
        return json.loads(e.body)["message"]
    except (TypeError, ValueError, KeyError):
        return str(e.reason or "")
