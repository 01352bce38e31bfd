"""One idempotent reconcile for AlertRules and SLOs: compile, apply what differs, report status.

Run for create, update, resume and periodic resync alike. It writes only what differs from the
live state, so running it again (or after an operator restart) writes nothing.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from ..compile import (
    CompileError,
    CompileOptions,
    compile_resource,
    needs_prices,
    shared_objects,
)
from ..compile.rules import count_rules, object_name
from ..compile.slo_groups import group_key
from ..models import parse_resource
from ..models.alertrule import AlertRule
from ..models.common import CustomResource
from ..models.stack import ObservabilityStack
from . import loading
from .kube import ApiProblem, Kube, Owner, StatusWrites
from .metrics import Metrics
from .slo_groups import SloGroups
from .status import READY, RULES_LOADED, VALID, Cond, build_status, transitions

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
# A refusal that is not transient (403 RBAC, 404 missing CRD, 422) may be fixed by an administrator;
# look again now and then rather than never.
REFUSED_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str


def backoff(retry: int) -> float:
    return min(0.5 * 2 ** retry, MAX_BACKOFF_SECONDS)


@dataclass
class Controller:
    kube: Kube
    options: CompileOptions
    metrics: Metrics
    prometheus_ttl: float = 5.0
    _prometheus_cache: tuple[float, list[dict[str, Any]]] = field(default=(0.0, []), init=False)
    # Every live resource by uid, added by its first reconcile, dropped (`_drop`) when `forget` or the
    # resync finds it deleted: what `resync` goes over (by name, never by body).
    _live: dict[str, tuple[KindInfo, str, str]] = field(default_factory=dict, init=False)
    _live_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    # What each resource's last reconcile in this process left it owning or sharing, (kind, name):
    # the body kopf hands a handler can predate the status that reconcile wrote (kopf takes the
    # latest event it has, and the status write's own event may still be on its way), and objects
    # the status does not name would never be pruned or left. Naming more only costs a read.
    _left_with: dict[str, set[tuple[str, str]]] = field(default_factory=dict, init=False)
    _statuses: StatusWrites = field(default_factory=StatusWrites, init=False)  # the same for its status
    # Per resource, handlers, the resync and `forget` take turns: each runs in a thread of its own.
    _turns: dict[str, threading.Lock] = field(default_factory=dict, init=False)
    groups: SloGroups = field(init=False)

    def __post_init__(self) -> None:
        self.groups = SloGroups(self.kube, self.options)

    def _turn(self, uid: str) -> threading.Lock:
        with self._live_lock:
            return self._turns.setdefault(uid, threading.Lock())

    def resync(self, paused: Callable[[], bool] = lambda: False,
               forgotten: Callable[[str], None] = lambda uid: None) -> str:
        """Reconcile every live resource once more: repairs drift (a generated object deleted by
        hand) and refreshes RulesLoaded after Prometheus or namespace changes. Writes nothing when
        nothing changed; failures wait for the next round.

        Each resource is read again, in its turn, right before it is reconciled: a body held since
        the round began could be older than a change a handler applied meanwhile, and writing it
        would undo that change. `paused` (a peer is active instead, see `PeeringView`) is asked
        before every resource, so a replica kopf pauses stops writing mid-round too. A resource found
        gone was deleted unseen (a watch listing again after compaction or a peering pause: kopf
        synthesises no DELETED event for what vanished, kopf/_cogs/clients/watching.py): it comes off
        the list, and `forgotten` is told its uid."""
        with self._live_lock:
            snapshot = sorted(self._live.items(), key=lambda item: (item[1][1], item[1][2], item[0]))
        result = "done"
        # The shared objects of each namespace, listed once a round: the SLOs' are written whole
        # again from the index, and a membership in the price catalogue the status never recorded
        # (its write was lost) is found and, if no longer wanted, left.
        memberships: dict[str, dict[str, list[str]]] = {}
        for uid, (kind, namespace, name) in snapshot:
            if self._paused(paused):
                result = "paused"
                break
            try:
                self._in_turn(kind, uid, namespace, name, functools.partial(self._resynced, kind, uid, memberships, forgotten))
            except (ApiProblem, kopf.TemporaryError) as e:
                log.info("resync of %s/%s failed: %s", namespace, name, e)
        self.metrics.resyncs.labels(result).inc()
        return result

    def _resynced(self, kind: KindInfo, uid: str, memberships: dict[str, dict[str, list[str]]],
                  forgotten: Callable[[str], None], body: Mapping[str, Any] | None) -> None:
        if body is None:
            self._drop(kind, uid)
            forgotten(uid)
            return
        namespace = body["metadata"]["namespace"]
        if not body["metadata"].get("deletionTimestamp"):
            if namespace not in memberships:
                memberships[namespace] = self._resync_shared(namespace)
            self._attempt(kind, body, 0, thorough=memberships[namespace].get(uid, []))

    def _in_turn(self, kind: KindInfo, uid: str, namespace: str, name: str,
                 act: Callable[[Mapping[str, Any] | None], None]) -> None:
        """`act` in the resource's turn on its body as it is now; None when it is gone (or replaced by
        a namesake). Nothing for one forgotten, before or while it waited: its turn is not made again."""
        with self._live_lock:
            turn = self._turns.setdefault(uid, threading.Lock()) if uid in self._live else None
        if turn is None:
            return
        with turn:
            with self._live_lock:
                if uid not in self._live:
                    return
            body = self.kube.get_resource(kind.plural, namespace, name)
            act(body if body is not None and body["metadata"]["uid"] == uid else None)

    def _resync_shared(self, namespace: str) -> dict[str, list[str]]:
        """Owner uid -> names of the shared PrometheusRules of `namespace` it is an owner of."""
        listed = self.kube.list_shared(namespace)
        if self.groups.bound:
            # kopf drops an SLO from its index on its DELETED event; one missed (a watch resumed
            # after compaction lists again, and kopf synthesises no event for what vanished:
            # kopf/_cogs/clients/watching.py continuous_watch) would keep its rules for good.
            indexed = self.groups.indexed(namespace)
            alive = {o["metadata"]["uid"] for o in self.kube.list_resources("slos", namespace)}
            self.groups.resync(namespace, listed, gone=indexed - alive)
        found: dict[str, list[str]] = {}
        for obj in listed:
            for ref in obj["metadata"].get("ownerReferences") or []:
                found.setdefault(ref["uid"], []).append(obj["metadata"]["name"])
        return found

    @staticmethod
    def _paused(paused: Callable[[], bool]) -> bool:
        try:
            return paused()
        except ApiProblem as e:  # without knowing who is active, writing could undo the active peer's work
            log.info("resync paused: the peering object could not be read: %s", e)
            return True

    def reconcile(self, kind: KindInfo, body: Mapping[str, Any], retry: int = 0) -> None:
        """The handlers' reconcile of the body kopf hands them."""
        meta = body["metadata"]
        with self._live_lock:
            self._live[meta["uid"]] = (kind, meta["namespace"], meta["name"])
        with self._turn(meta["uid"]):
            moved = self._attempt(kind, body, retry)
        self._report_moved(kind, body["metadata"]["namespace"], moved)

    def _report_moved(self, kind: KindInfo, namespace: str, names: tuple[str, ...]) -> None:
        """Reconcile, from their current bodies, the SLOs a group write let into their full group or
        left out of it, so that their status says so (each in its own turn, after the writer's). One
        this process has not reconciled yet reports itself."""
        def report(body: Mapping[str, Any] | None) -> None:
            if body is not None and not body["metadata"].get("deletionTimestamp"):
                self._attempt(kind, body, 0)

        for name in names:
            try:  # read to learn which resource has the name now (a deleted one's namesake?), then in its turn
                found = self.kube.get_resource(kind.plural, namespace, name)
                if found is not None:
                    self._in_turn(kind, found["metadata"]["uid"], namespace, name, report)
            except (ApiProblem, kopf.TemporaryError) as e:  # its own retries and the resync report it
                log.info("could not report the group of %s/%s: %s", namespace, name, e)

    def _attempt(self, kind: KindInfo, body: Mapping[str, Any], retry: int, thorough: list[str] | None = None) -> tuple[str, ...]:
        """`thorough` (the names of shared objects listing the resource as an owner) lists its own
        generated objects by label instead of reading the ones the status names, and looks at those
        shared objects besides the ones the status names. Returns the other SLOs whose group
        admission this reconcile changed."""
        started = time.perf_counter()
        result = "error"
        try:
            result, moved = self._reconcile(kind, body, thorough)
            return moved
        except ApiProblem as e:
            self.metrics.errors.labels(kind.kind, "transient" if e.transient else "rejected").inc()
            if e.transient:
                raise kopf.TemporaryError(f"API: {e}", delay=backoff(retry)) from None
            self._refused(kind, body, e)
            raise kopf.TemporaryError(f"API refused: {e}", delay=REFUSED_RETRY_SECONDS) from None
        finally:
            self.metrics.reconciles.labels(kind.kind, result).inc()
            self.metrics.duration.labels(kind.kind).observe(time.perf_counter() - started)

    def _reconcile(self, kind: KindInfo, body: Mapping[str, Any], thorough: list[str] | None) -> tuple[str, tuple[str, ...]]:
        meta = body["metadata"]
        owner = Owner(body["apiVersion"], kind.kind, meta["namespace"], meta["name"], meta["uid"])
        if kind.kind == "SLO":
            return self._reconcile_slo(kind, body, owner, thorough)
        return self._reconcile_rule(kind, body, owner, thorough), ()

    def _reconcile_rule(self, kind: KindInfo, body: Mapping[str, Any], owner: Owner, thorough: list[str] | None) -> str:
        generation = body["metadata"].get("generation")
        previous = self._statuses.held(body["metadata"]["uid"], body)
        try:
            resource = parse_resource({k: v for k, v in body.items() if k != "status"})
            objects = compile_resource(resource, self.options)
            shared = shared_objects(self._sharing(owner, resource), self.options)
        except CompileError as err:
            self._invalid(kind, owner, generation, previous, err)
            return "invalid"
        # The status names the rules objects of the last reconcile, its own and shared: only those
        # and the ones needed now are read. `thorough` lists its own by label instead.
        before = previous.get("prometheusRules") or []
        owned = {o["metadata"]["name"] for o in objects}
        shared_names = {o["metadata"]["name"] for o in shared}
        left_with = self._left_with.get(owner.uid, set())
        known = None if thorough is not None else sorted(
            {*[("PrometheusRule", n) for n in before if n not in shared_names],
             *[("AlertmanagerConfig", n) for n in [previous.get("alertmanagerConfig")] if n],
             *[(k, n) for k, n in left_with if n not in shared_names]})
        sync = self.kube.sync_owned(owner, objects, known, unseen=not previous and not left_with)
        # Besides what it needs now and had, only a former cost rule may own more: the catalogue. A
        # rule without a status had nothing yet (a lost status write is the resync's to find).
        had = {*[("PrometheusRule", n) for n in [*before, *(thorough or [])] if n not in owned],
               *[(k, n) for k, n in left_with if k == "PrometheusRule" and n not in owned]}
        if isinstance(resource, AlertRule) and previous:
            had.add(("PrometheusRule", object_name(self.options.conventions.prices_object_name)))
        try:
            shared_sync = self.kube.sync_shared(owner, owner.namespace, shared, sorted(had))
        except CompileError as err:  # the spec is fine, but its namespace's group of SLO rules is full
            self._report(kind, owner, generation, previous, [
                Cond(READY, "False", "RuleGroupFull", str(err)),
                Cond(VALID, "True", "Compiled"), *_kept(previous, RULES_LOADED)])
            return "full"
        wrote = bool(sync.applied or sync.deleted or shared_sync.applied or shared_sync.deleted)
        self._left_with[owner.uid] = {(o["kind"], o["metadata"]["name"]) for o in [*objects, *shared]}
        self._reconciled(kind, owner, generation, previous, objects, sync.live + shared_sync.live, count_rules(objects))
        return "applied" if wrote else "unchanged"

    def _reconcile_slo(self, kind: KindInfo, body: Mapping[str, Any], owner: Owner,
                       thorough: list[str] | None) -> tuple[str, tuple[str, ...]]:
        """An SLO owns its AlertmanagerConfig; its group and windows are written whole from the index."""
        generation = body["metadata"].get("generation")
        previous = self._statuses.held(body["metadata"]["uid"], body)
        try:
            compiled = self.groups.compile(body)
        except CompileError as err:
            self._invalid(kind, owner, generation, previous, err)
            return "invalid", ()
        slo = compiled.resource
        left_with = self._left_with.get(owner.uid, set())
        known = None if thorough is not None else sorted(
            {*[("AlertmanagerConfig", n) for n in [previous.get("alertmanagerConfig")] if n], *left_with})
        sync = self.kube.sync_owned(owner, compiled.owned, known, unseen=not previous and not left_with)
        self._left_with[owner.uid] = {(o["kind"], o["metadata"]["name"]) for o in compiled.owned}
        written = self.groups.sync(owner.namespace, owner.uid, [("slos", *group_key(slo)), ("windows", slo.namespace, slo.spec.window)])
        if written.full is not None:  # the spec is fine, but its group of SLO rules is full
            self._report(kind, owner, generation, previous, [
                Cond(READY, "False", "RuleGroupFull", str(written.full)),
                Cond(VALID, "True", "Compiled"), *_kept(previous, RULES_LOADED)])
            return "full", written.moved
        counts = (len(compiled.member.rules), len(compiled.member.alerts))
        self._reconciled(kind, owner, generation, previous, compiled.owned, sync.live + written.live, counts)
        return "applied" if sync.applied or sync.deleted or written.applied or written.deleted else "unchanged", written.moved

    def _reconciled(self, kind: KindInfo, owner: Owner, generation: int | None, previous: Mapping[str, Any],
                    objects: list[dict[str, Any]], live: tuple[dict[str, Any], ...], counts: tuple[int, int]) -> None:
        rules = [o for o in live if o["kind"] == "PrometheusRule"]
        config = next((o["metadata"]["name"] for o in objects if o["kind"] == "AlertmanagerConfig"), None)
        recording, alerting = counts
        self._report(kind, owner, generation, previous, [
            Cond(READY, "True", "Reconciled", f"{recording} recording and {alerting} alerting rule(s) in "
                                              f"{len(rules)} PrometheusRule(s)" + (", 1 AlertmanagerConfig" if config else "")),
            Cond(VALID, "True", "Compiled"),
            self._rules_loaded(rules)], rules=sorted(o["metadata"]["name"] for o in rules), config=config,
            counts=counts)
        self.metrics.owned(kind.kind, owner.uid, len(objects))

    def _invalid(self, kind: KindInfo, owner: Owner, generation: int | None, previous: Mapping[str, Any],
                 err: CompileError) -> None:
        # The last good objects stay; RulesLoaded still describes them.
        self._report(kind, owner, generation, previous, [
            Cond(READY, "False", "InvalidSpec", "the spec is invalid; the last good rules stay in place"),
            Cond(VALID, "False", "InvalidSpec", str(err)), *_kept(previous, RULES_LOADED)])

    def _sharing(self, owner: Owner, resource: CustomResource) -> list[CustomResource]:
        """The resources whose shared objects `resource` needs: itself, and for a cost rule the
        namespace's stacks (a stack with default rules provides the prices instead)."""
        resources: list[CustomResource] = [resource]
        if needs_prices(resource):
            for stack in self.kube.list_resources("observabilitystacks", owner.namespace):
                try:
                    parsed = parse_resource({k: v for k, v in stack.items() if k != "status"})
                except CompileError:
                    continue  # an invalid stack provides nothing
                if isinstance(parsed, ObservabilityStack):
                    resources.append(parsed)
        return resources

    def forget(self, kind: KindInfo, body: Mapping[str, Any]) -> None:
        """A deleted resource leaves its shared objects: an AlertRule those its status names, an SLO
        every one it is an owner of, written again from the index kopf has dropped it from. The
        garbage collector removes it from their owners too, but not an SLO's rules from its group;
        should this fail, the next write of that group (at the latest the resync's) leaves them out.
        The resync no longer goes over it, and the garbage collector removes what it owned."""
        meta = body["metadata"]
        owner = Owner(body["apiVersion"], kind.kind, meta["namespace"], meta["name"], meta["uid"])
        names = [("PrometheusRule", n) for n in (body.get("status") or {}).get("prometheusRules") or []]
        moved: tuple[str, ...] = ()
        with self._turn(owner.uid):  # after a reconcile in flight, which may still add it somewhere
            try:
                if kind.kind != "SLO":
                    self.kube.sync_shared(owner, owner.namespace, [], names)
                elif self.groups.bound:  # kopf has dropped it from the index: its objects are written without it
                    moved = self.groups.sync(owner.namespace, owner.uid).moved
            except (ApiProblem, CompileError) as e:
                log.warning("%s/%s left shared rules behind: %s", owner.namespace, owner.name, e)
            finally:
                self._drop(kind, owner.uid)  # in its turn: whoever waits for it finds it forgotten
        self._report_moved(kind, owner.namespace, moved)  # the room it leaves may let others in

    def _drop(self, kind: KindInfo, uid: str) -> None:
        """Off the resync's list, its turn, what this process remembers of it and its count of owned
        objects gone with it. Called in its turn, so that whoever waits for the turn finds it gone."""
        with self._live_lock:
            self._turns.pop(uid, None)
            self._live.pop(uid, None)
        self._left_with.pop(uid, None)
        self._statuses.forget(uid)
        self.groups.forget(uid)
        self.metrics.owned(kind.kind, uid, None)

    def _prometheuses(self) -> list[dict[str, Any]]:
        """Prometheus objects, listed at most once per `prometheus_ttl` (a cluster-wide list per
        reconcile would cost more than the reconcile)."""
        with self._live_lock:
            expires, cached = self._prometheus_cache
        if time.monotonic() < expires:
            return cached
        listed = self.kube.list_prometheuses()
        with self._live_lock:
            self._prometheus_cache = (time.monotonic() + self.prometheus_ttl, listed)
        return listed

    def _rules_loaded(self, rules: list[dict[str, Any]]) -> Cond:
        """From the live PrometheusRules: what prometheus-operator reports of them, else selectors."""
        prometheuses = self._prometheuses()
        namespace = rules[0]["metadata"]["namespace"] if rules else ""
        ns_labels = self.kube.namespace_labels(namespace) if rules and loading.needs_namespace_labels(prometheuses) else {}
        labels = rules[0]["metadata"]["labels"] if rules else {}
        verdict = loading.rules_verdict(prometheuses, rules, labels, ns_labels)
        return Cond(RULES_LOADED, verdict.status, verdict.reason, verdict.message)

    def _report(self, kind: KindInfo, owner: Owner, generation: int | None, previous: Mapping[str, Any],
                conditions: list[Cond], *, rules: list[str] | None = None, config: str | None = None,
                counts: tuple[int, int] | None = None) -> None:
        status = build_status(previous, conditions, generation, prometheus_rules=rules, alertmanager_config=config,
                              counts=counts)
        if not self._statuses.write(self.kube, kind.plural, owner, status, previous):
            return
        changed = transitions(previous, status)
        if changed:  # one Event per reconcile, named after its most important transition
            problem = any(c["status"] == "False" or c["reason"] == "NoPrometheus" for c in changed)
            note = "; ".join(f"{c['type']}={c['status']} ({c['reason']})" + (f": {c['message']}" if c["message"] else "")
                             for c in changed)
            self.kube.post_event(owner, "Warning" if problem else "Normal", changed[0]["reason"], note)

    def _refused(self, kind: KindInfo, body: Mapping[str, Any], problem: ApiProblem) -> None:
        meta = body["metadata"]
        owner = Owner(body["apiVersion"], kind.kind, meta["namespace"], meta["name"], meta["uid"])
        previous = self._statuses.held(owner.uid, body)
        try:
            self._report(kind, owner, meta.get("generation"), previous,
                         [Cond(READY, "False", "ApplyFailed", f"the API server refused: {problem.message}"),
                          *_kept(previous, VALID, RULES_LOADED)])
        except ApiProblem as e:
            log.warning("could not report the failure of %s/%s: %s", owner.namespace, owner.name, e)


def _kept(status: Mapping[str, Any], *types: str) -> list[Cond]:
    """Conditions of `status` this reconcile did not re-evaluate, carried over as they were."""
    return [Cond(c["type"], c["status"], c["reason"], c.get("message", ""))
            for c in status.get("conditions") or [] if c.get("type") in types]
