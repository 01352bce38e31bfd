"""AlertRules and SLOs reconciled into PrometheusRules and AlertmanagerConfigs in an (emulated) cluster."""

from __future__ import annotations

from controller_harness import (
    ALERTRULES,
    AMCONFIGS,
    PROMETHEUSRULES,
    SLOS,
    condition,
    example,
    running_operator,
    settled,
)
from k8s.emulator import cluster_context
from observatory.compile import compile_resource
from observatory.compile.rules import count_rules
from observatory.models import parse_resource


async def test_create_generates_owned_objects_with_rule_selector_labels():
    rule = example('alertrules/llm-error-rate.yaml')
    slo = example('slos/llm-availability.yaml')
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.seed(rule)
        cluster.seed(slo)
        live_rule = await cluster.until(lambda: settled(cluster, ALERTRULES, 'llm-error-rate', 'team-a'))
        live_slo = await cluster.until(lambda: settled(cluster, SLOS, 'llm-availability', 'team-a'))
        for live, plural_kind in ((live_rule, 'alertrule'), (live_slo, 'slo')):
            expected = compile_resource(parse_resource({k: v for k, v in live.items() if k != 'status'}))
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
