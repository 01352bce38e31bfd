"""SLO groups computed whole (issue 14 scope 2): every shared SLO object is written from all the
SLOs that need it, by writers that may overlap (two handlers, two replicas, the garbage
collector), and converges to `observatory render` of the live SLOs."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from typing import Any

from controller_harness import (
    PROMETHEUSRULES,
    SLOS,
    condition,
    example,
    handled,
    running_operator,
)
from k8s.emulator import cluster_context, running_cluster
from observatory.compile import CompileOptions, compile_bundle
from observatory.compile.slo import slo_shard
from observatory.controller.handled import HandledSpecs
from observatory.controller.kube import Kube
from observatory.controller.settings import Settings
from observatory.controller.slo_groups import SloGroups
from observatory.conventions import Conventions
from observatory.models import parse_resource

# Three names of one group of team-a (30d): svc-104 < svc-113 < svc-132.
FIRST, SECOND, THIRD = 'svc-104-availability', 'svc-113-availability', 'svc-132-availability'
GROUP = f'observatory-slos-30d-{slo_shard(FIRST):02d}'


def slos_in(cluster: Any, name: str = GROUP) -> list[str]:
    obj = cluster.get(PROMETHEUSRULES, name, 'team-a')
    return list(dict.fromkeys(r['labels']['slo'] for g in obj['spec']['groups'] for r in g['rules'] if 'slo' in r['labels'])) if obj else []


def alerting_on(cluster: Any, slo: str, name: str = GROUP) -> int:
    """How many alert rules of the group read `slo` (alone, or among others alerting alike)."""
    rules = cluster.get(PROMETHEUSRULES, name, 'team-a')['spec']['groups'][0]['rules']
    return sum(slo in re.search(r'slo=~?"([^"]*)"', r['expr']).group(1).split('|') for r in rules if 'alert' in r)


def owners_of(cluster: Any, name: str = GROUP) -> list[str]:
    obj = cluster.get(PROMETHEUSRULES, name, 'team-a')
    return sorted(r['name'] for r in obj['metadata']['ownerReferences']) if obj else []


def rendered(cluster: Any, name: str = GROUP) -> dict[str, Any] | None:
    """What `observatory render` makes of the live SLOs of team-a: the object `name`."""
    slos = [parse_resource({k: v for k, v in o.items() if k != 'status'}) for o in cluster.list(SLOS, 'team-a')]
    return next((o for o in compile_bundle(slos) if o['metadata']['name'] == name), None)


def matches_render(cluster: Any, name: str = GROUP) -> bool:
    live, want = cluster.get(PROMETHEUSRULES, name, 'team-a'), rendered(cluster, name)
    return (live is None) == (want is None) and (live is None or live['spec'] == want['spec'])


async def test_two_slos_of_one_group_changed_at_once_converge_to_the_render():
    """Both handlers run at once in kopf's threads, each writing the whole group; their writes
    conflict (a 409 on the first PUT, as another writer would cause), and whichever writes last
    computed last, from an index that holds both changes."""
    async with cluster_context() as cluster, running_operator(cluster):
        for name in (FIRST, SECOND):
            cluster.seed(example('slos/llm-availability.yaml', name=name))
        await cluster.until(lambda: handled(cluster, SLOS, FIRST, 'team-a') and handled(cluster, SLOS, SECOND, 'team-a'))
        cluster.fail('PUT', rf'/prometheusrules/{GROUP}$', status=409, times=1)
        cluster.patch(SLOS, FIRST, 'team-a', {'spec': {'objective': 99.9}})
        cluster.patch(SLOS, SECOND, 'team-a', {'spec': {'objective': 99.0}})
        await cluster.until(lambda: all((o := handled(cluster, SLOS, n, 'team-a')) and o['metadata']['generation'] == 2
                                        for n in (FIRST, SECOND)))
        await cluster.until(lambda: matches_render(cluster))
        assert owners_of(cluster) == [FIRST, SECOND]
        assert any(r.method == 'PUT' and cluster.answered(r) == 409 for r in cluster.requests)


async def test_an_invalid_slo_keeps_its_last_good_rules_in_its_group_also_across_a_restart():
    """An SLO turned invalid is written nothing; its group, written whole again for another SLO
    of it, and by the next operator, keeps the invalid SLO's last good rules."""
    async with cluster_context() as cluster:
        async with running_operator(cluster):
            for name in (FIRST, SECOND):
                cluster.seed(example('slos/llm-availability.yaml', name=name))
            await cluster.until(lambda: slos_in(cluster) == [FIRST, SECOND] and handled(cluster, SLOS, FIRST, 'team-a'))
            last_good = [r for r in cluster.get(PROMETHEUSRULES, GROUP, 'team-a')['spec']['groups'][0]['rules']
                         if r['labels'].get('slo') == FIRST]
            cluster.patch(SLOS, FIRST, 'team-a', {'spec': {'labels': {'namespace': 'kube-system'}}})
            await cluster.until(lambda: condition(cluster.get(SLOS, FIRST, 'team-a'), 'Valid').get('status') == 'False')
            cluster.patch(SLOS, SECOND, 'team-a', {'spec': {'objective': 99.9}})
            await cluster.until(lambda: '0.999' in json.dumps(cluster.get(PROMETHEUSRULES, GROUP, 'team-a')))
            kept = [r for r in cluster.get(PROMETHEUSRULES, GROUP, 'team-a')['spec']['groups'][0]['rules']
                    if r['labels'].get('slo') == FIRST]
            assert kept == last_good
            # Its alerts too: SECOND, changed, alerts another way now, and FIRST keeps its page and ticket.
            assert alerting_on(cluster, FIRST) == alerting_on(cluster, SECOND) == 2
            assert owners_of(cluster) == [FIRST, SECOND]
            await cluster.until(lambda: handled(cluster, SLOS, SECOND, 'team-a'))
        cluster.clear_requests()
        async with running_operator(cluster) as controller:
            await cluster.until(lambda: controller.metrics.registry.get_sample_value(
                'observatory_reconcile_total', {'kind': 'SLO', 'result': 'invalid'}) == 1)
            await cluster.until(lambda: (controller.metrics.registry.get_sample_value(
                'observatory_reconcile_total', {'kind': 'SLO', 'result': 'unchanged'}) or 0) >= 1)
            await asyncio.to_thread(controller.resync)
            assert [r for r in cluster.get(PROMETHEUSRULES, GROUP, 'team-a')['spec']['groups'][0]['rules']
                    if r['labels'].get('slo') == FIRST] == last_good
            assert alerting_on(cluster, FIRST) == 2
            assert not cluster.write_counts().get('prometheusrules')  # a restart writes nothing
        # Fixed, it is written from its spec again.
        cluster.patch(SLOS, FIRST, 'team-a', {'spec': {'labels': None}})
        async with running_operator(cluster):
            await cluster.until(lambda: matches_render(cluster))


