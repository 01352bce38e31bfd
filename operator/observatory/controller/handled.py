"""Where kopf keeps what it last handled of each resource: in the operator's memory, not in the
resource. kopf's default stores the spec once more in an annotation, and that write (plus its
`kopf-managed` marker on a new resource) was one write and one watch event per change beside the
status the operator writes anyway — a fifth of a burst's writes. What kopf loses with the memory
on a restart is only the difference between "created" and "resumed", which run the same
idempotent reconcile here: every resource is reconciled once at start-up either way."""

from __future__ import annotations

from typing import Any

import kopf


class HandledSpecs(kopf.DiffBaseStorage):
    """kopf's diff base by resource uid, forgotten when the resource is deleted (`forget`)."""

    def __init__(self) -> None:
        super().__init__()
        self._essences: dict[str, kopf.BodyEssence] = {}

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return self._essences.get(body.metadata.uid)

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        self._essences[body.metadata.uid] = essence

    def forget(self, uid: str) -> None:
        self._essences.pop(uid, None)

    def __len__(self) -> int:
        return len(self._essences)


class UnmarkedProgressStorage(kopf.AnnotationsProgressStorage):
    """kopf's retry records in annotations, without the `<prefix>/kopf-managed` marker kopf adds to
    each resource it writes one to: the marker only tells other kopf operators handling the same
    resources to ignore these annotations, and none handles Observatory's kinds. (kopf strips its
    own progress annotations from every diff base whether or not the marker is there.)"""

    def _store_marker(self, prefix: str, patch: kopf.Patch, body: kopf.Body, **_: Any) -> None:
        pass
