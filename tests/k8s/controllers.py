"""What kube-controller-manager does to the emulator's objects after a request has been answered,
and the admission checks of the namespace lifecycle and of events.k8s.io/v1 Events.

- **Garbage collector** (pkg/controller/garbagecollector/garbagecollector.go, attemptToDeleteItem,
  classifyReferences, processDeletingDependentsItem; https://kubernetes.io/docs/concepts/architecture/garbage-collection/):
  a background sweep, shortly after a change, never inside the DELETE. A dependent whose owners
  are all gone is deleted (with the policy its own finalizers ask for); one with a live owner
  loses only the references to gone owners (an owner is matched by uid and must be in the
  dependent's namespace or cluster-scoped). An owner deleted with `Foreground` keeps its
  `foregroundDeletion` finalizer until no dependent with `blockOwnerDeletion` is left; with
  `Orphan` the `orphan` finalizer stays until the references to it are removed from its dependents.
  Not emulated: the GC's discovery-driven monitors and its retries with backoff, events about
  invalid owner references, `deletecollection`.
- **Namespace controller** (pkg/controller/namespace/deletion/namespaced_resources_deleter.go):
  a Terminating namespace's objects are deleted; once none is left (finalizers honoured), the
  `kubernetes` finalizer is removed from spec.finalizers and the namespace goes. Not emulated:
  the status conditions (NamespaceDeletionContentFailure, ...).
- **NamespaceLifecycle admission** (plugin/pkg/admission/namespace/lifecycle/admission.go):
  creates in a Terminating namespace are refused (403, cause NamespaceTerminating); default,
  kube-system and kube-public may not be deleted.
- **Event validation** (pkg/apis/core/validation/events.go, ValidateEventCreate/Update): for
  events.k8s.io/v1 the strict rules, limits in bytes (Go's len): note 1,024 (reported on the
  internal field path `message`, as the apiserver does), reason/action/reportingInstance 128.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
from typing import TYPE_CHECKING, Any

import kmock

if TYPE_CHECKING:
    from .emulator import Emulator, Key

Obj = dict[str, Any]
IMMORTAL_NAMESPACES = frozenset({'default', 'kube-system', 'kube-public'})
NAMESPACE_FINALIZER = 'kubernetes'
FOREGROUND, ORPHAN = 'foregroundDeletion', 'orphan'
QUALIFIED_NAME = re.compile(r'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')
DNS_SUBDOMAIN = re.compile(r'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')


def forbidden(resource: kmock.resource, name: str, message: str, causes: list[Obj] | None = None) -> kmock.KubernetesError:
    """apierrors.NewForbidden(groupResource, name, err) with optional causes."""
    qualified = f'{resource.plural}.{resource.group}' if resource.group else resource.plural
    details: Obj = {k: v for k, v in (('name', name), ('group', resource.group), ('kind', resource.plural)) if v}
    if causes:
        details['causes'] = causes
    return kmock.KubernetesError(status=403, reason='Forbidden', details=details,
                                 message=f'{qualified} "{name}" is forbidden: {message}' if name else f'{qualified} is forbidden: {message}')


def invalid(kind: str, group: str, name: str, errors: list[tuple[str, str, str]]) -> kmock.KubernetesError:
    """apierrors.NewInvalid for field errors (field path, cause type, body such as `Required value`)."""
    qualified = f'{kind}.{group}' if group else kind
    texts = [f'{path}: {body}' for path, _, body in errors]
    message = f'{qualified} "{name}" is invalid: ' + (texts[0] if len(texts) == 1 else '[' + ', '.join(texts) + ']')
    return kmock.KubernetesError(status=422, reason='Invalid', message=message, details={
        'name': name, 'group': group, 'kind': kind,
        'causes': [{'reason': cause, 'message': body, 'field': path} for path, cause, body in errors]})


def _required(path: str) -> tuple[str, str, str]:
    return path, 'FieldValueRequired', 'Required value'


def _invalid(path: str, value: str, detail: str) -> tuple[str, str, str]:
    return path, 'FieldValueInvalid', f'Invalid value: "{value}": {detail}'


def event_errors(event: Obj, create: bool) -> list[tuple[str, str, str]]:
    """ValidateEventCreate/ValidateEventUpdate for an events.k8s.io/v1 Event (as stored in v1 form)."""
    errors: list[tuple[str, str, str]] = []

    def size(value: Any) -> int:
        return len((value or '').encode())  # Go's len(string) counts bytes
    regarding_ns = (event.get('regarding') or {}).get('namespace') or ''
    namespace = event['metadata'].get('namespace') or ''
    if event.get('eventTime'):  # legacyValidateEvent, for events with an eventTime
        if not regarding_ns and namespace not in ('default', 'kube-system'):
            errors.append(_invalid('involvedObject.namespace', regarding_ns, 'does not match event.namespace'))
        controller = event.get('reportingController') or ''
        if not controller:
            errors.append(_required('reportingController'))
        elif not QUALIFIED_NAME.fullmatch(controller.rsplit('/', 1)[-1]) or len(controller.rsplit('/', 1)[-1]) > 63:
            errors.append(_invalid('reportingController', controller, "name part must consist of alphanumeric characters, '-', '_' or '.'"))
        for path, key, limit in (('reportingInstance', 'reportingInstance', 128), ('action', 'action', 128), ('reason', 'reason', 128)):
            if not event.get(key):
                errors.append(_required(path))
            elif size(event[key]) > limit:
                errors.append(_invalid(path, '', f'can have at most {limit} characters'))
        if size(event.get('note')) > 1024:
            errors.append(_invalid('message', '', 'can have at most 1024 characters'))
    if not DNS_SUBDOMAIN.fullmatch(namespace) or len(namespace) > 253:
        errors.append(_invalid('namespace', namespace, 'a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters'))
    if create:
        series = event.get('series')
        if series is not None:
            if (series.get('count') or 0) < 2:
                errors.append(_invalid('series.count', '', 'should be at least 2'))
            if not series.get('lastObservedTime'):
                errors.append(_required('series.lastObservedTime'))
        if not event.get('eventTime'):
            errors.append(_required('eventTime'))
        if event.get('type') not in ('Normal', 'Warning'):
            errors.append(_invalid('type', '', f'has invalid value: {event.get("type") or ""}'))
        for path, key in (('firstTimestamp', 'deprecatedFirstTimestamp'), ('lastTimestamp', 'deprecatedLastTimestamp'),
                          ('count', 'deprecatedCount'), ('source', 'deprecatedSource')):
            if event.get(key):
                errors.append(_invalid(path, '', 'needs to be unset'))
    return errors


class Controllers:
    """The garbage collector and namespace controller of one emulator, run as a background task."""

    def __init__(self, emulator: Emulator, delay: float) -> None:
        self.emulator, self.delay = emulator, delay
        self._kicked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.idle = True

    def kick(self) -> None:
        """Something changed that the controllers may act on: sweep shortly (coalesced)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the emulator is being built outside its loop: the next change sweeps
            return
        self.idle = False
        self._kicked.set()
        if self._task is None:
            # Its own context: the controllers act as themselves, not as the request that kicked them.
            self._task = loop.create_task(self._run(), context=contextvars.Context())

    async def _run(self) -> None:
        while True:
            await self._kicked.wait()
            await asyncio.sleep(self.delay)  # the informers' latency: never inside the request
            self._kicked.clear()
            try:
                self.sweep()
            except Exception as e:  # a bug in the emulator: fail the test on exit
                self.emulator.internal_errors.append(e)
            self.idle = not self._kicked.is_set()

    def _candidates(self) -> list[Key]:
        """Keys of the objects with owners or a deletionTimestamp, in the order they were created:
        nothing else is the collector's to act on (a namespace's content is listed when it goes)."""
        candidates = self.emulator._gc_candidates
        return [key for key in self.emulator._objects._objects if key in candidates]

    def sweep(self) -> None:
        emulator = self.emulator
        for key in self._candidates():
            obj = emulator._peek(key)  # as changed earlier in this sweep
            if obj is None:
                continue
            meta = obj['metadata']
            if meta.get('deletionTimestamp'):
                self._finish_deletion(key, obj)
            if meta.get('ownerReferences'):
                self._attempt_to_delete(key, obj)

    def _owner(self, dependent_key: Key, ref: Obj) -> Obj | None:
        owner_key = self.emulator._keys_by_uid.get(ref.get('uid'))
        owner = None if owner_key is None else self.emulator._peek(owner_key)
        if owner is None:
            return None
        # A namespaced owner must be in the dependent's namespace (else it counts as absent).
        return owner if owner_key[1] in (None, dependent_key[1]) else None

    def _attempt_to_delete(self, key: Key, obj: Obj) -> None:
        """attemptToDeleteItem: classify the owner references, then patch or delete the dependent."""
        solid, gone, waiting = [], [], []
        for ref in obj['metadata']['ownerReferences']:
            owner = self._owner(key, ref)
            if owner is None:
                gone.append(ref)
            elif FOREGROUND in (owner['metadata'].get('finalizers') or []) and owner['metadata'].get('deletionTimestamp'):
                waiting.append(ref)
            else:
                solid.append(ref)
        if solid:
            if gone or waiting:
                self.emulator._set_owner_refs(key, solid)
            return
        if obj['metadata'].get('deletionTimestamp'):
            return  # already being deleted
        finalizers = obj['metadata'].get('finalizers') or []
        policy = 'Foreground' if waiting or FOREGROUND in finalizers else 'Orphan' if ORPHAN in finalizers else 'Background'
        self.emulator.delete_object(key, policy)

    def _finish_deletion(self, key: Key, obj: Obj) -> None:
        emulator, meta = self.emulator, obj['metadata']
        finalizers = meta.get('finalizers') or []
        current = [(k, o) for k in self._candidates() if (o := emulator._peek(k)) is not None]
        dependents = [(k, o) for k, o in current
                      if any(r.get('uid') == meta['uid'] for r in o['metadata'].get('ownerReferences') or [])]
        if ORPHAN in finalizers:
            for dependent_key, dependent in dependents:
                emulator._set_owner_refs(dependent_key, [r for r in dependent['metadata']['ownerReferences']
                                                         if r.get('uid') != meta['uid']])
            emulator._remove_finalizer(key, ORPHAN)
        elif FOREGROUND in finalizers:
            blocking = [(k, o) for k, o in dependents if any(
                r.get('uid') == meta['uid'] and r.get('blockOwnerDeletion') for r in o['metadata']['ownerReferences'])]
            if not blocking:
                emulator._remove_finalizer(key, FOREGROUND)
        if key[0] == emulator.resource_of('v1', 'Namespace'):
            self._delete_content(key, obj)

    def _delete_content(self, key: Key, namespace: Obj) -> None:
        """The namespace controller: delete what is in it; finalize once nothing is left."""
        emulator = self.emulator
        content = [(k, o) for k, o in emulator._live() if k[1] == key[2]]
        for content_key, obj in content:
            if not obj['metadata'].get('deletionTimestamp'):
                emulator.delete_object(content_key)
        if not any(emulator._peek(k) is not None for k, _ in content):
            spec_finalizers = (namespace.get('spec') or {}).get('finalizers') or []
            if NAMESPACE_FINALIZER in spec_finalizers:
                emulator._finalize_namespace(key)

