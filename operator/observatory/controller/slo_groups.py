"""The SLOs' shared objects, each written whole from kopf's index of all the SLOs that need it.

kopf calls `index_entry` for every watch event of an SLO before any handler of the event runs,
and drops an SLO from the index when it is deleted (kopf/_core/engines/indexing.py
`index_resource`: DELETED discards; a failing index function would discard too, so this one never
raises). An SLO is indexed under its group (namespace, period, shard) and its windows (namespace,
period) with its rules rendered once per generation; an invalid one under ("invalid", namespace),
so that the groups keep its last good rules. Writing a group joins its members' rules
(`compile.slo_groups.slo_group`, as `observatory render` does), so two SLOs changed at once
converge: writes of a namespace take turns, and each computes from the index as it is then.

The objects of a namespace are listed once (when the operator first writes there, and by every
resync), then known from the answers to its own writes: a reconcile reads nothing before it
writes. Every write is conditional on the resourceVersion known; a conflict (the garbage
collector dropped an owner, another writer) is resolved by reading that object again.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..compile import CompileError, CompileOptions, contribution
from ..compile.slo_groups import (
    Group,
    Member,
    group_key,
    group_name,
    recovered,
    slo_group,
    windows_objects,
)
from ..models import parse_resource
from ..models.slo import SLO
from .kube import (
    APPLIED_HASH_ANNOTATION,
    SHARED_WRITE_ATTEMPTS,
    ApiProblem,
    Kube,
    applied_hash,
    contains,
)

log = logging.getLogger(__name__)

Key = tuple[str, ...]  # ("slos", namespace, period, shard) | ("windows", namespace, period) | ("invalid", namespace)
SLO_API_VERSION = "observatory.dev/v1alpha1"


@dataclass(frozen=True)
class Compiled:
    """An SLO as the index and its reconcile see it."""

    resource: SLO
    owned: list[dict[str, Any]]  # its AlertmanagerConfig, with routing
    member: Member


@dataclass(frozen=True)
class Written:
    """What a sync of an SLO's objects wrote, the live objects it is in, and whether its group is full."""

    applied: tuple[str, ...]
    deleted: tuple[str, ...]
    live: tuple[dict[str, Any], ...]
    full: CompileError | None
    moved: tuple[str, ...]  # other SLOs this write admitted to their full group, or left out of it


