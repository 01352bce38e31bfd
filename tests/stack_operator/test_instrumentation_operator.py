"""A stack's OpenTelemetry Operator `Instrumentation` (issue 16, scope 4), end to end: kopf in-process,
the RBAC-enforcing emulator with the OpenTelemetry Operator's real CRD (v0.158.0,
tests/fixtures/crds/opentelemetry.io_instrumentations.yaml) installed or not, the real helm binary
with the stand-in charts. The Instrumentation is written as the namespace's installer, whose
ClusterRole is the chart's (charts/observatory/files/rbac.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
from k8s.helm_support import STAND_IN_CHARTS, install_crds, stack_operator
from observatory.compile import CompileError
from observatory.models import parse_resource
from observatory.rbac import INSTALLER

NS = "team-a"
STACKS = "observatory.dev/v1alpha1/observabilitystacks"
CLASSES = "observatory.dev/v1alpha1/observabilitystackclasses"
INSTRUMENTATIONS = "opentelemetry.io/v1alpha1/instrumentations"
CLUSTERROLES = "rbac.authorization.k8s.io/v1/clusterroles"
CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"
CRD_FIXTURE = Path(__file__).parents[1] / "fixtures" / "crds" / "opentelemetry.io_instrumentations.yaml"
COLLECTOR_OTLP_HTTP = f"http://s1-collector.{NS}.svc.cluster.local:4318"
WANTED_SPEC = {
    "exporter": {"endpoint": COLLECTOR_OTLP_HTTP},
    "propagators": ["tracecontext", "baggage"],
    "python": {"env": [{"name": "OTEL_SEMCONV_STABILITY_OPT_IN", "value": "gen_ai_latest_experimental"},
                       {"name": "OTEL_LOGS_EXPORTER", "value": "none"}]},
}


def stack(spec: dict | None = None) -> dict:
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStack",
            "metadata": {"name": "s1", "namespace": NS}, "spec": {"langfuse": {"enabled": False}, **(spec or {})}}


def reported(cluster) -> dict:
    return ((cluster.get(STACKS, "s1", NS) or {}).get("status") or {}).get("instrumentation") or {}


def instrumentation(cluster) -> dict | None:
    return cluster.get(INSTRUMENTATIONS, "s1-python", NS)


def otel_crd(cluster) -> None:
    install_crds(cluster, [CRD_FIXTURE])


async def test_without_the_crd_nothing_is_written_and_the_status_says_why_then_its_arrival_creates_it(acluster, helm):
    cluster = acluster
    async with stack_operator(cluster, helm, STAND_IN_CHARTS, namespaces=(NS,)):
        cluster.seed(stack())
        await cluster.until(lambda: reported(cluster).get("created") is False, timeout=30)
        assert "instrumentations.opentelemetry.io" in reported(cluster)["reason"]
        assert "spec.instrumentation.enabled" in reported(cluster)["reason"]
        assert not [r for r in cluster.requests if r.resource is not None and r.resource.plural == "instrumentations"]

        # The CRD installed later: kopf's watch on CRDs re-reconciles the waiting stack, no resync needed
        # (the harness's resync is an hour).
        otel_crd(cluster)
        await cluster.until(lambda: reported(cluster).get("created") is True, timeout=30)
        assert reported(cluster) == {"created": True, "name": "s1-python", "reason": ""}
        live = instrumentation(cluster)
        assert live["spec"] == WANTED_SPEC
        assert live["spec"]["exporter"]["endpoint"] == cluster.get(STACKS, "s1", NS)["status"]["endpoints"]["otlpHttp"]
        owner = cluster.get(STACKS, "s1", NS)["metadata"]["uid"]
        assert [(r["uid"], r["controller"]) for r in live["metadata"]["ownerReferences"]] == [(owner, True)]
        assert cluster.emulator.rbac.denials == []

        # Deleted with the stack (garbage collector, by the owner reference).
        cluster.delete(STACKS, "s1", NS)
        await cluster.until(lambda: cluster.get(STACKS, "s1", NS) is None and instrumentation(cluster) is None, timeout=30)


async def test_a_crd_not_served_yet_is_reported_and_its_establishment_creates_the_instrumentation(acluster, helm):
    """A CRD just created is served only once Established (the apiserver's apiextensions controller
    then updates its status: a MODIFIED event): until then a write is a 404, reported, and the stack's
    releases are not held up."""
    cluster = acluster
    otel_crd(cluster)
    cluster.fail("POST", rf"^/apis/opentelemetry.io/v1alpha1/namespaces/{NS}/instrumentations$", status=404, times=1)
    async with stack_operator(cluster, helm, STAND_IN_CHARTS, namespaces=(NS,)):
        cluster.seed(stack())
        await cluster.until(lambda: reported(cluster).get("created") is False, timeout=30)
        assert "could not be written: 404" in reported(cluster)["reason"]
        cluster.patch(CRDS, "instrumentations.opentelemetry.io", None,
                      {"status": {"conditions": [{"type": "Established", "status": "True"}]}}, sub="status")
        await cluster.until(lambda: reported(cluster).get("created") is True, timeout=30)
        assert instrumentation(cluster)["spec"] == WANTED_SPEC


async def test_a_tenants_edits_are_undone_and_opting_out_deletes_it(acluster, helm):
    """The tenant (who may write Instrumentations in its namespace) redirects the exporter and adds a
    common env var pointing elsewhere: the next reconcile puts back exactly the stack's spec."""
    cluster = acluster
    otel_crd(cluster)
    async with stack_operator(cluster, helm, STAND_IN_CHARTS, namespaces=(NS,)) as controller:
        cluster.seed(stack())
        await cluster.until(lambda: reported(cluster).get("created") is True, timeout=30)
        cluster.patch(INSTRUMENTATIONS, "s1-python", NS, {"spec": {
            "exporter": {"endpoint": "http://collector.team-b.svc:4318"},
            "env": [{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://evil.example:4318"}]}})
        await controller.reconcile_current(NS, "s1", {})
        assert instrumentation(cluster)["spec"] == WANTED_SPEC

        cluster.patch(STACKS, "s1", NS, {"spec": {"instrumentation": {"enabled": False}}})
        await cluster.until(lambda: instrumentation(cluster) is None, timeout=30)
        await cluster.until(lambda: reported(cluster) == {"created": False, "reason": "spec.instrumentation.enabled is false"},
                            timeout=30)
        # Off, a tenant's own Instrumentation of that name is not the stack's: left alone.
        cluster.seed({"apiVersion": "opentelemetry.io/v1alpha1", "kind": "Instrumentation",
                      "metadata": {"name": "s1-python", "namespace": NS}, "spec": {"exporter": {"endpoint": "http://mine:4318"}}})
        await controller.reconcile_current(NS, "s1", {})
        assert instrumentation(cluster)["spec"] == {"exporter": {"endpoint": "http://mine:4318"}}


async def test_the_platforms_class_chooses_the_python_image_and_a_change_of_it_reaches_the_stack(acluster, helm):
    """The GenAI instrumentations are not in the OpenTelemetry Operator's own image: a class names one
    that has them; changing the class re-reconciles its stacks (kopf's event on classes)."""
    cluster = acluster
    otel_crd(cluster)
    image = "registry.internal/otel/autoinstrumentation-python-genai:0.65b0"
    cluster.seed({"apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStackClass", "metadata": {"name": "genai"},
                  "spec": {"instrumentation": {"pythonImage": image}}})
    async with stack_operator(cluster, helm, STAND_IN_CHARTS, namespaces=(NS,)):
        cluster.seed(stack({"className": "genai"}))
        await cluster.until(lambda: reported(cluster).get("created") is True, timeout=30)
        assert instrumentation(cluster)["spec"] == {**WANTED_SPEC, "python": {**WANTED_SPEC["python"], "image": image}}
        cluster.patch(CLASSES, "genai", None, {"spec": {"instrumentation": {"pythonImage": image + "-2"}}})
        await cluster.until(lambda: instrumentation(cluster)["spec"]["python"].get("image") == image + "-2", timeout=30)


async def test_hostile_stack_fields_cannot_point_it_elsewhere(acluster, helm):
    """No field of the stack names an endpoint, image or env: the apiserver prunes what the CRD does
    not declare (our generated CRD, structural), and the operator's model refuses it naming the field."""
    cluster = acluster
    otel_crd(cluster)
    hostile = {"instrumentation": {"enabled": True, "endpoint": "http://evil.example:4318",
                                   "python": {"image": "evil/python:latest"}}}
    with pytest.raises(CompileError) as refused:
        parse_resource(stack(hostile))
    assert "spec.instrumentation.endpoint" in str(refused.value)
    async with stack_operator(cluster, helm, STAND_IN_CHARTS, namespaces=(NS,)):
        cluster.seed(stack(hostile))
        assert cluster.get(STACKS, "s1", NS)["spec"]["instrumentation"] == {"enabled": True}
        await cluster.until(lambda: reported(cluster).get("created") is True, timeout=30)
        assert instrumentation(cluster)["spec"] == WANTED_SPEC
    # A non-boolean is refused by the apiserver (the CRD's type), as kubectl apply would be.
    code, body = cluster.request("POST", f"/apis/observatory.dev/v1alpha1/namespaces/{NS}/observabilitystacks",
                                 {**stack({"instrumentation": {"enabled": "yes"}}), "metadata": {"name": "s2"}})
    assert code == 422 and "spec.instrumentation.enabled" in str(body), body


async def test_the_installer_writes_it_and_a_403_is_reported_without_holding_up_the_releases(acluster, helm):
    """The emulator enforces the installer ClusterRole the chart renders: without its instrumentations
    rule the write is refused, the stack's releases are still installed and the status names the refusal."""
    cluster = acluster
    otel_crd(cluster)
    role = cluster.get(CLUSTERROLES, INSTALLER)
    cluster.patch(CLUSTERROLES, INSTALLER, None, {"rules": [r for r in role["rules"] if r["apiGroups"] != ["opentelemetry.io"]]})
    async with stack_operator(cluster, helm, STAND_IN_CHARTS, namespaces=(NS,)):
        cluster.seed(stack())
        await cluster.until(lambda: reported(cluster).get("created") is False, timeout=30)
        assert "403" in reported(cluster)["reason"] and f"system:serviceaccount:{NS}:{INSTALLER}" in reported(cluster)["reason"]
        assert instrumentation(cluster) is None
        components = cluster.get(STACKS, "s1", NS)["status"]["components"]
        assert {name: c["release"] for name, c in components.items()} == {"phoenix": "s1-phoenix", "collector": "s1-collector"}


def test_the_emulator_refuses_what_the_real_crd_refuses(cluster):
    """The fixture's schema is enforced: an unknown propagator (the CRD's enum) is a 422."""
    otel_crd(cluster)
    status, body = cluster.request("POST", "/apis/opentelemetry.io/v1alpha1/namespaces/default/instrumentations", {
        "apiVersion": "opentelemetry.io/v1alpha1", "kind": "Instrumentation", "metadata": {"name": "x"},
        "spec": {"propagators": ["carrier-pigeon"]}})
    assert status == 422 and "spec.propagators[0]" in str(body), body


def test_a_status_patch_removes_nested_keys_no_longer_reported(cluster):
    """A JSON merge patch merges nested objects (RFC 7386): a key gone from status.endpoints or
    status.instrumentation must be nulled there, or it outlives what it described."""
    from observatory.controller.kube import Kube
    from observatory.conventions import DEFAULT
    cluster.seed({**stack(), "metadata": {"name": "s1", "namespace": "default"}})
    before = {"endpoints": {"otlpHttp": COLLECTOR_OTLP_HTTP, "phoenixUI": "http://s1-phoenix-svc:6006"},
              "instrumentation": {"created": True, "name": "s1-python"}}
    cluster.patch(STACKS, "s1", "default", {"status": before}, sub="status")
    after = {"endpoints": {"otlpHttp": COLLECTOR_OTLP_HTTP},
             "instrumentation": {"created": False, "reason": "spec.instrumentation.enabled is false"}}
    api = cluster.api_client()
    try:
        Kube(api, DEFAULT).patch_status("observabilitystacks", "default", "s1", after, before)
    finally:
        api.close()
    assert cluster.get(STACKS, "s1", "default")["status"] == after
