"""Soak (issue 12): resources created, changed (SLO periods too), deleted and re-created under API
faults, dropped watches and operator restarts, with a resync every half second racing the handlers;
once settled, the cluster holds exactly what `observatory render` makes of the live resources: no
orphan, no stale part or membership, no stale status."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest
from controller_harness import (
    ALERTRULES,
    AMCONFIGS,
    PROMETHEUSRULES,
    SLOS,
    example,
    handled,
    running_operator,
)
from k8s.emulator import cluster_context
from observatory.compile import compile_bundle, compile_resource, shared_objects
from observatory.controller.settings import Settings
from observatory.models import parse_resource

NAMESPACES = ('team-a', 'team-b')
TEMPLATES = {SLOS: ['slos/llm-availability.yaml', 'slos/llm-latency.yaml'],
             ALERTRULES: ['alertrules/llm-error-rate.yaml', 'alertrules/llm-hourly-budget.yaml',
                          'alertrules/llm-p95-latency.yaml']}
PERIODS = ('7d', '28d', '30d')
FAULTS = [('PATCH', r'/prometheusrules/', 500), ('POST', r'/prometheusrules', 503), ('PUT', r'/prometheusrules/', 409),
          ('GET', r'/prometheusrules/', 503), ('PATCH', r'/status$', 500), ('DELETE', r'/prometheusrules/', 500),
          ('PATCH', r'/alertmanagerconfigs/', 500)]
OPERATIONS = 160
RESTART_EVERY = 40


def live_resources(cluster) -> list[dict]:
    return [o for plural in (ALERTRULES, SLOS) for ns in NAMESPACES for o in cluster.list(plural, ns)]


def all_settled(cluster) -> bool:
    return all(handled(cluster, ALERTRULES if o['kind'] == 'AlertRule' else SLOS, o['metadata']['name'],
                       o['metadata']['namespace']) for o in live_resources(cluster))


def generated(cluster) -> dict[tuple[str, str, str], dict]:
    return {(o['kind'], o['metadata']['namespace'], o['metadata']['name']): o
            for plural in (PROMETHEUSRULES, AMCONFIGS) for ns in NAMESPACES for o in cluster.list(plural, ns)}


def mutate(rng: random.Random, cluster, created: dict[tuple[str, str, str], int]) -> None:
    plural = rng.choice([SLOS, ALERTRULES])
    namespace = rng.choice(NAMESPACES)
    index = rng.randrange(6)
    template = TEMPLATES[plural][index % len(TEMPLATES[plural])]
    name = f"{template.split('/')[1].removesuffix('.yaml')}-{index}"
    key = (plural, namespace, name)
    exists = cluster.get(plural, name, namespace) is not None
    action = rng.random()
    if not exists:
        obj = example(template, name=name, namespace=namespace)
        if plural == SLOS:
            obj['spec']['window'] = rng.choice(PERIODS)
        cluster.seed(obj)
        created[key] = created.get(key, 0) + 1
    elif action < 0.3:
        cluster.delete(plural, name, namespace)
    elif plural == SLOS:
        cluster.patch(plural, name, namespace, {'spec': {'window': rng.choice(PERIODS),
                                                          'objective': rng.choice([99.0, 99.5, 99.9])}})
    else:
        cluster.patch(plural, name, namespace, {'spec': {'severity': rng.choice(['warning', 'critical', 'info'])}})


@pytest.mark.parametrize('seed', [1, 2])
async def test_after_churn_faults_and_restarts_the_cluster_equals_the_render_of_the_live_resources(seed):
    rng = random.Random(seed)
    settings = Settings(resync_seconds=0.5)
    created: dict[tuple[str, str, str], int] = {}
    async with cluster_context() as cluster:
        for namespace in NAMESPACES:
            cluster.seed({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': namespace}})
        done = 0
        while done < OPERATIONS:
            async with running_operator(cluster, settings):
                for _ in range(RESTART_EVERY):
                    if rng.random() < 0.1:
                        method, path, status = rng.choice(FAULTS)
                        cluster.fail(method, path, status=status, times=rng.randint(1, 3))
                    if rng.random() < 0.03:
                        cluster.drop_watches(abrupt=True)
                    mutate(rng, cluster, created)
                    done += 1
                    await asyncio.sleep(0)  # yield to the operator between changes (no wait on luck: the end state is awaited)
            # The operator stops here with whatever it was doing unfinished, and starts again.
        cluster.emulator._faults.clear()
        async with running_operator(cluster, settings) as controller:
            await cluster.until(lambda: all_settled(cluster), timeout=60)
            resources = live_resources(cluster)
            parsed = {o['metadata']['uid']: parse_resource({k: v for k, v in o.items() if k != 'status'}) for o in resources}
            expected = {(o['kind'], o['metadata']['namespace'], o['metadata']['name']): o
                        for o in compile_bundle(parsed.values())}
            # Wait for the writes of the last round to land (a resync may still be repairing: an SLO's
            # group may be written whole before the SLO's own reconcile reports it in its status).
            with contextlib.suppress(TimeoutError):  # the assertions below show what differs
                await cluster.until(lambda: set(generated(cluster)) == set(expected) and statuses_match(cluster, parsed),
                                    timeout=30)
            await cluster.until(lambda: controller.metrics.resyncs.labels('done')._value.get() >= 2, timeout=30)
            live = generated(cluster)
            assert sorted(live) == sorted(expected), 'orphans or missing objects'
            for key, want in expected.items():
                assert live[key]['spec'] == want['spec'], key
                assert live[key]['metadata']['labels'] == want['metadata']['labels'], key
            # Every object is owned by exactly the resources it is made for (parts and shared objects too).
            for key, obj in live.items():
                owners = {uid for uid, resource in parsed.items()
                          if any((o['kind'], o['metadata']['namespace'], o['metadata']['name']) == key
                                 for o in compile_resource(resource) + shared_objects([resource]))}
                assert {r['uid'] for r in obj['metadata']['ownerReferences']} == owners, key
            # Statuses name what each resource contributes to, at its current generation.
            for resource in live_resources(cluster):
                meta, status = resource['metadata'], resource['status']
                assert sorted(status['prometheusRules']) == contributes_to(parsed[meta['uid']]), meta['name']
                assert status['observedGeneration'] == meta['generation']
    assert sum(created.values()) > len(created)  # names were re-created after deletion


def contributes_to(resource) -> list[str]:
    return sorted(o['metadata']['name'] for o in compile_resource(resource) + shared_objects([resource])
                  if o['kind'] == 'PrometheusRule')


def statuses_match(cluster, parsed: dict) -> bool:
    return all(sorted((o.get('status') or {}).get('prometheusRules') or []) == contributes_to(parsed[o['metadata']['uid']])
               for o in live_resources(cluster) if o['metadata']['uid'] in parsed)
