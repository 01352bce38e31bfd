"""The rules of ObservabilityStackClass (issue 13, Design): which class a stack gets (named, the one
default, none), a class that would open a denied path is itself refused, ceilings on typed fields and
allowed values, allowed values checked against the real upstream charts' values.schema.json (the
collector's, Langfuse's Valkey subchart's), and through the operator: two defaults refuse the stacks
without a class naming both, removing one installs them, a class turned invalid keeps the last good
release; the emulator serves the cluster-scoped kind with its generated schema."""

from __future__ import annotations

import pytest
import yaml
from k8s.rbac import ADMIN
from test_stackclass_attacks import (
    STACKS,
    cli,
    operator,
    ready,
    releases,
    stack,
    stack_class,
    two_tenants,
    validate,
)

CLASSES = "observatory.dev/v1alpha1/observabilitystackclasses"


def render(*documents: dict):
    return cli("render", *documents)


def collector_values(result) -> dict:
    plan = next(d for d in yaml.safe_load_all(result.stdout) if d["kind"] == "HelmReleasePlan"
                and d["spec"]["component"] == "collector")
    return plan["spec"]["values"]


# --- which class ------------------------------------------------------------------------------

def test_two_default_classes_refuse_a_stack_without_a_class_naming_both() -> None:
    result = validate(stack_class("gold", {}, default=True), stack_class("silver", {}, default=True), stack("team-a"))
    assert result.returncode == 1
    assert "spec.className: not set, and 2 ObservabilityStackClasses are marked default (gold, silver)" in result.stderr
    # Naming one settles it.
    assert validate(stack_class("gold", {}, default=True), stack_class("silver", {}, default=True),
                    stack("team-a", {"className": "silver"})).returncode == 0


def test_the_default_class_applies_and_a_missing_class_is_refused() -> None:
    platform = stack_class("gold", {"collector": {"allowedValues": ["podAnnotations"], "values": {"tolerations": [{"key": "x"}]}}},
                           default=True)
    result = render(platform, stack("team-a", {"collector": {"values": {"podAnnotations": {"team": "a"}}}}))
    assert result.returncode == 0, result.stderr
    values = collector_values(result)
    assert values["podAnnotations"] == {"team": "a"} and values["tolerations"] == [{"key": "x"}]
    result = validate(platform, stack("team-a", {"className": "platinum"}))
    assert result.returncode == 1 and "spec.className: no ObservabilityStackClass 'platinum' exists" in result.stderr


def test_without_any_class_no_values_are_allowed_and_the_error_says_how_to_get_one() -> None:
    result = validate(stack("team-a", {"collector": {"values": {"podAnnotations": {"a": "b"}}}}))
    assert result.returncode == 1
    assert "spec.collector.values.podAnnotations.a: not allowed by the operator's built-in default" in result.stderr
    assert "ask the platform admin for an ObservabilityStackClass whose spec.collector.allowedValues has it" in result.stderr


@pytest.mark.parametrize("component, path", [
    ("collector", "image"), ("collector", "config"), ("collector", "config.exporters"), ("collector", "serviceAccount.name"),
    ("collector", "serviceMonitor.relabelings"), ("collector", "presets"), ("phoenix", "securityContext"),
    ("langfuse", "global.seaweedfs"), ("langfuse", "s3.allInOne.podSecurityContext"), ("phoenix", "namespaceOverride"),
])
def test_a_class_that_allows_a_denied_path_is_refused_and_so_are_its_stacks(component, path) -> None:
    bad = stack_class("leaky", {component: {"allowedValues": ["podAnnotations", path]}})
    result = validate(bad, stack("team-a", {"className": "leaky"}))
    assert result.returncode == 1
    assert f"ObservabilityStackClass/leaky: spec: {component}.allowedValues.1 {path!r}: never allowed to tenants" in result.stderr
    assert "ObservabilityStack/team-a/s1: spec.className: ObservabilityStackClass 'leaky' is invalid" in result.stderr


def test_a_tenant_value_at_a_path_the_operator_computes_is_refused() -> None:
    platform = stack_class("c", {"collector": {"allowedValues": ["serviceMonitor", "replicaCount"]}})
    result = validate(platform, stack("team-a", {"className": "c", "collector": {"values": {
        "serviceMonitor": {"enabled": False}, "replicaCount": 9}}}))
    assert result.returncode == 1
    assert "spec.collector.values.serviceMonitor.enabled: set by the operator" in result.stderr
    assert "spec.collector.values.replicaCount: set by the operator" in result.stderr


# --- ceilings ---------------------------------------------------------------------------------

