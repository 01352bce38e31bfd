"""charts/observatory rendered by the real helm binary: lint, schema, Kubernetes validity, security."""

from __future__ import annotations

import json
import re

import jsonschema
import kubernetes_validate
import pytest
import yaml
from observatory.models import parse_resource
from chartlib import (
    ALL_VALUES,
    CHART_DIR,
    RELEASE_NAMESPACE,
    by_kind,
    render_notes,
    run_helm,
    template,
)
from observatory.controller.settings import Settings

# Kinds kubernetes-validate has no schema for; the ServiceMonitor is checked against its CRD below.
NOT_BUILT_IN_GROUPS = ("monitoring.coreos.com/", "kopf.dev/", "observatory.dev/")


@pytest.mark.parametrize("values", [[], ["-f", str(ALL_VALUES)]], ids=["defaults", "all-values"])
def test_helm_lint_strict(helm, values):
    result = run_helm(helm, "lint", "--strict", str(CHART_DIR), *values)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("kube_version", ["1.28", "1.33"])
@pytest.mark.parametrize("manifests", ["default_manifests", "all_manifests"])
def test_manifests_validate_strictly(request, manifests, kube_version):
    checked = 0
    for manifest in request.getfixturevalue(manifests):
        if manifest["apiVersion"].startswith(NOT_BUILT_IN_GROUPS):
            continue
        try:
            kubernetes_validate.validate(manifest, kube_version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{manifest['kind']}/{manifest['metadata']['name']} invalid for {kube_version}: "
                        f"{str(e).splitlines()[0]}")
        checked += 1
    assert checked >= 6


def test_servicemonitor_matches_upstream_crd(all_manifests, upstream_dir):
    crd_file = upstream_dir / "crds" / "monitoring.coreos.com_servicemonitors.yaml"
    if not crd_file.exists():
        pytest.skip(f"{crd_file} absent")
    crd = yaml.safe_load(crd_file.read_text())
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]
    (monitor,) = by_kind(all_manifests, "ServiceMonitor")
    jsonschema.validate(monitor, schema)
    # Picked up by the same selector labels as the generated PrometheusRules.
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["metadata"]["labels"]["team"] == "platform"
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]


def test_default_render_has_no_optional_objects(default_manifests):
    kinds = sorted(m["kind"] for m in default_manifests)
    # The operator's ClusterRole and the stack installer's.
    assert kinds == ["ClusterRole", "ClusterRole", "ClusterRoleBinding", "Deployment", "PodDisruptionBudget", "Service",
                     "ServiceAccount"]


def test_the_optional_default_stack_class_is_the_example_and_a_valid_class(helm, all_manifests):
    """stackClass.default.create renders the example default class (the values' spec is a copy of
    examples/stackclasses/default.yaml's, kept equal here), valid as the operator parses it."""
    example = yaml.safe_load((CHART_DIR.parents[1] / "examples" / "stackclasses" / "default.yaml").read_text())
    (rendered,) = by_kind(template(helm, "--set", "stackClass.default.create=true"), "ObservabilityStackClass")
    assert rendered["spec"] == example["spec"]
    assert rendered["metadata"]["annotations"] == example["metadata"]["annotations"]
    (custom,) = by_kind(all_manifests, "ObservabilityStackClass")
    for stack_class in (rendered, custom):
        assert parse_resource(stack_class).is_default
    assert custom["metadata"]["name"] == "platform"


