"""Objects the operator writes into the cluster validate against prometheus-operator's own CRDs."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml
from controller_harness import (
    ALERTRULES,
    AMCONFIGS,
    PROMETHEUSRULES,
    REPO,
    SLOS,
    condition,
    running_operator,
    settled,
)
from k8s.emulator import cluster_context
from upstream_crds import upstream_schema


def validator(upstream_dir: Path, kind: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(upstream_schema(upstream_dir, kind))


async def test_every_example_reconciles_into_objects_valid_upstream(upstream_dir):
    validators = {'PrometheusRule': validator(upstream_dir, 'PrometheusRule'),
                  'AlertmanagerConfig': validator(upstream_dir, 'AlertmanagerConfig')}
    examples = [yaml.safe_load(p.read_text()) for folder in ('alertrules', 'slos')
                for p in sorted((REPO / 'examples' / folder).glob('*.yaml'))]
    async with cluster_context() as cluster, running_operator(cluster):
        for obj in examples:
            cluster.seed(obj)
        for obj in examples:
            plural = ALERTRULES if obj['kind'] == 'AlertRule' else SLOS
            live = await cluster.until(lambda: settled(cluster, plural, obj['metadata']['name'], 'team-a'))  # noqa: B023
            assert condition(live, 'Ready')['status'] == 'True', live['status']
        generated = cluster.list(PROMETHEUSRULES, 'team-a') + cluster.list(AMCONFIGS, 'team-a')
    assert {o['kind'] for o in generated} == set(validators)
    assert any(o['metadata']['name'] == 'observatory-llm-prices' for o in generated)
    for obj in generated:
        errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validators[obj['kind']].iter_errors(json.loads(json.dumps(obj)))]
        assert not errors, (obj['metadata']['name'], errors)
