"""RulesLoaded: what prometheus-operator reports of a PrometheusRule, else whether a Prometheus selects it (pure)."""

from __future__ import annotations

import pytest
from observatory.controller.loading import (
    needs_namespace_labels,
    rules_verdict,
    unmet,
    why_not_selected,
)

RULE_LABELS = {'release': 'kube-prometheus-stack', 'app.kubernetes.io/managed-by': 'observatory'}


def prometheus(name='k8s', namespace='monitoring', **spec) -> dict:
    return {'metadata': {'name': name, 'namespace': namespace}, 'spec': spec}


@pytest.mark.parametrize('selector, labels, problems', [
    ({}, {}, []),
    ({'matchLabels': {'release': 'a'}}, {'release': 'a'}, []),
    ({'matchLabels': {'release': 'a', 'team': 'x'}}, {'release': 'b'}, ['release=a', 'team=x']),
    ({'matchExpressions': [{'key': 'tier', 'operator': 'In', 'values': ['1', '2']}]}, {'tier': '2'}, []),
    ({'matchExpressions': [{'key': 'tier', 'operator': 'In', 'values': ['1', '2']}]}, {}, ['tier In (1, 2)']),
    ({'matchExpressions': [{'key': 'tier', 'operator': 'NotIn', 'values': ['3']}]}, {'tier': '3'}, ['tier NotIn (3)']),
    ({'matchExpressions': [{'key': 'tier', 'operator': 'NotIn', 'values': ['3']}]}, {}, []),
    ({'matchExpressions': [{'key': 'tier', 'operator': 'Exists'}]}, {'tier': ''}, []),
    ({'matchExpressions': [{'key': 'tier', 'operator': 'Exists'}]}, {}, ['tier Exists']),
    ({'matchExpressions': [{'key': 'tier', 'operator': 'DoesNotExist'}]}, {'tier': 'x'}, ['tier DoesNotExist']),
    ({'matchExpressions': [{'key': 'tier', 'operator': 'Typo'}]}, {'tier': 'x'}, ['tier Typo']),
])
def test_label_selector_semantics(selector, labels, problems):
    assert unmet(selector, labels) == problems


def test_null_rule_selector_selects_nothing_and_empty_selects_everything():
    assert why_not_selected(prometheus(), RULE_LABELS, 'monitoring', {}) == \
        'has no ruleSelector, so it loads no PrometheusRule'
    assert why_not_selected(prometheus(ruleSelector={}), RULE_LABELS, 'monitoring', {}) is None


def test_null_namespace_selector_means_the_prometheus_namespace_only():
    own = prometheus(ruleSelector={})
    assert why_not_selected(own, RULE_LABELS, 'monitoring', {}) is None
    assert why_not_selected(own, RULE_LABELS, 'team-a', {}) == \
        'only loads rules from its own namespace monitoring (ruleNamespaceSelector is unset)'
    assert why_not_selected(prometheus(ruleSelector={}, ruleNamespaceSelector={}), RULE_LABELS, 'team-a', {}) is None


def test_namespace_selector_sees_the_namespace_name_label_the_apiserver_sets():
    by_name = prometheus(ruleSelector={}, ruleNamespaceSelector={'matchExpressions': [
        {'key': 'kubernetes.io/metadata.name', 'operator': 'In', 'values': ['team-a']}]})
    assert why_not_selected(by_name, RULE_LABELS, 'team-a', {}) is None
    by_label = prometheus(ruleSelector={}, ruleNamespaceSelector={'matchLabels': {'monitored': 'true'}})
    assert why_not_selected(by_label, RULE_LABELS, 'team-a', {}) == \
        'ruleNamespaceSelector needs namespace team-a to have monitored=true'
    assert why_not_selected(by_label, RULE_LABELS, 'team-a', {'monitored': 'true'}) is None
    assert needs_namespace_labels([by_label]) and not needs_namespace_labels([prometheus(ruleNamespaceSelector={})])


