"""AlertRules and SLOs reconciled into PrometheusRules and AlertmanagerConfigs in an (emulated) cluster."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from controller_harness import (
    ALERTRULES,
    AMCONFIGS,
    EVENTS,
    PROMETHEUSRULES,
    SLOS,
    at_generation,
    condition,
    example,
    expected_objects,
    handled,
    names,
    running_operator,
    settled,
    threshold_rule,
)
from k8s.emulator import cluster_context
from observatory.compile.rules import count_rules
from observatory.controller.settings import Settings

WINDOWS_30D = 'observatory-slo-windows-30d'
PRICES = 'observatory-llm-prices'


async def test_create_generates_owned_objects_with_rule_selector_labels():
    rule = example('alertrules/llm-error-rate.yaml')
    slo = example('slos/llm-availability.yaml')
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.seed(rule)
        cluster.seed(slo)
        live_rule = await cluster.until(lambda: settled(cluster, ALERTRULES, 'llm-error-rate', 'team-a'))
        live_slo = await cluster.until(lambda: settled(cluster, SLOS, 'llm-availability', 'team-a'))
        for live, plural_kind in ((live_rule, 'alertrule'), (live_slo, 'slo')):
            expected = list(expected_objects(live).values())
            name = f"{plural_kind}-{live['metadata']['name']}"
            prometheus_rule = cluster.get(PROMETHEUSRULES, name, 'team-a')
            config = cluster.get(AMCONFIGS, name, 'team-a')
            for generated in (prometheus_rule, config):
                assert generated['metadata']['ownerReferences'] == [{
                    'apiVersion': 'observatory.dev/v1alpha1', 'kind': live['kind'], 'name': live['metadata']['name'],
                    'uid': live['metadata']['uid'], 'controller': True, 'blockOwnerDeletion': True}]
            assert prometheus_rule['metadata']['labels']['release'] == 'kube-prometheus-stack'
            assert prometheus_rule['spec'] == next(o for o in expected if o['kind'] == 'PrometheusRule')['spec']
            assert config['spec'] == next(o for o in expected if o['kind'] == 'AlertmanagerConfig')['spec']
            status = live['status']
            recording, alerting = count_rules(expected)
            assert (status['prometheusRules'], status['alertmanagerConfig']) == ([name], name)
            assert (status['recordingRules'], status['alertingRules']) == (recording, alerting)
            assert alerting > 0
            assert condition(live, 'Ready')['status'] == 'True'
            assert condition(live, 'Valid') | {'lastTransitionTime': None} == {
                'type': 'Valid', 'status': 'True', 'reason': 'Compiled', 'message': '',
                'observedGeneration': 1, 'lastTransitionTime': None}
            assert condition(live, 'RulesLoaded')['status'] == 'Unknown'


async def test_update_changes_the_rules_in_place_without_duplicates():
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.seed(example('alertrules/llm-error-rate.yaml'))
        await cluster.until(lambda: settled(cluster, ALERTRULES, 'llm-error-rate', 'team-a'))
        before = cluster.get(PROMETHEUSRULES, 'alertrule-llm-error-rate', 'team-a')
        cluster.patch(ALERTRULES, 'llm-error-rate', 'team-a', {'spec': {'errorRate': {'threshold': 0.2}}})
        live = await cluster.until(lambda: at_generation(cluster, ALERTRULES, 'llm-error-rate', 'team-a', 2))
        after = cluster.get(PROMETHEUSRULES, 'alertrule-llm-error-rate', 'team-a')
        assert after['metadata']['uid'] == before['metadata']['uid']
        assert after['spec'] != before['spec']
        assert after['spec'] == expected_objects(live)['PrometheusRule/alertrule-llm-error-rate']['spec']
        assert names(cluster, PROMETHEUSRULES, 'team-a') == ['alertrule-llm-error-rate']
        assert names(cluster, AMCONFIGS, 'team-a') == ['alertrule-llm-error-rate']
        assert condition(live, 'Ready')['observedGeneration'] == 2


async def test_objects_no_longer_generated_are_pruned_and_others_left_alone():
    # Handlers read what the status names; the resync lists by owner labels and finds the rest.
    async with cluster_context() as cluster, running_operator(cluster, Settings(resync_seconds=0.3)):
        cluster.seed(example('alertrules/llm-error-rate.yaml'))
        live = await cluster.until(lambda: settled(cluster, ALERTRULES, 'llm-error-rate', 'team-a'))
        rule = cluster.get(PROMETHEUSRULES, 'alertrule-llm-error-rate', 'team-a')
        rule['metadata'] = {k: rule['metadata'][k] for k in ('name', 'namespace', 'labels', 'annotations', 'ownerReferences')}
        # As if an earlier, larger spec had been split into a second object.
        cluster.seed({**rule, 'metadata': {**rule['metadata'], 'name': 'alertrule-llm-error-rate-2'}})
        # Same labels, but another owner (a deleted namesake awaiting the garbage collector): not ours.
        foreign_ref = {**rule['metadata']['ownerReferences'][0], 'uid': 'another-uid'}
        cluster.seed({**rule, 'metadata': {**rule['metadata'], 'name': 'alertrule-llm-error-rate-3',
                                           'ownerReferences': [foreign_ref]}})
        cluster.patch(ALERTRULES, 'llm-error-rate', 'team-a', {'spec': {'routing': None}})
        live = await cluster.until(lambda: at_generation(cluster, ALERTRULES, 'llm-error-rate', 'team-a', 2))
        await cluster.until(lambda: 'alertrule-llm-error-rate-2' not in names(cluster, PROMETHEUSRULES, 'team-a'))
        assert names(cluster, PROMETHEUSRULES, 'team-a') == ['alertrule-llm-error-rate', 'alertrule-llm-error-rate-3']
        assert names(cluster, AMCONFIGS, 'team-a') == []
        assert 'alertmanagerConfig' not in live['status']
        assert live['status']['prometheusRules'] == ['alertrule-llm-error-rate']


async def test_delete_and_rename_leave_nothing_behind():
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.seed(example('slos/llm-availability.yaml'))
        # Deleting while kopf still finishes the creation can re-apply the objects after the owner is
        # gone; a real garbage collector deletes such orphans, the emulator's only collects on delete.
        await cluster.until(lambda: handled(cluster, SLOS, 'llm-availability', 'team-a'))
        # A rename is a new resource and the deletion of the old one.
        cluster.seed(example('slos/llm-availability.yaml', name='chat-availability'))
        cluster.delete(SLOS, 'llm-availability', 'team-a')
        await cluster.until(lambda: settled(cluster, SLOS, 'chat-availability', 'team-a'))
        await cluster.until(lambda: names(cluster, PROMETHEUSRULES, 'team-a') == [WINDOWS_30D, 'slo-chat-availability'])
        assert names(cluster, AMCONFIGS, 'team-a') == ['slo-chat-availability']
        cluster.delete(SLOS, 'chat-availability', 'team-a')
        await cluster.until(lambda: not names(cluster, PROMETHEUSRULES, 'team-a') and not names(cluster, AMCONFIGS, 'team-a'))


async def test_invalid_spec_reports_the_field_writes_nothing_and_recovers_when_fixed():
    good, bad = 'sum(rate(llm_calls_total[5m]))', 'up{namespace="kube-system"}'
    async with cluster_context() as cluster, running_operator(cluster) as controller:
        cluster.seed(threshold_rule('calls', good))
        await cluster.until(lambda: handled(cluster, ALERTRULES, 'calls', 'team-a'))
        last_good = cluster.get(PROMETHEUSRULES, 'alertrule-calls', 'team-a')
        cluster.clear_requests()
        cluster.patch(ALERTRULES, 'calls', 'team-a', {'spec': {'threshold': {'expr': bad}}})
        live = await cluster.until(lambda: at_generation(cluster, ALERTRULES, 'calls', 'team-a', 2))
        valid, ready = condition(live, 'Valid'), condition(live, 'Ready')
        assert (valid['status'], valid['reason'], ready['status'], ready['reason']) == ('False', 'InvalidSpec', 'False', 'InvalidSpec')
        assert valid['message'].startswith('spec.threshold.expr: ') and 'own namespace' in valid['message']
        assert live['status']['prometheusRules'] == ['alertrule-calls']  # the last good one, still there
        # No retry loop: after the status and one event, nothing more is written.
        await asyncio.sleep(1.0)
        assert cluster.write_counts() == {'alertrules/status': 1, 'events': 1, 'alertrules': 1}
        assert cluster.get(PROMETHEUSRULES, 'alertrule-calls', 'team-a') == last_good
        assert controller.metrics.registry.get_sample_value(
            'observatory_reconcile_total', {'kind': 'AlertRule', 'result': 'invalid'}) == 1
        warning = [e for e in cluster.list(EVENTS, 'team-a') if e['reason'] == 'InvalidSpec' and e['type'] == 'Warning']
        assert any('spec.threshold.expr' in e['note'] for e in warning)

        cluster.patch(ALERTRULES, 'calls', 'team-a', {'spec': {'threshold': {'expr': 'sum(rate(llm_calls_total[10m]))'}}})
        live = await cluster.until(lambda: at_generation(cluster, ALERTRULES, 'calls', 'team-a', 3))
        assert condition(live, 'Valid')['status'] == condition(live, 'Ready')['status'] == 'True'
        assert '10m' in json.dumps(cluster.get(PROMETHEUSRULES, 'alertrule-calls', 'team-a')['spec'])


async def test_invalid_from_the_start_generates_nothing():
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.seed(threshold_rule('calls', 'sum(rate(x[5m])'))
        live = await cluster.until(lambda: settled(cluster, ALERTRULES, 'calls', 'team-a'))
        assert condition(live, 'Valid')['status'] == 'False'
        assert 'invalid PromQL' in condition(live, 'Valid')['message']
        assert live['status']['prometheusRules'] == []
        assert names(cluster, PROMETHEUSRULES, 'team-a') == []


def owners_of(cluster: Any, name: str) -> list[str]:
    shared = cluster.get(PROMETHEUSRULES, name, 'team-a')
    return sorted(r['name'] for r in shared['metadata']['ownerReferences']) if shared else []


async def test_slo_windows_are_shared_per_period_and_follow_a_changed_period():
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.seed(example('slos/llm-availability.yaml'))
        cluster.seed(example('slos/llm-availability.yaml', name='chat-availability'))
        await cluster.until(lambda: owners_of(cluster, WINDOWS_30D) == ['chat-availability', 'llm-availability'])
        cluster.patch(SLOS, 'chat-availability', 'team-a', {'spec': {'window': '7d'}})
        await cluster.until(lambda: owners_of(cluster, WINDOWS_30D) == ['llm-availability'])
        await cluster.until(lambda: owners_of(cluster, 'observatory-slo-windows-7d') == ['chat-availability'])
        expected = expected_objects(cluster.get(SLOS, 'chat-availability', 'team-a'), shared=True)
        assert cluster.get(PROMETHEUSRULES, 'observatory-slo-windows-7d', 'team-a')['spec'] == \
            expected['PrometheusRule/observatory-slo-windows-7d']['spec']
        cluster.delete(SLOS, 'llm-availability', 'team-a')
        await cluster.until(lambda: cluster.get(PROMETHEUSRULES, WINDOWS_30D, 'team-a') is None)


async def test_shared_price_catalogue_is_owned_by_each_cost_rule_and_goes_with_the_last():
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.seed(example('alertrules/llm-daily-budget.yaml'))
        cluster.seed(example('alertrules/llm-hourly-budget.yaml'))
        await cluster.until(lambda: owners_of(cluster, PRICES) == ['llm-daily-budget', 'llm-hourly-budget'])
        prices = cluster.get(PROMETHEUSRULES, 'observatory-llm-prices', 'team-a')
        assert not any(r.get('controller') for r in prices['metadata']['ownerReferences'])
        assert prices['metadata']['labels']['release'] == 'kube-prometheus-stack'
        # A rule that stops being a cost rule lets go of the catalogue.
        cluster.patch(ALERTRULES, 'llm-hourly-budget', 'team-a',
                      {'spec': {'cost': None, 'groupBy': None, 'errorRate': {'threshold': 0.1}}})
        await cluster.until(lambda: owners_of(cluster, PRICES) == ['llm-daily-budget'])
        cluster.delete(ALERTRULES, 'llm-daily-budget', 'team-a')
        await cluster.until(lambda: cluster.get(PROMETHEUSRULES, 'observatory-llm-prices', 'team-a') is None)
