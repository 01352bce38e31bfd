"""Status stanzas: transitions move lastTransitionTime, nothing else does (pure)."""

from __future__ import annotations

from observatory.controller.status import Cond, build_status, transitions

READY = Cond('Ready', 'True', 'Reconciled', '1 PrometheusRule(s)')
VALID = Cond('Valid', 'True', 'Compiled')


def test_last_transition_time_changes_only_with_the_status():
    first = build_status(None, [VALID, READY], 1, prometheus_rules=['r'], counts=(2, 3), now='T1')
    assert [c['type'] for c in first['conditions']] == ['Ready', 'Valid']
    assert first == {'conditions': [
        {'type': 'Ready', 'status': 'True', 'reason': 'Reconciled', 'message': '1 PrometheusRule(s)',
         'observedGeneration': 1, 'lastTransitionTime': 'T1'},
        {'type': 'Valid', 'status': 'True', 'reason': 'Compiled', 'message': '', 'observedGeneration': 1,
         'lastTransitionTime': 'T1'}],
        'observedGeneration': 1, 'prometheusRules': ['r'], 'recordingRules': 2, 'alertingRules': 3}
    again = build_status(first, [READY, VALID], 2, prometheus_rules=['r'], counts=(2, 3), now='T2')
    assert [c['lastTransitionTime'] for c in again['conditions']] == ['T1', 'T1']
    assert [c['observedGeneration'] for c in again['conditions']] == [2, 2]
    assert transitions(first, again) == []
    broken = build_status(again, [Cond('Ready', 'False', 'InvalidSpec'), Cond('Valid', 'False', 'InvalidSpec', 'spec.x: bad')],
                          3, now='T3')
    assert [c['lastTransitionTime'] for c in broken['conditions']] == ['T3', 'T3']
    # Without new objects the last good ones are still reported.
    assert (broken['prometheusRules'], broken['recordingRules'], broken['alertingRules']) == (['r'], 2, 3)
    assert [c['type'] for c in transitions(again, broken)] == ['Ready', 'Valid']


def test_a_new_reason_is_a_transition_without_moving_the_time():
    before = build_status(None, [Cond('RulesLoaded', 'False', 'NotSelected', 'a')], 1, prometheus_rules=[], now='T1')
    after = build_status(before, [Cond('RulesLoaded', 'False', 'OtherReason', 'b')], 1, prometheus_rules=[], now='T2')
    assert after['conditions'][0]['lastTransitionTime'] == 'T1'
    assert [c['reason'] for c in transitions(before, after)] == ['OtherReason']
