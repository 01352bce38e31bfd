"""What a real apiserver refuses of a tenant's spec and of the operator's output, now that the
emulator checks our CRDs' and the upstream CRDs' schemas (tests/k8s/schema.py)."""

from __future__ import annotations

import kmock
import pytest
from controller_harness import PROMETHEUSRULES, example, running_operator, with_spec
from k8s.emulator import cluster_context


async def test_a_duration_out_of_unit_order_is_refused_at_the_alertrule_not_at_its_prometheusrule(upstream_dir):
    """Issue 12 item 6. Before the fix our CRD let `30s5m` in; the operator called the spec Valid and
    got the PrometheusRule CRD's 422 (spec.groups[0].interval ... should match '^(0|(([0-9]+)y)?...$')."""
    async with cluster_context() as cluster, running_operator(cluster):
        with pytest.raises(kmock.KubernetesError) as refused:
            cluster.seed(with_spec(example('alertrules/llm-error-rate.yaml', name='r6'), evaluationInterval='30s5m'))
        assert refused.value.status == 422
        assert 'spec.evaluationInterval: Invalid value: "30s5m"' in refused.value.message
        assert cluster.get(PROMETHEUSRULES, 'alertrule-r6', 'team-a') is None