@pytest.mark.parametrize("manifests", ["default_manifests", "all_manifests"])
def test_security_context(request, manifests):
    (deployment,) = by_kind(request.getfixturevalue(manifests), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    # A read-only root needs writable scratch space for /tmp and helm's homes.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert mounts["/tmp"] in empty_dirs
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        assert any(env[var].startswith(path + "/") and name in empty_dirs for path, name in mounts.items()), var


def test_single_replica_recreates(default_manifests):
    (deployment,) = by_kind(default_manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    env = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "OBSERVATORY_PEERING_NAME" not in env


def test_probes_and_ports_follow_values(all_manifests):
    (deployment,) = by_kind(all_manifests, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8081, "metrics": 9091}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    (service,) = by_kind(all_manifests, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9091, "targetPort": "metrics", "protocol": "TCP"}]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_configuration_reaches_the_operator_as_env(all_manifests):
    (deployment,) = by_kind(all_manifests, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["observatory", "run"]
    assert container["image"] == "registry.example.com/mirror/observatory:0.1.0-rc1"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OBSERVATORY_WATCH_NAMESPACES"] == "team-a,team-b"
    assert json.loads(env["OBSERVATORY_RULE_SELECTOR_LABELS"]) == {"release": "prometheus",
                                                                   "observatory.dev/rules": "true"}
    assert env["OBSERVATORY_TENANT_LABEL"] == "tenant"
    assert json.loads(env["OBSERVATORY_DASHBOARD_LABELS"]) == {"grafana_dashboard": "observatory"}
    assert env["OBSERVATORY_ALLOWED_EMAIL_SMARTHOSTS"] == "smtp.example.com:587,mail.infra.svc:25"
    assert Settings.from_env(env).allowed_email_smarthosts == ("mail.infra.svc:25", "smtp.example.com:587")
    assert env["OBSERVATORY_LOG_FORMAT"] == "plain"
    assert env["OBSERVATORY_HEALTH_PORT"] == "8081"
    assert env["OBSERVATORY_METRICS_PORT"] == "9091"
    assert env["OBSERVATORY_PHOENIX_CHART"] == "oci://registry.example.com/charts/phoenix-helm"
    assert env["OBSERVATORY_PHOENIX_CHART_VERSION"] == "12.0.4"
    assert env["OBSERVATORY_LANGFUSE_CHART"] == "oci://registry.example.com/charts/langfuse"
    assert env["OBSERVATORY_LANGFUSE_CHART_VERSION"] == "2.0.0"
    assert env["OBSERVATORY_COLLECTOR_CHART"] == "https://charts.example.com/opentelemetry"
    assert env["OBSERVATORY_COLLECTOR_CHART_VERSION"] == "0.170.0"
    assert env["OBSERVATORY_PEERING_NAME"] == "observatory-ha"
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"


def test_default_env_keeps_operator_defaults(default_manifests):
    (deployment,) = by_kind(default_manifests, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["image"] == "ghcr.io/observatory-dev/observatory:0.1.0"  # tag defaults to appVersion
    assert env["OBSERVATORY_WATCH_NAMESPACES"] == ""
    assert json.loads(env["OBSERVATORY_RULE_SELECTOR_LABELS"]) == {"release": "kube-prometheus-stack"}
    assert env["OBSERVATORY_TENANT_LABEL"] == "namespace"
    assert json.loads(env["OBSERVATORY_DASHBOARD_LABELS"]) == {"grafana_dashboard": "1"}
    assert Settings.from_env(env).allowed_email_smarthosts == ()
    # Empty chart sources are not passed, so the operator's pinned defaults apply.
    assert not [name for name in env if name.endswith(("_CHART", "_CHART_VERSION"))]


def test_pdb_and_peering_objects(all_manifests):
    (pdb,) = by_kind(all_manifests, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 2
    peerings = by_kind(all_manifests, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["team-a", "team-b"]
    assert {p["metadata"]["name"] for p in peerings} == {"observatory-ha"}
    assert not by_kind(all_manifests, "ClusterKopfPeering")


def test_clusterwide_peering_creates_cluster_peering(helm):
    manifests = template(helm, "--set", "replicas=2", "--set", "peering.enabled=true")
    (peering,) = by_kind(manifests, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "observatory"


@pytest.mark.parametrize("args, message", [
    (["--set", "bogus=1"], "Additional property bogus is not allowed"),
    (["--set", "image.registry=x"], "Additional property registry is not allowed"),
    (["--set", "pdb.minAvailable=1"], "Additional property minAvailable is not allowed"),
    (["--set", "logFormat=xml"], "logFormat"),
    (["--set", "watchNamespaces[0]=Not_A_Namespace"], "watchNamespaces"),
    (["--set", "replicas=2"], "replicas > 1 requires peering.enabled=true"),
    # A label the apiserver would refuse on every stack's dashboards ConfigMap.
    (["--set-json", 'dashboardLabels={"grafana dashboard":"1"}'], "dashboardLabels"),
    (["--set-json", 'dashboardLabels={"grafana_dashboard":"not a value"}'], "dashboardLabels"),
])
def test_invalid_values_fail_rendering(helm, args, message):
    result = run_helm(helm, "template", "observatory", str(CHART_DIR), *args)
    assert result.returncode != 0
    assert message in result.stderr


def test_notes_tell_what_to_apply_next(helm, tmp_path):
    notes = render_notes(helm, tmp_path)
    for text in ("kind: ObservabilityStack", "kind: AlertRule", "kind: SLO",
                 "kubectl get --all-namespaces observabilitystacks,alertrules,slos",
                 f"kubectl -n {RELEASE_NAMESPACE} rollout status deployment/observatory",
                 "watching all namespaces", '{"release":"kube-prometheus-stack"}',
                 "kubectl apply -f charts/observatory/crds/"):
        assert text in notes
    assert "peering" not in notes
    # The example files NOTES.txt names exist.
    for path in re.findall(r"-f (examples/\S+\.yaml)", notes):
        assert (CHART_DIR.parents[1] / path).is_file(), path


def test_notes_follow_values(helm, tmp_path):
    notes = render_notes(helm, tmp_path, "-f", str(ALL_VALUES))
    assert "watching namespaces: team-a, team-b" in notes
    assert "install kopf's peering CRDs" in notes