def seeded_slos(cluster: Any, *names: str) -> list[dict[str, Any]]:
    cluster.seed({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': 'team-a'}})
    for name in names:
        cluster.seed(example('slos/llm-availability.yaml', name=name))
    return [cluster.get(SLOS, name, 'team-a') for name in names]


class Index(dict):
    """A stand-in for kopf's index: key -> the values of every SLO indexed under it."""

    def __init__(self, groups: SloGroups, bodies: list[dict[str, Any]]):
        super().__init__()
        for body in bodies:
            for key, value in groups.index_entry(body).items():
                self.setdefault(key, []).append(value)


def replica(cluster: Any, bodies: list[dict[str, Any]]) -> SloGroups:
    groups = SloGroups(Kube(cluster.api_client(), Conventions()), CompileOptions())
    groups.bind(Index(groups, bodies))
    return groups


def test_two_replicas_writing_one_group_at_once_end_with_the_group_of_the_newer_index():
    """Replica A lists the namespace (no group yet); replica B, whose index is a change behind,
    creates the group; A's create then fails (409 AlreadyExists): A reads the group again, and
    replaces it with the group of its own index, conditional on what it read."""
    with running_cluster() as cluster:
        first, second = seeded_slos(cluster, FIRST, SECOND)
        newer = copy.deepcopy(first)
        newer['spec']['objective'], newer['metadata']['generation'] = 99.9, 2
        a, b = replica(cluster, [newer, second]), replica(cluster, [first, second])
        listed = a._kube.list_shared

        def b_writes_meanwhile(namespace: str) -> list[dict[str, Any]]:
            found = listed(namespace)
            b.sync('team-a', second['metadata']['uid'], [('slos', 'team-a', '30d', f'{slo_shard(FIRST):02d}')])
            return found

        a._kube.list_shared = b_writes_meanwhile
        a.sync('team-a', newer['metadata']['uid'], [('slos', 'team-a', '30d', f'{slo_shard(FIRST):02d}')])
        live = cluster.get(PROMETHEUSRULES, GROUP, 'team-a')
        want = next(o for o in compile_bundle([parse_resource(newer), parse_resource(second)]) if o['metadata']['name'] == GROUP)
        assert live['spec'] == want['spec']
        assert sorted(r['uid'] for r in live['metadata']['ownerReferences']) == \
            sorted([first['metadata']['uid'], second['metadata']['uid']])
        assert ('POST', 409) in writes(cluster) and ('PUT', 200) in writes(cluster)


def test_a_group_another_writer_changed_since_is_read_again_not_overwritten_blindly():
    """The garbage collector (or anyone) changes the group after this replica wrote it: the next
    write, at the resourceVersion this replica knows, is refused (409); it reads the group again
    and writes it whole."""
    with running_cluster() as cluster:
        first, second = seeded_slos(cluster, FIRST, SECOND)
        key = ('slos', 'team-a', '30d', f'{slo_shard(FIRST):02d}')
        a = replica(cluster, [first, second])
        a.sync('team-a', first['metadata']['uid'], [key])
        cluster.patch(PROMETHEUSRULES, GROUP, 'team-a', {'metadata': {'labels': {'edited': 'by-hand'}},
                                                         'spec': {'groups': [{'name': 'x', 'rules': []}]}})
        newer = copy.deepcopy(first)
        newer['spec']['objective'], newer['metadata']['generation'] = 99.9, 2
        a.bind(Index(a, [newer, second]))
        a.sync('team-a', first['metadata']['uid'], [key])
        live = cluster.get(PROMETHEUSRULES, GROUP, 'team-a')
        want = next(o for o in compile_bundle([parse_resource(newer), parse_resource(second)]) if o['metadata']['name'] == GROUP)
        assert live['spec'] == want['spec']
        assert [w for w in writes(cluster) if w[0] == 'PUT'] == [('PUT', 409), ('PUT', 200)]


def writes(cluster: Any) -> list[tuple[str, int | None]]:
    """(method, answer) of every PrometheusRule write, in order."""
    return [(r.method, cluster.answered(r)) for r in cluster.requests
            if r.resource is not None and r.resource.plural == 'prometheusrules' and r.method in ('POST', 'PUT', 'DELETE')]


async def test_an_slo_deleted_while_the_watch_was_away_leaves_its_group_at_the_next_resync():
    """kopf drops an SLO from its index on the DELETED event; a watch that resumes after
    compaction lists again and synthesises no event for what vanished (kopf/_cogs/clients/
    watching.py continuous_watch), so the index kept the SLO and every write of its group kept
    its rules, beside an owner reference to nothing. The resync, finding it gone, also takes it off
    its list and out of kopf's memory of what it handled."""
    memory = HandledSpecs()
    async with cluster_context() as cluster, running_operator(cluster, Settings(resync_seconds=0.3), handled=memory) as controller:
        for name in (FIRST, SECOND):
            cluster.seed(example('slos/llm-availability.yaml', name=name))
        await cluster.until(lambda: slos_in(cluster) == [FIRST, SECOND] and handled(cluster, SLOS, SECOND, 'team-a'))
        # The SLO watch stalls (then fails) while the SLO goes and the history is compacted.
        cluster.hang('GET', r'/v1alpha1/slos$', seconds=1.0, times=1)
        cluster.drop_watches(abrupt=True)
        await cluster.until(lambda: any(r.method == 'GET' and r.params.get('watch') == 'true' and cluster.answered(r) is None
                                        and r.resource is not None and r.resource.plural == 'slos' for r in cluster.requests))
        gone = cluster.get(SLOS, FIRST, 'team-a')['metadata']['uid']
        cluster.delete(SLOS, FIRST, 'team-a')
        cluster.compact()
        await cluster.until(lambda: owners_of(cluster) == [SECOND] and slos_in(cluster) == [SECOND], timeout=60)
        assert matches_render(cluster)
        assert controller.groups.indexed('team-a') == {cluster.get(SLOS, SECOND, 'team-a')['metadata']['uid']}
        await cluster.until(lambda: len(memory) == 1)
        assert gone not in controller.groups._compiled  # nor its rules, compiled once per generation
