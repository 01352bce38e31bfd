"""What a real apiserver refuses of the operator's output, now that the emulator checks the
upstream CRDs' schemas (tests/k8s/schema.py): each test is a defect of issue 12 until fixed."""

from __future__ import annotations

import pytest
from controller_harness import (
    ALERTRULES,
    PROMETHEUSRULES,
    condition,
    example,
    running_operator,
    settled,
    with_spec,
)
from k8s.emulator import cluster_context


@pytest.mark.xfail(strict=True, reason='issue 12 item 6: DURATION_PATTERN accepts 30s5m, which the PrometheusRule CRD refuses')
async def test_a_duration_out_of_unit_order_is_invalid_in_the_spec_not_refused_at_the_prometheusrule(upstream_dir):
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.seed(with_spec(example('alertrules/llm-error-rate.yaml', name='r6'), evaluationInterval='30s5m'))
        live = await cluster.until(lambda: settled(cluster, ALERTRULES, 'r6', 'team-a'))
        # Measured before the fix: no Valid condition; Ready=False ApplyFailed with the CRD's 422
        # ("spec.groups[0].interval: Invalid value: \"30s5m\": ... should match '^(0|(([0-9]+)y)?...$'").
        assert condition(live, 'Ready')['reason'] != 'ApplyFailed', condition(live, 'Ready')['message']
        assert condition(live, 'Valid')['status'] == 'False'
        assert 'evaluationInterval' in condition(live, 'Valid')['message']
        assert cluster.get(PROMETHEUSRULES, 'alertrule-r6', 'team-a') is None
