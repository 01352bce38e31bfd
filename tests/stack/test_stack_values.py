"""Helm values of an ObservabilityStack: golden files, upstream chart keys/schema, secrets by reference."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest
import re2
import yaml
from pydantic import ValidationError

from observatory.compile.errors import CompileError
from observatory.compile.stack import (
    DEFAULT_CHARTS, ChartRef, collector_values, endpoints, langfuse_login, langfuse_values, otel_configmap_data,
    release_plans, required_secrets, secret_name,
)
from observatory.compile.stackclass import resolve_class
from observatory.conventions import DEFAULT, Conventions
from observatory.models.stack import ObservabilityStack
from observatory.models.stackclass import ObservabilityStackClass
from real_charts import CASE_CLASSES, PACKAGED

HERE = Path(__file__).parent
REPO = HERE.parent.parent
GOLDEN = HERE / "golden"
STACK_FILES = sorted((REPO / "examples" / "stacks").glob("*.yaml")) + sorted((HERE / "cases").glob("*.yaml"))
UPSTREAM_CHART = {"phoenix": "phoenix-helm", "langfuse": "langfuse", "collector": "opentelemetry-collector"}
# Maps whose keys are user data in each chart (beyond maps that are empty in the upstream values), or
# Kubernetes (Pod)SecurityContext fields the chart passes through with toYaml.
FREE_FORM = {"collector": {("config",), ("ports",)}, "phoenix": set(),
             "langfuse": {("postgresql", "podSecurityContext")}}


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def load(path: Path) -> ObservabilityStack:
    """The file's stack (a case file may hold its ObservabilityStackClass too)."""
    return next(ObservabilityStack.model_validate(d) for d in documents(path) if d["kind"] == "ObservabilityStack")


def plans_of(path: Path) -> list:
    """The stack's release plans under its class (one a case file declares), as the CLI and the operator resolve it."""
    st = load(path)
    return release_plans(st, stack_class=resolve_class(st, CASE_CLASSES))


def stack(spec: dict[str, Any] | None = None, name: str = "s1", namespace: str = "ns1") -> ObservabilityStack:
    return ObservabilityStack.model_validate({"apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStack",
                                             "metadata": {"name": name, "namespace": namespace}, "spec": spec or {}})


def render(path: Path) -> str:
    st = load(path)
    docs: list[Any] = [{"endpoints": endpoints(st), "configMap": otel_configmap_data(st),
                        "secrets": {name: [vars(s) for s in specs] for name, specs in required_secrets(st).items()}}]
    for plan in plans_of(path):
        docs.append({"release": plan.name, "namespace": plan.namespace, "component": plan.component,
                     "chart": {"reference": plan.chart.reference, "repo": plan.chart.repo_url, "version": plan.chart.version},
                     "values": plan.values})
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True, width=120)


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.stem)
def test_golden(path: Path) -> None:
    text = render(path)
    assert render(path) == text, "output is not deterministic"
    golden = GOLDEN / f"{path.stem}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert golden.exists(), f"{golden} missing; run with UPDATE_GOLDEN=1"
    assert text == golden.read_text(), f"{golden.name} differs; inspect, then UPDATE_GOLDEN=1"


# --- upstream chart interface -------------------------------------------------------------------

