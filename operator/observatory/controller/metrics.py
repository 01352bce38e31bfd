"""prometheus-client metrics of the operator loop, in a registry of their own (one per operator)."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter("observatory_reconcile_total", "Reconciles by kind and result "
                                  "(applied: objects written, unchanged: nothing to write, invalid: spec rejected, "
                                  "full: no room in its namespace's group of SLO rules, error: API failure).",
                                  ["kind", "result"], registry=self.registry)
        self.errors = Counter("observatory_reconcile_errors_total", "Failed reconciles by kind and reason "
                              "(transient: retried with backoff; rejected: the API refused the objects).",
                              ["kind", "reason"], registry=self.registry)
        self.duration = Histogram("observatory_reconcile_duration_seconds", "Reconcile duration by kind.", ["kind"],
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                  registry=self.registry)
        self.resyncs = Counter("observatory_resync_total", "Periodic resync rounds by result (done: every resource "
                               "reconciled from its current body; paused: skipped or stopped while a peer of higher "
                               "priority is active).", ["result"], registry=self.registry)
        self.managed = Gauge("observatory_managed_objects", "Generated objects (PrometheusRules and "
                             "AlertmanagerConfigs) by owner kind.", ["kind"], registry=self.registry)
        self._owned: dict[str, tuple[str, int]] = {}  # owner uid -> (kind, generated objects)
        self._totals: dict[str, int] = {}
        self._lock = threading.Lock()

    def owned(self, kind: str, uid: str, count: int | None) -> None:
        """Record how many objects a resource owns now; None forgets the resource (it is gone)."""
        with self._lock:
            old = self._owned.pop(uid, None)
            if old is not None:
                self._totals[old[0]] -= old[1]
                self.managed.labels(old[0]).set(self._totals[old[0]])
            if count is not None:
                self._owned[uid] = (kind, count)
                self._totals[kind] = self._totals.get(kind, 0) + count
                self.managed.labels(kind).set(self._totals[kind])