class SloGroups:
    def __init__(self, kube: Kube, options: CompileOptions):
        self._kube = kube
        self._options = options
        self._index: Mapping[Key, Iterable[Any]] | None = None
        # uid -> (generation, what it compiled to or its error): rendered once per change of the SLO.
        self._compiled: dict[str, tuple[Any, Compiled | CompileError]] = {}
        # namespace -> name -> the live object, for the namespaces listed (None: not yet).
        self._live: dict[str, dict[str, dict[str, Any]]] = {}
        # (namespace, object name) -> the key it is written for: tells an object no SLO needs.
        self._keys: dict[tuple[str, str], Key] = {}
        self._windows: dict[tuple[str, str], list[dict[str, Any]]] = {}
        # key -> uids its last write left out: their status says so until they are let in.
        self._left_out: dict[Key, set[str]] = {}
        # SLOs gone whose deletion kopf missed, so that its index still holds them (see `resync`).
        self._gone: set[str] = set()
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)

    # --- the index ----------------------------------------------------------------------------------

    def bind(self, index: Mapping[Key, Iterable[Any]]) -> None:
        """kopf's index (the same live object in every handler): bound once kopf runs handlers,
        which it does only after every index has its first full listing."""
        self._index = index

    @property
    def bound(self) -> bool:
        return self._index is not None

    def index_entry(self, body: Mapping[str, Any]) -> dict[Key, Any]:
        meta = body["metadata"]
        try:
            compiled = self.compile(body)
        except CompileError:
            return {("invalid", meta["namespace"]): meta["uid"]}
        slo = compiled.resource
        group = ("slos", *group_key(slo))
        windows = ("windows", slo.namespace, slo.spec.window)
        with self._guard:
            self._keys[(slo.namespace, group_name(group[1:], self._options.conventions))] = group
            for obj in self._windows_of(slo.namespace, slo.spec.window):
                self._keys[(slo.namespace, obj["metadata"]["name"])] = windows
        return {group: compiled.member, windows: compiled.member}

    def compile(self, body: Mapping[str, Any]) -> Compiled:
        """The SLO compiled, once per generation; raises CompileError naming the field."""
        meta = body["metadata"]
        uid, generation = meta["uid"], meta.get("generation")
        with self._guard:
            cached = self._compiled.get(uid)
        if cached is None or generation is None or cached[0] != generation:
            try:
                resource = parse_resource({k: v for k, v in body.items() if k != "status"})
                owned, member = contribution(resource, self._options, uid=uid, created=meta.get("creationTimestamp") or "")
                cached = (generation, Compiled(resource, owned, member))
            except CompileError as err:
                cached = (generation, err)
            with self._guard:
                self._compiled[uid] = cached
        if isinstance(cached[1], CompileError):
            raise cached[1]
        return cached[1]

    def forget(self, uid: str) -> None:
        with self._guard:
            self._compiled.pop(uid, None)

    def _members(self, key: Key) -> list[Any]:
        # A copy: kopf changes the index on its event loop while handlers read it in threads.
        members = list(self._index.get(key) or ()) if self._index is not None else []
        return [m for m in members if (m if isinstance(m, str) else m.uid) not in self._gone]

    def indexed(self, namespace: str) -> set[str]:
        """The uids of the SLOs of `namespace` in the index."""
        keys = [k for k in list(self._index or ()) if k[1] == namespace]
        return {m if isinstance(m, str) else m.uid for k in keys for m in self._members(k)}

    def _windows_of(self, namespace: str, period: str) -> list[dict[str, Any]]:
        if (namespace, period) not in self._windows:  # the same for every SLO of the period
            self._windows[(namespace, period)] = windows_objects(namespace, period, self._options.conventions)
        return self._windows[(namespace, period)]

    # --- writing -------------------------------------------------------------------------------------

    def sync(self, namespace: str, uid: str, keys: Iterable[Key] = ()) -> Written:
        """Write whole the objects of `keys` and every other one `uid` is an owner of."""
        with self._guard:
            lock = self._locks[namespace]
        with lock:
            live = self._load(namespace)
            names = {self._key_of(namespace, name) for name, obj in live.items() if uid in _owners(obj)}
            applied, deleted, full, moved = [], [], None, set()
            for key in sorted({*keys, *names}):
                group, flipped = self._sync_key(namespace, key, applied, deleted)
                if group is not None and any(m.uid == uid for m in group.left_out):
                    full = group.error()
                moved |= {m.name for m in flipped if m.uid != uid}
            mine = tuple(obj for _, obj in sorted(live.items()) if uid in _owners(obj))
            return Written(tuple(applied), tuple(deleted), mine, full, tuple(sorted(moved)))

    def resync(self, namespace: str, listed: Iterable[Mapping[str, Any]], gone: Iterable[str] = ()) -> None:
        """Take `listed` (the namespace's shared objects, as `Kube.list_shared` lists them) as the
        live state and write every object whole: repairs drift, removes objects no SLO needs (a
        membership a lost write or a stopped operator left). `gone`: uids indexed before the SLOs
        were listed and not among them (uids are never reused)."""
        with self._guard:
            lock = self._locks[namespace]
            self._gone |= set(gone)
        with lock:
            live = self._live[namespace] = {o["metadata"]["name"]: dict(o) for o in listed if _is_slo_shared(o)}
            keys = {self._key_of(namespace, name) for name in live}
            keys |= {k for k in list(self._index or ()) if k[0] != "invalid" and k[1] == namespace}
            for key in sorted(keys):
                self._sync_key(namespace, key, [], [])

    def _load(self, namespace: str) -> dict[str, dict[str, Any]]:
        if namespace not in self._live:
            self._live[namespace] = {o["metadata"]["name"]: o for o in self._kube.list_shared(namespace)
                                     if _is_slo_shared(o)}
        return self._live[namespace]

    def _key_of(self, namespace: str, name: str) -> Key:
        """The key an object is written for; ("stale", …) when no SLO has needed it since the start."""
        with self._guard:
            return self._keys.get((namespace, name), ("stale", namespace, name))

    def _sync_key(self, namespace: str, key: Key, applied: list[str], deleted: list[str]) -> tuple[Group | None, list[Member]]:
        for attempt in range(1, SHARED_WRITE_ATTEMPTS + 1):
            try:
                return self._write_key(namespace, key, applied, deleted)
            except ApiProblem as e:
                if e.code not in (404, 409) or attempt == SHARED_WRITE_ATTEMPTS:
                    raise
                # Changed or gone since it was known: read what it is now and compute again.
                self._refresh(namespace, key)
        raise AssertionError("not reached: the last attempt returns or raises")

    def _write_key(self, namespace: str, key: Key, applied: list[str], deleted: list[str]) -> tuple[Group | None, list[Member]]:
        """Write the objects of `key`; the group written, and the SLOs it let in or left out anew."""
        live = self._live[namespace]
        current = {name: obj for name, obj in live.items() if self._key_of(namespace, name) == key}
        invalid = set(self._members(("invalid", namespace)))
        # An invalid SLO keeps its last good rules where they are.
        kept = {r["uid"]: r for obj in current.values() for r in obj["metadata"].get("ownerReferences") or []
                if r.get("uid") in invalid}
        group, flipped = None, []
        if key[0] == "slos":
            last_good = {ref["uid"]: recovered(ref["name"], ref["uid"], current.values(), key[1:], self._options.conventions)
                         for ref in kept.values()}
            members = self._members(key) + [m for m in last_good.values() if m.rules]
            group = slo_group(key[1:], members, self._options.conventions)
            admitted_before = {u for obj in current.values() for u in _owners(obj)}
            left_out_before = self._left_out.get(key, set())
            flipped = [m for m in group.admitted if m.uid in left_out_before] + \
                [m for m in group.left_out if m.uid in admitted_before]
            desired = [(group.object, group.digest)] if group.object else []
            refs = sorted((_reference(m.name, m.uid) for m in group.admitted), key=lambda r: r["uid"])
        elif key[0] == "windows":
            owners = {m.uid: _reference(m.name, m.uid) for m in self._members(key)} | kept
            desired = [(o, applied_hash(o)) for o in self._windows_of(namespace, key[2])] if owners else []
            refs = sorted(owners.values(), key=lambda r: r["uid"])
        else:  # stale: kept only while an invalid owner may still need it
            desired = [(dict(obj), (obj["metadata"].get("annotations") or {}).get(APPLIED_HASH_ANNOTATION))
                       for obj in current.values() if kept]
            refs = sorted(kept.values(), key=lambda r: r["uid"])
        wanted = set()
        for obj, digest in desired:
            name = obj["metadata"]["name"]
            wanted.add(name)
            if not _holds(live.get(name), obj, digest, refs):
                live[name] = self._kube.write_shared(obj, live.get(name), refs, digest)
                applied.append(f"PrometheusRule/{name}")
        for name, obj in sorted(current.items()):
            if name not in wanted:
                self._kube.delete_shared(obj)
                live.pop(name, None)
                deleted.append(f"PrometheusRule/{name}")
        if group is not None:
            self._left_out[key] = {m.uid for m in group.left_out}
        return group, flipped

    def _refresh(self, namespace: str, key: Key) -> None:
        names = {n for n in self._live[namespace] if self._key_of(namespace, n) == key}
        if key[0] == "slos":
            names.add(group_name(key[1:], self._options.conventions))
        elif key[0] == "windows":
            names |= {o["metadata"]["name"] for o in self._windows_of(namespace, key[2])}
        for name in names:
            obj = self._kube.get_shared(namespace, name)
            if obj is None:
                self._live[namespace].pop(name, None)
            else:
                self._live[namespace][name] = obj


def _reference(name: str, uid: str) -> dict[str, Any]:
    return {"apiVersion": SLO_API_VERSION, "kind": "SLO", "name": name, "uid": uid}


def _owners(obj: Mapping[str, Any]) -> set[str]:
    return {r.get("uid") for r in obj["metadata"].get("ownerReferences") or []}


def _is_slo_shared(obj: Mapping[str, Any]) -> bool:
    """Owned by SLOs alone, none its controller (the price catalogue is the AlertRules')."""
    refs = obj["metadata"].get("ownerReferences") or []
    return bool(refs) and all(r.get("kind") == "SLO" and not r.get("controller") for r in refs)


def _holds(live: Mapping[str, Any] | None, obj: Mapping[str, Any], digest: str | None,
           refs: list[dict[str, Any]]) -> bool:
    if live is None:
        return False
    meta = live["metadata"]
    return ((meta.get("annotations") or {}).get(APPLIED_HASH_ANNOTATION) == digest
            and sorted(r.get("uid") for r in meta.get("ownerReferences") or []) == [r["uid"] for r in refs]
            and contains(meta.get("labels") or {}, obj["metadata"].get("labels") or {})
            and contains(live.get("spec"), obj.get("spec")))
