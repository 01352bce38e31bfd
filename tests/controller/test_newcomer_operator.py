"""The newcomer's mistakes in a cluster: the operator refuses them as `observatory validate` does.

The CRD schema lets `objective: 0.995` through (a number above 0); the operator must not turn it into an
SLO of 0.995 % that never alerts, and must not crash on it: Valid=False naming the field, nothing written.
"""

from __future__ import annotations

from controller_harness import PROMETHEUSRULES, SLOS, condition, example, names, running_operator, settled, with_spec
from k8s.emulator import cluster_context


async def test_an_objective_written_as_a_fraction_is_invalid_and_generates_nothing():
    async with cluster_context() as cluster, running_operator(cluster):
        slo = example('slos/llm-availability.yaml')
        cluster.seed(with_spec(slo, objective=0.995))
        # A generous bound: the first reconcile includes the operator's start, slow on a busy machine.
        live = await cluster.until(lambda: settled(cluster, SLOS, 'llm-availability', 'team-a'), timeout=120)
        valid = condition(live, 'Valid')
        assert (valid['status'], valid['reason']) == ('False', 'InvalidSpec'), valid
        assert valid['message'].startswith('spec.objective: 0.995 looks like a fraction'), valid
        assert 'write 99.5' in valid['message']
        assert names(cluster, PROMETHEUSRULES, 'team-a') == []