def test_verdict_names_the_selecting_prometheus_or_every_reason():
    picky = prometheus('picky', ruleSelector={'matchLabels': {'release': 'other'}}, ruleNamespaceSelector={})
    loose = prometheus('loose', ruleSelector={}, ruleNamespaceSelector={})
    rules = [rule_object('r', 1)]
    assert rules_verdict([], rules, RULE_LABELS, {}).status == 'Unknown'
    verdict = rules_verdict([picky, loose], rules, RULE_LABELS, {})
    assert (verdict.status, verdict.reason) == ('Unknown', 'Selected')
    assert verdict.message.startswith('Prometheus monitoring/loose selects PrometheusRule team-a/r')
    verdict = rules_verdict([picky, prometheus('none')], [*rules, rule_object('r-2', 1)], RULE_LABELS, {})
    assert (verdict.status, verdict.reason) == ('False', 'NotSelected')
    assert verdict.message == ('no Prometheus selects PrometheusRule team-a/r, team-a/r-2: monitoring/none has no ruleSelector, '
                               'so it loads no PrometheusRule; monitoring/picky ruleSelector needs the rule to have release=other')


def rule_object(name: str, generation: int, *bindings: dict) -> dict:
    obj = {'kind': 'PrometheusRule', 'metadata': {'name': name, 'namespace': 'team-a', 'generation': generation}}
    if bindings:
        obj['status'] = {'bindings': list(bindings)}
    return obj


def binding(prometheus: str, status: str, generation: int, reason: str = '', message: str = '',
            resource: str = 'prometheuses') -> dict:
    """A PrometheusRule's status.bindings[] entry as prometheus-operator v0.93 writes it (feature
    gate StatusForConfigurationResources; the CRD in ../shared/upstream/crds)."""
    return {'group': 'monitoring.coreos.com', 'resource': resource, 'name': prometheus, 'namespace': 'monitoring',
            'conditions': [{'type': 'Accepted', 'status': status, 'reason': reason, 'message': message,
                            'observedGeneration': generation, 'lastTransitionTime': '2026-12-01T10:00:00Z'}]}


def test_a_selector_alone_says_selected_not_loaded():
    loose = prometheus('loose', ruleSelector={}, ruleNamespaceSelector={})
    verdict = rules_verdict([loose], [rule_object('r', 1)], RULE_LABELS, {})
    assert (verdict.status, verdict.reason) == ('Unknown', 'Selected')
    assert verdict.message.startswith('Prometheus monitoring/loose selects PrometheusRule team-a/r; ')
    assert 'StatusForConfigurationResources' in verdict.message


def test_bindings_prometheus_operator_reports_decide_over_the_selector():
    picky = prometheus('picky', ruleSelector={'matchLabels': {'release': 'other'}}, ruleNamespaceSelector={})
    accepted = rules_verdict([picky], [rule_object('r', 2, binding('k8s', 'True', 2))], RULE_LABELS, {})
    assert (accepted.status, accepted.reason, accepted.message) == \
        ('True', 'Accepted', 'Prometheus monitoring/k8s accepted PrometheusRule team-a/r')
    rejected = rules_verdict([picky], [
        rule_object('r', 2, binding('k8s', 'True', 2)),
        rule_object('r-2', 1, binding('k8s', 'False', 1, 'InvalidConfiguration', 'group "g": 1:5: parse error'))],
        RULE_LABELS, {})
    assert (rejected.status, rejected.reason) == ('False', 'Rejected')
    assert rejected.message == ('Prometheus monitoring/k8s rejected PrometheusRule team-a/r-2: '
                                'InvalidConfiguration: group "g": 1:5: parse error')
    # A binding about an older generation does not speak for the rules just written.
    stale = rules_verdict([picky], [rule_object('r', 3, binding('k8s', 'False', 2, 'Invalid', 'old'))], RULE_LABELS, {})
    assert (stale.status, stale.reason) == ('Unknown', 'Pending')
    assert 'generation 3' in stale.message
    # Bindings of an Alertmanager or an agent say nothing about rule evaluation.
    agent = rules_verdict([], [rule_object('r', 1, binding('agent', 'True', 1, resource='prometheusagents'))],
                          RULE_LABELS, {})
    assert agent.reason == 'NoPrometheus'
    thanos = rules_verdict([], [rule_object('r', 1, binding('ruler', 'True', 1, resource='thanosrulers'))],
                           RULE_LABELS, {})
    assert (thanos.status, thanos.message) == ('True', 'ThanosRuler monitoring/ruler accepted PrometheusRule team-a/r')