def _key_paths(values: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(values, dict):
        for key, value in values.items():
            yield prefix + (key,)
            yield from _key_paths(value, prefix + (key,))


def unknown_keys(values: dict[str, Any], upstream: dict[str, Any], free_form: set[tuple[str, ...]]) -> list[str]:
    """Key paths of `values` that the upstream values.yaml does not have.

    Descends only into maps; below a map that upstream leaves empty ({}: annotations, resources,
    labels) or lists in `free_form`, keys are user data. Lists are leaves.
    """
    unknown = []
    for path in _key_paths(values):
        node: Any = upstream
        for depth, key in enumerate(path):
            if path[:depth] in free_form or node == {}:
                break
            if not isinstance(node, dict) or key not in node:
                unknown.append(".".join(path))
                break
            node = node[key]
    return unknown


def with_subchart_values(values: dict[str, Any], chart: dict[str, Any], packaged: Path) -> dict[str, Any]:
    """The parent's values with each dependency's own values.yaml under its alias: Helm passes the values
    under the alias to the subchart, whose keys are as valid there as the parent's."""
    out = dict(values)
    with tarfile.open(packaged) as tgz:
        for dep in chart.get("dependencies", []):
            member = tgz.extractfile(f"{chart['name']}/charts/{dep['name']}/values.yaml")
            key = dep.get("alias") or dep["name"]
            out[key] = _union(yaml.safe_load(member.read()), values.get(key))
    return out


def _union(sub: Any, parent: Any) -> Any:
    if isinstance(sub, dict) and isinstance(parent, dict):
        return {**sub, **{k: _union(sub.get(k), v) for k, v in parent.items()}}
    return sub if parent is None else parent


@pytest.fixture(scope="module")
def charts(upstream_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for component, chart in UPSTREAM_CHART.items():
        directory = upstream_dir / "charts" / chart
        meta = yaml.safe_load((directory / "Chart.yaml").read_text())
        values = with_subchart_values(yaml.safe_load((directory / "values.yaml").read_text()), meta,
                                      upstream_dir / "charts" / "packaged" / PACKAGED[component])
        out[component] = {"values": values, "chart": meta}
    out["collector"]["schema"] = json.loads((upstream_dir / "charts" / UPSTREAM_CHART["collector"] / "values.schema.json").read_text())
    return out


def _all_plans():
    for path in STACK_FILES:
        for plan in plans_of(path):
            yield pytest.param(plan, id=f"{path.stem}-{plan.component}")


@pytest.mark.parametrize("plan", list(_all_plans()))
def test_values_keys_exist_upstream(plan, charts) -> None:
    assert unknown_keys(plan.values, charts[plan.component]["values"], FREE_FORM[plan.component]) == []


def test_key_check_catches_unknown_keys(charts) -> None:
    upstream = charts["phoenix"]["values"]
    assert unknown_keys({"auth": {"enableAuthh": True}, "persistence": {"annotations": {"x": "y"}}}, upstream, set()) == ["auth.enableAuthh"]
    assert unknown_keys({"service": {"type": "ClusterIP", "typo": 1}}, upstream, set()) == ["service.typo"]


def helm_coalesce(defaults: Any, overrides: Any) -> Any:
    """Values as Helm computes them: user maps merged over chart defaults, null deletes a key."""
    if not (isinstance(defaults, dict) and isinstance(overrides, dict)):
        return overrides
    out = dict(defaults)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = helm_coalesce(out.get(key), value)
    return out


def validate_collector(values: dict[str, Any], charts) -> None:
    # Helm validates the coalesced values against the chart's schema (draft 7 semantics).
    jsonschema.Draft7Validator(charts["collector"]["schema"]).validate(helm_coalesce(charts["collector"]["values"], values))


@pytest.mark.parametrize("plan", [p for p in _all_plans() if p.values[0].component == "collector"])
def test_collector_values_match_upstream_schema(plan, charts) -> None:
    validate_collector(plan.values, charts)


@pytest.mark.parametrize("bad", [{"replicas": 2}, {"image": {"repo": "x"}}, {"ports": {"llm-metrics": {"enabled": True, "port": 1}}},
                                 {"resources": {"limits": {"gpu": "1"}}}])
def test_collector_schema_rejects_unknown_keys(bad, charts) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate_collector(helm_coalesce(collector_values(stack()), bad), charts)


def test_pinned_versions_are_the_upstream_chart_versions(charts) -> None:
    for component, ref in DEFAULT_CHARTS.items():
        assert ref.name == charts[component]["chart"]["name"]
        assert ref.version == charts[component]["chart"]["version"]


# --- behaviour --------------------------------------------------------------------------------

def test_secrets_are_referenced_never_inlined() -> None:
    st = load(REPO / "examples" / "stacks" / "team-a-dedicated.yaml")
    secret = secret_name(st)
    generated = {s.key for s in required_secrets(st)[secret]}
    refs = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "secretKeyRef" in node:
                refs.append((node["secretKeyRef"]["name"], node["secretKeyRef"]["key"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    plans = {p.component: p.values for p in release_plans(st)}
    for values in plans.values():
        walk(values)
    # Phoenix reads each auth env var from the key of the same name in auth.name.
    phoenix_auth = plans["phoenix"]["auth"]
    assert phoenix_auth["createSecret"] is False and phoenix_auth["name"] == secret
    assert all(set(item) == {"key"} for item in phoenix_auth["secret"])
    refs += [(secret, item["key"]) for item in phoenix_auth["secret"]]
    assert {key for name, key in refs if name == secret} == generated
    lf = plans["langfuse"]["langfuse"]
    for field in (lf["salt"], lf["encryptionKey"], lf["nextauth"]["secret"]):
        assert set(field) == {"secretKeyRef"}


def test_required_secrets_follow_the_spec() -> None:
    assert required_secrets(stack({"phoenix": {"auth": False}, "langfuse": {"enabled": False}})) == {}
    keys = {s.key: s.kind for s in required_secrets(stack())["s1-observatory-secrets"]}
    assert keys["langfuse-encryption-key"] == "hex32"
    assert keys["PHOENIX_SECRET"] == "token"
    external = stack({"langfuse": {"mode": "external", "external": {"url": "https://lf.example.com", "keySecret": {"name": "k"}}}})
    assert not any(k.startswith("langfuse") for k in (s.key for s in required_secrets(external)["s1-observatory-secrets"]))
    assert langfuse_login(external) is None and langfuse_login(stack())["secret"] == "s1-observatory-secrets"


def test_external_langfuse_has_no_release_and_collector_uses_its_keys() -> None:
    st = load(REPO / "examples" / "stacks" / "team-b-external.yaml")
    plans = {p.component: p for p in release_plans(st)}
    assert set(plans) == {"phoenix", "collector"}
    values = plans["collector"].values
    exporter = values["config"]["exporters"]["otlp_http/langfuse"]
    assert exporter["endpoint"] == "https://langfuse.platform.example.com/api/public/otel"
    assert exporter["headers"] == {"x-langfuse-ingestion-version": "4"}
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in values["extraEnvs"]}
    assert env["LANGFUSE_PUBLIC_KEY"] == {"name": "langfuse-team-b", "key": "publicKey"}
    assert env["LANGFUSE_SECRET_KEY"] == {"name": "langfuse-team-b", "key": "secretKey"}
    with pytest.raises(CompileError, match="spec.langfuse.mode"):
        langfuse_values(st)


def test_redaction_runs_before_every_exporter() -> None:
    config = collector_values(load(REPO / "examples" / "stacks" / "team-a-dedicated.yaml"))["config"]
    pipelines = config["service"]["pipelines"]
    traces = pipelines["traces"]
    assert traces["receivers"] == ["otlp"]
    assert traces["processors"][:2] == ["memory_limiter", "transform/redact"]
    # The only other trace pipeline reads from the redacted one through the forward connector.
    assert pipelines["traces/genai"]["receivers"] == ["forward/genai"] and "forward/genai" in traces["exporters"]
    assert set(traces["exporters"]) == {"otlp_grpc/phoenix", "otlp_http/langfuse", "forward/genai"}
    assert pipelines["metrics"]["exporters"] == ["prometheus"] and pipelines["logs"] is None


def test_span_metric_names_follow_the_conventions() -> None:
    conventions = Conventions.from_mapping({"token_usage_metric": "llm_tokens", "operation_duration_metric": "llm_seconds",
                                            "operation_duration_buckets": [0.5, 2]})
    config = collector_values(stack(), conventions)["config"]
    statements = "\n".join(config["processors"]["transform/metric-names"]["metric_statements"][0]["statements"])
    assert 'set(name, "llm_tokens_sum")' in statements and 'set(name, "llm_seconds")' in statements
    assert config["connectors"]["spanmetrics"]["histogram"]["explicit"]["buckets"] == ["0.5s", "2s"]
    default = collector_values(stack(), DEFAULT)["config"]["processors"]["transform/metric-names"]
    assert "gen_ai_client_token_usage_sum" in str(default)


def test_app_metrics_named_like_span_metrics_are_dropped() -> None:
    # Both spellings reach the prometheus exporter as the same name; others pass.
    conditions = collector_values(stack())["config"]["processors"]["filter/genai-metrics"]["metrics"]["metric"]
    patterns = [re2.compile(c.split('"')[1].replace("$$", "$")) for c in conditions]

    def dropped(name: str) -> bool:
        return any(p.search(name) for p in patterns)

    assert dropped("gen_ai.client.token.usage") and dropped("gen_ai_client_token_usage")
    assert dropped("gen_ai.client.operation.duration.seconds")
    assert not dropped("gen_ai.client.token.usage.total") and not dropped("gen_aiXclient_token_usage")
    assert not dropped("gen_ai.server.request.duration")


def test_service_monitor_carries_rule_selector_labels() -> None:
    conventions = Conventions.from_mapping({"rule_selector_labels": {"prometheus": "tenants"}})
    values = collector_values(stack(), conventions)
    assert values["serviceMonitor"]["extraLabels"] == {"prometheus": "tenants"}
    assert values["serviceMonitor"]["metricsEndpoints"][0]["port"] in values["ports"]


def stack_class(spec: dict[str, Any]) -> ObservabilityStackClass:
    return ObservabilityStackClass.model_validate({"apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStackClass",
                                                  "metadata": {"name": "c1"}, "spec": spec})


def test_chart_overrides_operator_mirror_then_class() -> None:
    mirror = {"collector": ChartRef("opentelemetry-collector", "0.170.0", "oci://mirror.local/charts")}
    plan = [p for p in release_plans(stack(), charts=mirror) if p.component == "collector"][0]
    assert plan.chart.reference == "oci://mirror.local/charts/opentelemetry-collector" and plan.chart.repo_url is None
    local = stack_class({"collector": {"chart": {"path": "/c/otel.tgz"}}})
    plan = [p for p in release_plans(stack(), charts=mirror, stack_class=local) if p.component == "collector"][0]
    assert plan.chart.reference == "/c/otel.tgz" and plan.chart.version == "0.170.0"


def test_values_layer_platform_then_tenant_then_computed() -> None:
    platform = stack_class({"collector": {"values": {"podAnnotations": {"a": "platform", "p": "1"}, "replicaCount": 7,
                                                     "tolerations": [{"key": "platform"}]},
                                          "allowedValues": ["podAnnotations"]}})
    st = stack({"collector": {"values": {"podAnnotations": {"a": "tenant"}}}})
    values = next(p.values for p in release_plans(st, stack_class=platform) if p.component == "collector")
    assert values["podAnnotations"] == {"a": "tenant", "p": "1"}  # deep-merged, the tenant over the platform
    assert values["tolerations"] == [{"key": "platform"}]
    assert values["replicaCount"] == 1  # the computed value wins over the platform's
    assert values["serviceMonitor"]["enabled"] is True and values["serviceMonitor"]["extraLabels"]


@pytest.mark.parametrize("given, expected", [
    (None, {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "2Gi"}}),
    ({"requests": {"cpu": "3"}}, {"requests": {"cpu": "3", "memory": "1Gi"}, "limits": {"cpu": "3", "memory": "2Gi"}}),
    ({"limits": {"memory": "512Mi"}}, {"requests": {"cpu": "500m", "memory": "512Mi"},
                                       "limits": {"cpu": "1000m", "memory": "512Mi"}}),
])
def test_phoenix_resources_set_every_key_the_chart_has(given, expected) -> None:
    # Helm merges them over phoenix-helm's own requests and limits; a key left out would keep the chart's value.
    spec = {"phoenix": {"resources": given}} if given else {}
    assert release_plans(stack(spec))[0].values["resources"] == expected


def test_deletion_policy_controls_pvc_retention() -> None:
    keep = release_plans(stack({"deletionPolicy": "Retain"}))
    drop = release_plans(stack({"deletionPolicy": "Delete"}))
    assert keep[0].values["persistence"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert "annotations" not in drop[0].values["persistence"]
    assert drop[1].values["postgresql"]["storage"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"


@pytest.mark.parametrize("spec, field", [
    ({"langfuse": {"mode": "external"}}, "spec.langfuse"),
    ({"langfuse": {"external": {"url": "https://x.io", "keySecret": {"name": "k"}}}}, "spec.langfuse"),
    ({"phoenix": {"storage": {"sqlite": {}, "postgres": {"host": "h", "database": "d", "user": "u",
                                                         "passwordSecret": {"name": "s", "key": "k"}}}}}, "spec.phoenix.storage"),
    ({"phoenix": {"chart": {"repository": "oci://x/y", "path": "/c"}}}, "spec.phoenix.chart"),
    ({"collector": {"redaction": {"patterns": [{"name": "x", "regex": "(?<=a)b"}]}}}, "spec.collector.redaction.patterns.0.regex"),
    ({"collector": {"redaction": {"patterns": [{"name": "x", "regex": "a*"}]}}}, "spec.collector.redaction.patterns.0.regex"),
    ({"collector": {"redaction": {"patterns": [{"name": "x", "regex": "\\b"}]}}}, "spec.collector.redaction.patterns.0.regex"),
    ({"collector": {"redaction": {"patterns": [{"name": "x", "regex": "a{{2}}"}]}}}, "spec.collector.redaction.patterns.0.regex"),
    ({"collector": {"redaction": {"patterns": [{"name": "x", "regex": "a"}, {"name": "x", "regex": "b"}]}}}, "spec.collector.redaction.patterns"),
    ({"collector": {"redaction": {"detectors": {"email": "scramble"}}}}, "spec.collector.redaction.detectors.email"),
    ({"collector": {"redaction": {"attributes": {"deny": ["bad key"]}}}}, "spec.collector.redaction.attributes.deny.0"),
    ({"pricing": [{"model": "m", "inputUSDPerMillionTokens": 1, "outputUSDPerMillionTokens": 1}] * 2}, "spec"),
    ({"phoenix": {"resources": {"limits": {"memory": "lots"}}}}, "spec.phoenix.resources.limits.memory"),
    ({"deletionPolicy": "Orphan"}, "spec.deletionPolicy"),
])
def test_invalid_specs_name_the_field(spec, field) -> None:
    with pytest.raises(ValidationError) as err:
        stack(spec)
    locations = [".".join(str(p) for p in e["loc"]) for e in err.value.errors()]
    assert any(loc == field or loc.startswith(field + ".") for loc in locations), locations


def test_compile_errors_name_the_field() -> None:
    # A name too long for its derived names is refused by the model itself (models/stack.py MAX_NAME_LENGTH).
    with pytest.raises(ValidationError, match="metadata"):
        stack(name="x" * 60)
    with pytest.raises(CompileError, match="^spec: nothing consumes traces"):
        collector_values(stack({"phoenix": {"enabled": False}, "langfuse": {"enabled": False}, "metrics": {"spanMetrics": False}}))


def test_model_json_schema() -> None:
    schema = ObservabilityStack.model_json_schema(by_alias=True)
    assert schema["properties"]["kind"]["enum"] == ["ObservabilityStack"] if "enum" in schema["properties"]["kind"] \
        else schema["properties"]["kind"]["const"] == "ObservabilityStack"

    def descriptions_missing(node: dict[str, Any], path: str) -> list[str]:
        missing = []
        for name, prop in node.get("properties", {}).items():
            if "description" not in prop:
                missing.append(f"{path}.{name}")
        return missing

    missing = descriptions_missing(schema, "")
    for name, definition in schema["$defs"].items():
        missing += descriptions_missing(definition, name)
    assert missing == []
