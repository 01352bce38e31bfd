"""The periodic resync repairs drift without ever undoing a change kopf handled (issue 12 items
2 and 3): it reconciles each resource from its current body, and a replica kopf has paused in
favour of a peer writes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import threading

import pytest
from controller_harness import (
    ALERTRULES,
    PROMETHEUSRULES,
    SLOS,
    at_generation,
    example,
    handled,
    names,
    running_operator,
    settled,
    threshold_rule,
)
from k8s.emulator import cluster_context
from observatory.controller.peering import PeeringView
from observatory.controller.settings import Settings

PEERING = 'observatory-ha'
WRITES = frozenset({'POST', 'PUT', 'PATCH', 'DELETE'})


def slo_groups(cluster, namespace: str, period: str) -> list[str]:
    return [n for n in names(cluster, PROMETHEUSRULES, namespace) if n.startswith(f'observatory-slos-{period}-')]


async def test_a_resync_holding_an_old_body_does_not_undo_a_handled_change():
    """The resync went over bodies snapshotted before it ran: a period change kopf handled meanwhile
    was undone, and the SLO stayed in its old period's group for good. It holds names now (what the
    first reconcile put on its list) and reads each body right before reconciling it."""
    async with cluster_context() as cluster, running_operator(cluster, Settings(resync_seconds=3600)) as controller:
        cluster.seed(example('slos/llm-availability.yaml'))
        await cluster.until(lambda: settled(cluster, SLOS, 'llm-availability', 'team-a'))
        assert slo_groups(cluster, 'team-a', '30d')
        cluster.patch(SLOS, 'llm-availability', 'team-a', {'spec': {'window': '7d'}})
        await cluster.until(lambda: (live := handled(cluster, SLOS, 'llm-availability', 'team-a')) and
                            live['metadata']['generation'] == 2 and not slo_groups(cluster, 'team-a', '30d'), timeout=60)
        await controller_resync(controller)
        live = cluster.get(SLOS, 'llm-availability', 'team-a')
        assert live['status']['observedGeneration'] == 2
        assert slo_groups(cluster, 'team-a', '30d') == []
        assert slo_groups(cluster, 'team-a', '7d')


async def controller_resync(controller) -> None:
    await asyncio.to_thread(controller.resync)


def writes_by(cluster, agent: str) -> list[str]:
    return [f'{r.method} {r.url}' for r in cluster.requests
            if r.method in WRITES and r.headers.get('User-Agent') == agent]


async def test_a_paused_peer_writes_nothing():
    """kopf pauses the watch streams of a replica when a peer of higher priority appears; the
    resync ran on regardless, re-creating the objects of a resource deleted meanwhile."""
    async with cluster_context(operator_peering=True) as cluster:
        cluster.seed({'apiVersion': 'kopf.dev/v1', 'kind': 'ClusterKopfPeering', 'metadata': {'name': PEERING}})
        fast = Settings(resync_seconds=0.2, peering_name=PEERING)
        async with contextlib.AsyncExitStack() as stack:
            low = await stack.enter_async_context(
                running_operator(cluster, fast, identity='replica-low', priority=1, user_agent='replica-low'))
            cluster.seed(threshold_rule('calls', 'sum(rate(llm_calls_total[5m]))'))
            await cluster.until(lambda: settled(cluster, ALERTRULES, 'calls', 'team-a'))
            await stack.enter_async_context(
                running_operator(cluster, fast, identity='replica-high', priority=100, user_agent='replica-high'))
            await cluster.until(lambda: low.metrics.resyncs.labels('paused')._value.get() >= 1, timeout=60)
            paused_since = len(writes_by(cluster, 'replica-low'))
            cluster.delete(ALERTRULES, 'calls', 'team-a')
            cluster.seed(threshold_rule('tokens', 'sum(rate(llm_tokens_total[5m]))'))
            await cluster.until(lambda: names(cluster, PROMETHEUSRULES, 'team-a') == ['alertrule-tokens'] and
                                settled(cluster, ALERTRULES, 'tokens', 'team-a'), timeout=60)
            rounds = low.metrics.resyncs.labels('paused')._value.get()
            await cluster.until(lambda: low.metrics.resyncs.labels('paused')._value.get() >= rounds + 3, timeout=60)
            assert names(cluster, PROMETHEUSRULES, 'team-a') == ['alertrule-tokens']
            assert writes_by(cluster, 'replica-low')[paused_since:] == []
            assert writes_by(cluster, 'replica-high')  # the active peer did the work


def peer(priority: int, seconds_ago: float = 0, lifetime: int = 60) -> dict:
    lastseen = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds_ago)
    return {'priority': priority, 'lifetime': lifetime, 'lastseen': lastseen.isoformat()}


# (priority, last seen seconds ago) of the other peer; peers are made in the test, since the
# lastseen of one made at collection time may be past its lifetime when a busy suite gets to it.
@pytest.mark.parametrize('other, paused', [
    (None, False),
    ((5, 0), False),      # lower priority: we stay active
    ((20, 0), True),      # higher: kopf pauses us
    ((10, 0), True),      # a tie: kopf pauses every peer
    ((20, 120), False),   # a dead peer counts for nothing
])
def test_a_replica_is_paused_exactly_when_kopf_pauses_it(other, paused):
    status = {'me': peer(10), **({'b': peer(other[0], seconds_ago=other[1])} if other else {})}
    reads = []
    view = PeeringView(lambda name, ns: reads.append((name, ns)) or status, 'observatory-ha', 'me', 10)
    assert view.paused() is paused
    assert view.paused() is paused and len(reads) == 1  # cached within its ttl
    assert PeeringView(lambda name, ns: status, None, 'me', 10).paused() is False  # standalone


def test_a_namespaced_replica_reads_the_peering_object_of_every_watched_namespace():
    reads = []
    view = PeeringView(lambda name, ns: reads.append(ns) or ({'b': peer(20)} if ns == 'team-b' else {}),
                       'observatory-ha', 'me', 10, namespaces=('team-a', 'team-b'))
    assert view.paused() is True
    assert reads == ['team-a', 'team-b']


async def test_a_membership_whose_status_write_was_lost_is_left_by_the_next_resync():
    """The status names the shared groups an SLO is in; when its write is lost (the operator stops
    before a retry) and the period changes again, the group of the lost status kept the SLO's part
    for good: its alerts ran beside the new ones."""
    async with cluster_context() as cluster:
        async with running_operator(cluster, Settings(resync_seconds=3600)):
            cluster.seed(example('slos/llm-availability.yaml'))
            await cluster.until(lambda: settled(cluster, SLOS, 'llm-availability', 'team-a'))
            cluster.fail('PATCH', r'/slos/llm-availability/status$', status=500, times=1000)
            cluster.patch(SLOS, 'llm-availability', 'team-a', {'spec': {'window': '7d'}})
            await cluster.until(lambda: slo_groups(cluster, 'team-a', '7d') and not slo_groups(cluster, 'team-a', '30d'))
        cluster.emulator._faults.clear()
        assert cluster.get(SLOS, 'llm-availability', 'team-a')['status']['observedGeneration'] == 1  # the lost write
        cluster.patch(SLOS, 'llm-availability', 'team-a', {'spec': {'window': '28d'}})
        async with running_operator(cluster, Settings(resync_seconds=0.3)) as controller:
            await cluster.until(lambda: at_generation(cluster, SLOS, 'llm-availability', 'team-a', 3))
            assert slo_groups(cluster, 'team-a', '28d')
            # The round leaves the group mid-way and counts itself at its end: wait for both.
            await cluster.until(lambda: slo_groups(cluster, 'team-a', '7d') == []
                                and controller.metrics.resyncs.labels('done')._value.get() >= 1, timeout=60)


async def test_a_round_under_way_when_the_operator_stops_breaks_off_and_is_waited_for():
    """A round runs in a thread, which cancelling the loop's task does not stop: it went on after
    the operator had stopped, writing from kopf's stopped view (e.g. while the next replica starts)."""
    entered, gate = threading.Event(), threading.Event()
    async with cluster_context() as cluster:
        async with running_operator(cluster, Settings(resync_seconds=0.3)) as controller:
            for name in ('a', 'b'):
                cluster.seed(threshold_rule(name, 'sum(rate(llm_calls_total[5m]))'))
            await cluster.until(lambda: all(settled(cluster, ALERTRULES, n, 'team-a') for n in 'ab'), timeout=60)
            get_resource = controller.kube.get_resource

            # The resync reads each resource before reconciling it. Held at 'a' only: a round under
            # way when this is put in place may be past it, and would be held at 'b' instead.
            def held(plural, namespace, name):
                if name == 'a' and not entered.is_set():
                    entered.set()
                    gate.wait(60)
                return get_resource(plural, namespace, name)

            controller.kube.get_resource = held
            await cluster.until(entered.is_set, timeout=60)  # the round is at 'a'
            cluster.delete(PROMETHEUSRULES, 'alertrule-b', 'team-a')  # drift the round would repair at 'b'
            asyncio.get_running_loop().call_later(1.0, gate.set)
        assert gate.is_set()  # the stop waited for the round
        await asyncio.sleep(1.0)
        assert cluster.get(PROMETHEUSRULES, 'alertrule-b', 'team-a') is None  # it broke off before 'b'
