"""Generated objects fit what prometheus-operator accepts and loads."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from observatory.compile import CompileError, CompileOptions, compile_bundle
from observatory.compile.prices import ModelPrice, price_objects
from observatory.compile.rules import MAX_RULE_OBJECT_BYTES, Rule, RuleGroup, Tenant, prometheus_rules
from observatory.conventions import Conventions
from observatory.loader import read
from observatory.promql import parse
from upstream_crds import upstream_schema

REPO = Path(__file__).resolve().parents[2]


def rendered_examples() -> list[dict]:
    loaded = read([str(REPO / "examples" / "alertrules"), str(REPO / "examples" / "slos")], None)
    return compile_bundle([r for _, r in loaded.resources])


@pytest.mark.parametrize("kind", ["PrometheusRule", "AlertmanagerConfig"])
def test_objects_validate_against_upstream_prometheus_operator_crds(kind: str, upstream_dir: Path) -> None:
    schema = upstream_schema(upstream_dir, kind)
    validator = jsonschema.Draft4Validator(schema)
    objects = [o for o in rendered_examples() if o["kind"] == kind]
    assert objects
    for obj in objects:
        errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(json.loads(json.dumps(obj)))]
        assert not errors, (obj["metadata"]["name"], errors)


def test_upstream_schema_check_is_not_vacuous(upstream_dir: Path) -> None:
    validator = jsonschema.Draft4Validator(upstream_schema(upstream_dir, "AlertmanagerConfig"))
    bad = {"spec": {"receivers": [{"name": "x", "slackConfigs": [{"apiURL": "https://inline.example.com"}]}]}}
    assert list(validator.iter_errors(bad))


def test_every_prometheus_rule_carries_the_rule_selector_labels() -> None:
    options = CompileOptions(conventions=Conventions(rule_selector_labels={"prometheus": "tenant-rules", "role": "alert-rules"}))
    loaded = read([str(REPO / "examples")], None)
    objects = compile_bundle([r for _, r in loaded.resources], options)
    rules = [o for o in objects if o["kind"] == "PrometheusRule"]
    assert rules
    for obj in rules:
        assert obj["metadata"]["labels"]["prometheus"] == "tenant-rules"
        assert obj["metadata"]["labels"]["role"] == "alert-rules"


def test_alerts_and_records_keep_the_tenant_label_for_routing() -> None:
    for obj in rendered_examples():
        if obj["kind"] != "PrometheusRule":
            continue
        for group in obj["spec"]["groups"]:
            for rule in group["rules"]:
                assert rule["labels"]["namespace"] == obj["metadata"]["namespace"]


def test_huge_price_catalogue_is_split_into_objects_under_the_limit() -> None:
    catalogue = [ModelPrice(f"fine-tuned-model-{i:05d}-with-a-rather-long-name", 1.0 + i, 2.0 + i) for i in range(3000)]
    objects = price_objects(catalogue, Tenant("team-a", Conventions()), "Namespace", "team-a")
    assert len(objects) > 1
    names = [o["metadata"]["name"] for o in objects]
    assert len(set(names)) == len(names)
    for obj in objects:
        assert len(yaml.safe_dump(obj).encode()) <= MAX_RULE_OBJECT_BYTES
    group_names = [g["name"] for o in objects for g in o["spec"]["groups"]]
    assert len(set(group_names)) == len(group_names)
    # Per model a listed price and a cost per token for each of 4 token types, one spend rate, and the
    # spend group's sum, hour and day.
    assert sum(len(g["rules"]) for o in objects for g in o["spec"]["groups"]) == 3000 * 4 * 2 + 1 + 3


def test_a_single_group_over_the_limit_is_rejected_with_a_clear_error() -> None:
    huge = RuleGroup("observatory.too-big", tuple(Rule(expr=parse(f"vector({i})"), record=f"r{i}:" + "x" * 200) for i in range(3000)))
    with pytest.raises(CompileError, match="larger than the 512 KiB"):
        prometheus_rules("too-big", [huge], Tenant("team-a", Conventions()), {})