def test_ceilings_cap_typed_fields_and_allowed_values() -> None:
    platform = stack_class("small", {"ceilings": {"cpu": "1", "memory": "1Gi", "replicas": 2, "storage": "10Gi"},
                                     "langfuse": {"allowedValues": ["clickhouse.resources"]}})
    result = validate(platform, stack("team-a", {"className": "small", "phoenix": {
        "enabled": True, "storage": {"sqlite": {"size": "50Gi"}}, "resources": {"limits": {"cpu": "1500m", "memory": "512Mi"}}},
        "langfuse": {"enabled": True, "values": {"clickhouse": {"resources": {"requests": {"memory": "2Gi"}}}}},
        "collector": {"replicas": 3, "resources": {"requests": {"cpu": "500m"}}}}))
    assert result.returncode == 1
    for line in ("spec.phoenix.storage.sqlite.size: 50Gi is above the class's ceiling 10Gi",
                 "spec.phoenix.resources.limits.cpu: 1500m is above the class's ceiling 1",
                 "spec.collector.replicas: 3 is above the class's ceiling 2",
                 "spec.langfuse.values.clickhouse.resources.requests.memory: 2Gi is above the class's ceiling 1Gi"):
        assert line in result.stderr, result.stderr
    assert "spec.collector.resources" not in result.stderr and "limits.memory" not in result.stderr


# --- the charts' values schemas ---------------------------------------------------------------

def test_allowed_values_are_checked_against_the_real_charts_values_schema(upstream_dir) -> None:
    packaged = upstream_dir / "charts" / "packaged"
    platform = stack_class("real", {
        "collector": {"chart": {"path": str(packaged / "opentelemetry-collector-0.170.0.tgz")},
                      "allowedValues": ["tolerations", "podAnnotations", "notAValue"]},
        "langfuse": {"chart": {"path": str(packaged / "langfuse-2.0.0.tgz")}, "allowedValues": ["redis.valkeyLogLevel"]}})
    result = validate(platform, stack("team-a", {"className": "real", "langfuse": {"enabled": True, "values": {
        "redis": {"valkeyLogLevel": 5}}}, "collector": {"values": {"tolerations": "all", "notAValue": 1}}}))
    assert result.returncode == 1
    assert "spec.collector.values.tolerations: 'all' is not of type 'array' (the chart's values.schema.json)" in result.stderr
    assert "spec.collector.values.notAValue: the chart has no such value (its values.schema.json)" in result.stderr
    assert "spec.langfuse.values.redis.valkeyLogLevel: 5 is not of type 'string' (the chart's values.schema.json)" in result.stderr
    good = render(platform, stack("team-a", {"className": "real", "langfuse": {"enabled": True, "values": {
        "redis": {"valkeyLogLevel": "warning"}}}, "collector": {"values": {"tolerations": [{"key": "dedicated"}]}}}))
    assert good.returncode == 0, good.stderr
    assert collector_values(good)["tolerations"] == [{"key": "dedicated"}]


# --- the emulator serves the kind -------------------------------------------------------------

async def test_the_emulator_serves_the_cluster_scoped_class_with_its_schema() -> None:
    async with two_tenants() as cluster:
        path = "/apis/observatory.dev/v1alpha1/observabilitystackclasses"
        code, body = cluster.request("POST", path + "?fieldValidation=Strict",
                                     stack_class("x", {"collector": {"allowedValue": ["a"]}}), identity=ADMIN)
        assert code in (400, 422) and "allowedValue" in body["message"], body
        code, body = cluster.request("POST", path, stack_class("x", {"ceilings": {"replicas": 0}}), identity=ADMIN)
        assert code == 422 and "spec.ceilings.replicas" in body["message"], body
        code, _ = cluster.request("POST", path, stack_class("x", {"collector": {"allowedValues": ["podAnnotations"]}}))
        assert code == 201
        assert cluster.get(CLASSES, "x")["metadata"].get("namespace") is None


# --- through the operator ---------------------------------------------------------------------

async def test_operator_follows_the_classes(helm) -> None:
    async with two_tenants() as cluster, operator(cluster, helm):
        cluster.seed(stack_class("gold", {}, default=True))
        cluster.seed(stack_class("silver", {}, default=True))
        cluster.seed(stack("team-a"))
        await cluster.until(lambda: ready(cluster, "team-a").get("reason") == "InvalidSpec", timeout=60)
        assert "(gold, silver)" in ready(cluster, "team-a")["message"]
        assert releases(cluster, "team-a") == {}

        # One default left: the stack installs under it (the class change re-reconciled it) and says so.
        cluster.delete(CLASSES, "silver")
        await cluster.until(lambda: releases(cluster, "team-a") == {"s1-collector": ["deployed"]}, timeout=60)
        await cluster.until(lambda: (cluster.get(STACKS, "s1", "team-a").get("status") or {}).get("className") == "gold",
                            timeout=30)

        # The class turns invalid: the stack is refused naming it, its release stays as it was.
        cluster.patch(CLASSES, "gold", None, {"spec": {"collector": {"allowedValues": ["hostNetwork"]}}})
        await cluster.until(lambda: ready(cluster, "team-a").get("reason") == "InvalidSpec", timeout=60)
        assert "ObservabilityStackClass 'gold' is invalid" in ready(cluster, "team-a")["message"]
        assert releases(cluster, "team-a") == {"s1-collector": ["deployed"]}
