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
        await cluster.until(lambda: loaded().get('reason') == 'Selected')
        assert loaded()['status'] == 'Unknown'  # selected, but whether it loaded them is not known
        assert loaded()['message'].startswith(
            'Prometheus monitoring/team selects PrometheusRule team-a/alertrule-llm-error-rate; ')
        cluster.delete(PROMETHEUSES, 'team', 'monitoring')
        cluster.delete(PROMETHEUSES, 'k8s', 'monitoring')
        await cluster.until(lambda: loaded().get('reason') == 'NoPrometheus')
        assert loaded()['status'] == 'Unknown'


async def test_what_prometheus_operator_reports_of_the_rules_is_what_rules_loaded_says():
    """prometheus-operator (feature gate StatusForConfigurationResources) writes whether each
    Prometheus accepted a PrometheusRule into its status.bindings; played here as it writes them."""
    def loaded() -> dict:
        return condition(cluster.get(ALERTRULES, 'llm-error-rate', 'team-a'), 'RulesLoaded')

    def report(status: str, message: str = '') -> None:
        rule = cluster.get(PROMETHEUSRULES, 'alertrule-llm-error-rate', 'team-a')
        accepted = {'type': 'Accepted', 'status': status, 'reason': 'InvalidConfiguration' if message else '',
                    'message': message, 'observedGeneration': rule['metadata']['generation'],
                    'lastTransitionTime': '2026-12-01T10:00:00Z'}
        cluster.patch(PROMETHEUSRULES, 'alertrule-llm-error-rate', 'team-a', {'status': {'bindings': [
            {'group': 'monitoring.coreos.com', 'resource': 'prometheuses', 'name': 'k8s', 'namespace': 'monitoring',
             'conditions': [accepted]}]}}, sub='status')

    async with cluster_context() as cluster, running_operator(cluster, Settings(resync_seconds=0.2)):
        cluster.seed(prometheus('k8s', {}, {}))
        cluster.seed(example('alertrules/llm-error-rate.yaml'))
        await cluster.until(lambda: loaded().get('reason') == 'Selected')
        report('False', 'group "llm-error-rate": 1:5: parse error')
        await cluster.until(lambda: loaded().get('reason') == 'Rejected')
        assert loaded()['status'] == 'False'
        assert loaded()['message'] == ('Prometheus monitoring/k8s rejected PrometheusRule team-a/alertrule-llm-error-rate: '
                                       'InvalidConfiguration: group "llm-error-rate": 1:5: parse error')
        report('True')
        await cluster.until(lambda: loaded().get('reason') == 'Accepted')
        assert loaded()['status'] == 'True'


async def test_resync_restores_a_generated_object_deleted_by_hand():
    async with cluster_context() as cluster, running_operator(cluster, Settings(resync_seconds=0.2)):
        cluster.seed(example('alertrules/llm-error-rate.yaml'))
        await cluster.until(lambda: settled(cluster, ALERTRULES, 'llm-error-rate', 'team-a'))
        original = cluster.get(PROMETHEUSRULES, 'alertrule-llm-error-rate', 'team-a')
        cluster.delete(PROMETHEUSRULES, 'alertrule-llm-error-rate', 'team-a')
        restored = await cluster.until(lambda: cluster.get(PROMETHEUSRULES, 'alertrule-llm-error-rate', 'team-a'))
        assert restored['spec'] == original['spec']
        assert restored['metadata']['uid'] != original['metadata']['uid']
