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


class UpstreamLoader(yaml.SafeLoader):
    """YAML 1.1 reads a bare `=` (a matchType enum value upstream) as the obscure `value` type."""


UpstreamLoader.add_constructor('tag:yaml.org,2002:value', lambda loader, node: loader.construct_scalar(node))


def validator(upstream_dir: Path, file_name: str, version: str) -> jsonschema.Draft4Validator:
    crd = yaml.load((upstream_dir / 'crds' / file_name).read_text(), Loader=UpstreamLoader)
    schema = next(v for v in crd['spec']['versions'] if v['name'] == version)['schema']['openAPIV3Schema']
    return jsonschema.Draft4Validator(schema)


async def test_every_example_reconciles_into_objects_valid_upstream(upstream_dir):
    validators = {'PrometheusRule': validator(upstream_dir, 'monitoring.coreos.com_prometheusrules.yaml', 'v1'),
                  'AlertmanagerConfig': validator(upstream_dir, 'monitoring.coreos.com_alertmanagerconfigs.yaml', 'v1alpha1')}
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
