"""Issue 13 items 1 and 3, attacked as a hostile tenant: an ObservabilityStack choosing its own chart
(an attacker's repository, any path on the operator's filesystem, any version) or passing free-form
Helm values that reach outside the tenant (namespaceOverride, privileged/host-level pods, images,
ServiceAccounts, RBAC, ServiceMonitor relabelings forging another tenant's metrics, the collector
config itself).

Each attack is refused through the CLI (`observatory validate`) and through the operator loop (kopf,
the real helm, the RBAC-enforcing emulator): the field is named, nothing is installed or changed, the
other tenant's stack installs as usual and the operator stays up.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from k8s.emulator import cluster_context
from k8s.helm_support import STAND_IN_CHARTS, HelmEmulator, stack_operator
from k8s.rbac import ADMIN
from labels_resources import Batch

REPO = Path(__file__).resolve().parents[2]
EVIL_CHART = Path(__file__).parent / "charts" / "stackclass-evil"
STACKS = "observatory.dev/v1alpha1/observabilitystacks"
SECRETS, CONFIGMAPS, DEPLOYMENTS = "v1/secrets", "v1/configmaps", "apps/v1/deployments"
TENANTS = ("team-a", "team-b")
# Only the collector: Phoenix and Langfuse add time, not coverage, to these attacks.
COLLECTOR_ONLY = {"phoenix": {"enabled": False}, "langfuse": {"enabled": False}}


def stack(namespace: str, spec: dict | None = None, name: str = "s1") -> dict:
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStack",
            "metadata": {"name": name, "namespace": namespace}, "spec": {**COLLECTOR_ONLY, **(spec or {})}}


def stack_class(name: str, spec: dict, *, default: bool = False) -> dict:
    metadata: dict = {"name": name}
    if default:
        metadata["annotations"] = {"observatory.dev/is-default-class": "true"}
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStackClass", "metadata": metadata, "spec": spec}


def cli(command: str, *documents: dict) -> subprocess.CompletedProcess:
    """`observatory <command> -f -` in a real process, the documents on stdin."""
    return subprocess.run([sys.executable, "-m", "observatory", command, "-f", "-"], capture_output=True, text=True,
                          input=yaml.safe_dump_all(documents), cwd=REPO, timeout=120)


def validate(*documents: dict) -> subprocess.CompletedProcess:
    return cli("validate", *documents)


# One `observatory validate` for the parametrized attacks below (a process each cost ~2 s of imports).
BATCH = Batch()


# --- item 1: the chart source leaves the tenant's spec ------------------------------------------------

CHART_SOURCES = {
    "https-repository": {"repository": "https://charts.attacker.example"},
    "oci-repository": {"repository": "oci://registry.attacker.example/charts", "name": "evil"},
    "local-path": {"path": str(EVIL_CHART)},
    "dotdot-path": {"path": "../../../../etc"},
    "version": {"version": "0.1.0"},
}
CHART_CASES = {(component, source): BATCH.add(stack("team-a", {component: {"chart": chart}}))
               for source, chart in CHART_SOURCES.items() for component in ("phoenix", "langfuse", "collector")}


@pytest.mark.parametrize("component, source", CHART_CASES, ids=[f"{c}-{s}" for c, s in CHART_CASES])
def test_cli_refuses_a_chart_source_in_the_tenant_spec(component, source) -> None:
    refusals = BATCH.refusals(CHART_CASES[component, source])
    assert any(r.startswith(f"spec.{component}.chart:") and "ObservabilityStackClass" in r for r in refusals), refusals


# --- item 3: free-form values -------------------------------------------------------------------------

ATTACK_VALUES = [
    ("collector", {"namespaceOverride": "kube-system"}, "namespaceOverride"),
    ("collector", {"securityContext": {"privileged": True}}, "securityContext"),
    ("collector", {"podSecurityContext": {"runAsUser": 0}}, "podSecurityContext"),
    ("collector", {"hostNetwork": True}, "hostNetwork"),
    ("collector", {"hostPID": True}, "hostPID"),
    ("collector", {"extraVolumes": [{"name": "root", "hostPath": {"path": "/"}}]}, "extraVolumes"),
    ("collector", {"image": {"repository": "attacker.example/evil"}}, "image"),
    ("collector", {"serviceAccount": {"name": "default", "create": False}}, "serviceAccount"),
    ("collector", {"clusterRole": {"create": True, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}},
     "clusterRole"),
    ("collector", {"serviceMonitor": {"relabelings": [{"targetLabel": "namespace", "replacement": "team-b"}]}},
     "serviceMonitor"),
    ("collector", {"config": {"processors": {"transform/redact": {}}, "exporters": {"otlphttp/leak": {"endpoint": "https://x"}}}},
     "config"),
    ("phoenix", {"securityContext": {"container": {"enabled": False}}}, "securityContext"),
    ("langfuse", {"global": {"seaweedfs": {"createClusterRole": True}}}, "global"),
]


VALUES_CASES = [(component, path, BATCH.add(stack("team-a", {component: {
    "values": values, **({} if component == "collector" else {"enabled": True})}})))
    for component, values, path in ATTACK_VALUES]
HARMLESS = BATCH.add(stack("team-a"))


@pytest.mark.parametrize("component, path, key", VALUES_CASES, ids=[f"{c}-{p}" for c, p, _ in VALUES_CASES])
def test_cli_refuses_free_form_values_without_a_class_that_allows_them(component, path, key) -> None:
    refusals = BATCH.refusals(key)
    assert any(r.startswith(f"spec.{component}.values.{path}") for r in refusals), refusals


def test_the_batched_attacks_fail_validation_and_a_harmless_stack_beside_them_passes() -> None:
    """The attacks above are validated in one process (`Batch`): it exits 1 without a traceback, and a
    stack without an attack among them is refused for nothing."""
    assert BATCH.refusals(HARMLESS) == [] and BATCH.returncode == 1


@pytest.mark.parametrize("values, field", [
    ({"extraVolumes": [{"name": "root", "hostPath": {"path": "/"}}]}, "spec.collector.values.extraVolumes.0.hostPath"),
    ({"extraContainers": [{"name": "x", "image": "attacker.example/evil", "securityContext": {"privileged": True}}]},
     "spec.collector.values.extraContainers.0.image"),
    ({"podAnnotations": {"namespace": "team-b"}, "podLabels": {"image": "x"}}, None),
])
def test_cli_denies_host_and_identity_keys_even_inside_an_allowed_subtree(values, field) -> None:
    """A class allowing `extraVolumes`/`extraContainers` still never lets a hostPath, an image or a
    securityContext through; keys of user data (annotations, labels) are not mistaken for them."""
    platform = stack_class("permissive", {"collector": {"allowedValues": ["extraVolumes", "extraContainers",
                                                                          "podAnnotations", "podLabels"]}})
    result = validate(platform, stack("team-a", {"className": "permissive", "collector": {"values": values}}))
    if field is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 1
        assert field in result.stderr, result.stderr


# --- through the operator loop ------------------------------------------------------------------------

def operator(cluster, helm_binary):
    """The stack controller as `observatory run` builds it, charts from the operator's environment (the
    first-party stand-ins), against the RBAC-enforcing emulator."""
    return stack_operator(cluster, helm_binary, STAND_IN_CHARTS, namespaces=TENANTS)


def ready(cluster, namespace: str, name: str = "s1") -> dict:
    status = (cluster.get(STACKS, name, namespace) or {}).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})


def releases(cluster, namespace: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for record in cluster.list(SECRETS, namespace, labelSelector="owner=helm"):
        out.setdefault(record["metadata"]["labels"]["name"], []).append(record["metadata"]["labels"]["status"])
    return out


@contextlib.asynccontextmanager
async def two_tenants() -> AsyncIterator:
    async with cluster_context(emulator_class=HelmEmulator) as cluster:
        for namespace in TENANTS:
            cluster.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        cluster.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-password", "namespace": "team-b"},
                      "data": {"password": "dGVhbS1iLXNlY3JldC12YWx1ZQ=="}})  # team-b-secret-value
        yield cluster


def assert_nothing_escaped(cluster) -> None:
    assert cluster.list(DEPLOYMENTS, "kube-system") == []
    assert cluster.get(CONFIGMAPS, "stolen", "team-a") is None


@pytest.mark.parametrize("chart", [{"path": str(EVIL_CHART)}, {"repository": "https://charts.attacker.example"}],
                         ids=["path", "repository"])
async def test_a_tenant_chart_never_reaches_helm(helm, chart) -> None:
    """The CRD no longer has `chart`: kubectl's default (fieldValidation=Strict) is refused naming the
    field; a client that does not ask gets it pruned, as kube-apiserver prunes unknown fields of a
    structural schema, and the operator installs the chart of the operator, not the attacker's."""
    async with two_tenants() as cluster, operator(cluster, helm):
        attack = stack("team-a", {"collector": {"chart": chart}})
        status_code, body = cluster.request("POST", "/apis/observatory.dev/v1alpha1/namespaces/team-a/observabilitystacks"
                                            "?fieldValidation=Strict", attack, identity=ADMIN)
        assert status_code in (400, 422) and "spec.collector.chart" in body["message"], body
        cluster.seed(attack)
        cluster.seed(stack("team-b"))
        assert "chart" not in cluster.get(STACKS, "s1", "team-a")["spec"]["collector"]
        for namespace in TENANTS:
            await cluster.until(lambda namespace=namespace: releases(cluster, namespace) == {"s1-collector": ["deployed"]},
                                timeout=60)
        # The stand-in the operator's environment names, not the attacker's 6.6.6.
        await cluster.until(lambda: (((cluster.get(STACKS, "s1", "team-a").get("status") or {}).get("components") or {})
                                     .get("collector") or {}).get("chart") == "opentelemetry-collector-0.170.0", timeout=30)
        assert_nothing_escaped(cluster)


async def test_operator_refuses_escaping_values_and_keeps_the_last_good_release(helm) -> None:
    async with two_tenants() as cluster, operator(cluster, helm):
        cluster.seed(stack("team-a"))
        await cluster.until(lambda: releases(cluster, "team-a") == {"s1-collector": ["deployed"]}, timeout=60)
        cluster.patch(STACKS, "s1", "team-a", {"spec": {"collector": {"values": {
            "namespaceOverride": "kube-system", "hostNetwork": True}}}})
        await cluster.until(lambda: ready(cluster, "team-a").get("reason") == "InvalidSpec", timeout=60)
        message = ready(cluster, "team-a")["message"]
        assert "spec.collector.values.namespaceOverride" in message and "spec.collector.values.hostNetwork" in message
        # Nothing upgraded: revision 1 is still the only one.
        assert releases(cluster, "team-a") == {"s1-collector": ["deployed"]}
        cluster.seed(stack("team-b"))
        await cluster.until(lambda: releases(cluster, "team-b") == {"s1-collector": ["deployed"]}, timeout=60)
        assert_nothing_escaped(cluster)
