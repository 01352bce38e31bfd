"""RulesLoaded against Prometheus objects in the cluster; periodic resync repairs and refreshes."""

from __future__ import annotations

from controller_harness import (
    ALERTRULES,
    PROMETHEUSES,
    PROMETHEUSRULES,
    condition,
    example,
    running_operator,
    settled,
)
from k8s.emulator import cluster_context
from observatory.controller.settings import Settings


def prometheus(name: str, rule_selector, namespace_selector=None) -> dict:
    spec = {'ruleSelector': rule_selector}
    if namespace_selector is not None:
        spec['ruleNamespaceSelector'] = namespace_selector
    return {'apiVersion': 'monitoring.coreos.com/v1', 'kind': 'Prometheus',
            'metadata': {'name': name, 'namespace': 'monitoring'}, 'spec': spec}


async def test_rules_loaded_names_what_is_missing_and_follows_the_cluster():
    def loaded() -> dict:
        return condition(cluster.get(ALERTRULES, 'llm-error-rate', 'team-a'), 'RulesLoaded')

    async with cluster_context() as cluster, running_operator(cluster, Settings(resync_seconds=0.2)):
        cluster.seed(prometheus('k8s', {'matchLabels': {'release': 'prometheus'}}, {}))
        cluster.seed(prometheus('team', {}, {'matchLabels': {'team': 'a'}}))
        cluster.seed(example('alertrules/llm-error-rate.yaml'))
        await cluster.until(lambda: settled(cluster, ALERTRULES, 'llm-error-rate', 'team-a'))
        cond = loaded()
        assert (cond['status'], cond['reason']) == ('False', 'NotSelected')
        assert 'monitoring/k8s ruleSelector needs the rule to have release=prometheus' in cond['message']
        assert 'monitoring/team ruleNamespaceSelector needs namespace team-a to have team=a' in cond['message']
        # Labelling the namespace is seen by the next resync, without any change to the AlertRule.
        cluster.patch('v1/namespaces', 'team-a', None, {'metadata': {'labels': {'team': 'a'}}})
        await cluster.until(lambda: loaded().get('status') == 'True')
        assert loaded()['message'] == 'Prometheus monitoring/team selects PrometheusRule team-a/alertrule-llm-error-rate'
        cluster.delete(PROMETHEUSES, 'team', 'monitoring')
        cluster.delete(PROMETHEUSES, 'k8s', 'monitoring')
        await cluster.until(lambda: loaded().get('reason') == 'NoPrometheus')
        assert loaded()['status'] == 'Unknown'


async def test_resync_restores_a_generated_object_deleted_by_hand():
    async with cluster_context() as cluster, running_operator(cluster, Settings(resync_seconds=0.2)):
        cluster.seed(example('alertrules/llm-error-rate.yaml'))
        await cluster.until(lambda: settled(cluster, ALERTRULES, 'llm-error-rate', 'team-a'))
        original = cluster.get(PROMETHEUSRULES, 'alertrule-llm-error-rate', 'team-a')
        cluster.delete(PROMETHEUSRULES, 'alertrule-llm-error-rate', 'team-a')
        restored = await cluster.until(lambda: cluster.get(PROMETHEUSRULES, 'alertrule-llm-error-rate', 'team-a'))
        assert restored['spec'] == original['spec']
        assert restored['metadata']['uid'] != original['metadata']['uid']
