"""Is this replica the one kopf lets work? Judged from kopf's own peering objects, as kopf judges.

kopf pauses every watch stream of a replica, and so every handler, while another live peer of the
same peering object has a higher or the same priority (kopf/_core/engines/peering.py,
`process_peering_event`). The resync runs outside kopf's handlers, so before it writes it asks the
same question of the same objects, with kopf's own reading of a peer (`Peer`: priority, lifetime,
last seen).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kopf._core.engines.peering import (
    Peer,  # kopf's definition of a live peer, not a copy of it
)

# A paused peer learns of the pause within this long (one GET per peering object at most this often).
PEERING_CACHE_SECONDS = 1.0


def outranked(status: Mapping[str, Any], identity: str, priority: int) -> bool:
    """Whether a live peer other than `identity` has `priority` or more (kopf pauses on ties too)."""
    peers = [Peer(identity=peer_id, **(info or {})) for peer_id, info in (status or {}).items()]
    return any(not p.is_dead and p.identity != identity and p.priority >= priority for p in peers)


@dataclass
class PeeringView:
    """`paused()` for a replica of `identity` and `priority` sharing the peering object `name`:
    one ClusterKopfPeering when watching every namespace, else a KopfPeering in each watched one."""

    read_status: Callable[[str, str | None], Mapping[str, Any] | None]  # (name, namespace) -> .status
    name: str | None
    identity: str
    priority: int
    namespaces: Sequence[str] = ()  # empty: cluster-wide
    ttl: float = PEERING_CACHE_SECONDS
    clock: Callable[[], float] = time.monotonic
    _cache: tuple[float, bool] = field(default=(float("-inf"), False), init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def paused(self) -> bool:
        if self.name is None:  # standalone: kopf never pauses
            return False
        with self._lock:
            checked, paused = self._cache
            if self.clock() - checked < self.ttl:
                return paused
            paused = any(outranked(self.read_status(self.name, ns) or {}, self.identity, self.priority)
                         for ns in (self.namespaces or [None]))
            self._cache = (self.clock(), paused)
            return paused
