"""RulesLoaded: does a prometheus-operator Prometheus select a PrometheusRule (pure evaluation)."""

from __future__ import annotations

import pytest
from observatory.controller.loading import (
    needs_namespace_labels,
    rules_loaded,
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
    assert rules_loaded([], RULE_LABELS, 'team-a', {}, ['r']).status == 'Unknown'
    verdict = rules_loaded([picky, loose], RULE_LABELS, 'team-a', {}, ['r'])
    assert (verdict.status, verdict.reason, verdict.message) == \
        ('True', 'Selected', 'Prometheus monitoring/loose selects PrometheusRule team-a/r')
    verdict = rules_loaded([picky, prometheus('none')], RULE_LABELS, 'team-a', {}, ['r', 'r-2'])
    assert (verdict.status, verdict.reason) == ('False', 'NotSelected')
    assert verdict.message == ('no Prometheus selects PrometheusRule team-a/r, team-a/r-2: monitoring/none has no ruleSelector, '
                               'so it loads no PrometheusRule; monitoring/picky ruleSelector needs the rule to have release=other')
