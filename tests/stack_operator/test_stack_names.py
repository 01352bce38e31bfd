"""Names derived from a stack's name fit every limit they meet, with the real upstream charts.

A stack name is immutable, so the rule is one length for every spec: the chart objects of a
dedicated Langfuse give the tightest bound (see MAX_NAME_LENGTH in models/stack.py)."""

from __future__ import annotations

import collections
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from observatory.compile import CompileError
from observatory.compile.stack import configmap_name, release_plans, secret_name
from observatory.helm import operator_charts
from observatory.models import parse_resource
from observatory.models.stack import MAX_NAME_LENGTH

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "stacks" / "team-a-dedicated.yaml"
# Limits a real cluster applies to what the charts render (Helm's release name limit is 53:
# helm/helm pkg/chart/v2/util/validate_name.go maxReleaseNameLen). StatefulSet: 63 minus the
# controller-revision-hash suffix (kubernetes/kubernetes#64023); Service and Job names are
# DNS-1035/1123 labels; everything else a DNS subdomain.
NAME_LIMITS = {"Service": 63, "StatefulSet": 52, "Job": 63}
LABEL_VALUE_LIMIT = 63


def example(name: str) -> dict[str, Any]:
    document = yaml.safe_load(EXAMPLE.read_text())
    document["metadata"]["name"] = name
    return document


def label_values(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("labels", "matchLabels") and isinstance(value, dict):
                yield from (v for v in value.values() if isinstance(v, str))
            else:
                yield from label_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from label_values(item)


def test_a_stack_name_longer_than_its_derived_names_allow_is_invalid():
    with pytest.raises(CompileError) as refused:
        parse_resource(example("a" * (MAX_NAME_LENGTH + 1)))
    [error] = refused.value.errors
    assert error.field == "metadata"
    assert f"at most {MAX_NAME_LENGTH}" in error.message and "choose a shorter name" in error.message
    assert parse_resource(example("a" * MAX_NAME_LENGTH)).name == "a" * MAX_NAME_LENGTH


def test_the_longest_stack_name_renders_names_a_cluster_accepts(helm, real_charts, tmp_path):
    """`helm template` of the real charts with Observatory's values for a name of the maximum length."""
    stack = parse_resource(example("n" * MAX_NAME_LENGTH))
    objects = [("Secret", secret_name(stack)), ("ConfigMap", configmap_name(stack))]
    too_long = []
    for plan in release_plans(stack, charts=operator_charts(real_charts)):
        assert len(plan.name) <= 53, plan.name
        values = tmp_path / f"{plan.component}.json"
        values.write_text(json.dumps(plan.values))
        rendered = subprocess.run(
            [str(helm), "template", plan.name, plan.chart.reference, "--namespace", plan.namespace, "--values", str(values),
             "--api-versions", "clickhouse.com/v1alpha1/ClickHouseCluster",
             "--api-versions", "clickhouse.com/v1alpha1/KeeperCluster"],
            capture_output=True, text=True, timeout=120, check=True).stdout
        for document in filter(None, yaml.safe_load_all(rendered)):
            kind, name = document["kind"], document["metadata"]["name"]
            objects.append((kind, name))
            if len(name) > NAME_LIMITS.get(kind, 253):
                too_long.append((kind, name))
            too_long += [(kind, value) for value in label_values(document) if len(value) > LABEL_VALUE_LIMIT]
    assert too_long == []
    assert [o for o, count in collections.Counter(objects).items() if count > 1] == []
    assert {kind for kind, _ in objects} >= {"StatefulSet", "Job", "Service"}  # the limits above were exercised
