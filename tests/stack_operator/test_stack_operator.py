"""The ObservabilityStack operator end to end: kopf in-process, the emulator, the real helm binary
installing the real upstream charts (`real_charts`; skipped without ../shared/upstream), and the
first-party stand-in charts (tests/stack_operator/charts, see its README) where a test injects a
failure no real chart can."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import os
import shutil
import signal
import subprocess
import textwrap
from collections.abc import AsyncIterator

import kmock
import pytest
from conftest import CHARTS
from k8s.helm_support import (
    STAND_IN_CHARTS,
    clickhouse_crds,
    kubeconfig,
    set_available,
    stack_operator,
)
from k8s.rbac import ADMIN
from observatory.compile import CompileOptions
from observatory.controller.metrics import Metrics
from observatory.controller.stack_kube import StackKube
from observatory.controller.stack_reconcile import (
    LANGFUSE_PREREQUISITES,
    StackController,
    build_stack_controller,
)
from observatory.conventions import DEFAULT
from observatory.helm import REDACTED

NS = "team-a"
STACKS = "observatory.dev/v1alpha1/observabilitystacks"
CLASSES = "observatory.dev/v1alpha1/observabilitystackclasses"
SECRETS, CONFIGMAPS, PVCS = "v1/secrets", "v1/configmaps", "v1/persistentvolumeclaims"
DEPLOYMENTS = "apps/v1/deployments"
RELEASES = ("s1-phoenix", "s1-langfuse", "s1-collector")


def stack_class(name: str, spec: dict) -> dict:
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStackClass", "metadata": {"name": name}, "spec": spec}


def stack(spec: dict | None = None) -> dict:
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStack",
            "metadata": {"name": "s1", "namespace": NS}, "spec": spec or {}}


@contextlib.asynccontextmanager
async def operator(cluster, helm_binary, charts: dict[str, str] | None = None) -> AsyncIterator[StackController]:
    """One operator incarnation: its own adapter, helm and kopf; charts from the operator's env
    (default: the stand-in charts)."""
    async with stack_operator(cluster, helm_binary, charts or STAND_IN_CHARTS, namespaces=(NS,)) as controller:
        yield controller


def status(cluster) -> dict:
    return (cluster.get(STACKS, "s1", NS) or {}).get("status") or {}


def condition(cluster, type_: str) -> dict:
    return next((c for c in status(cluster).get("conditions") or [] if c["type"] == type_), {})


def settled(cluster, degraded: str) -> bool:
    """Degraded is `degraded` in the status of the stack's current generation, from one read of the
    stack: separate reads can pair one status's Degraded with the next one's observedGeneration."""
    obj = cluster.get(STACKS, "s1", NS) or {}
    st = obj.get("status") or {}
    cond = next((c for c in st.get("conditions") or [] if c["type"] == "Degraded"), {})
    return cond.get("status") == degraded and st.get("observedGeneration") == obj.get("metadata", {}).get("generation")


def release_records(cluster) -> dict[str, list[str]]:
    """helm's release records: release name -> statuses of its revisions."""
    out: dict[str, list[str]] = {}
    for record in cluster.list(SECRETS, NS, labelSelector="owner=helm"):
        labels = record["metadata"]["labels"]
        out.setdefault(labels["name"], []).append(labels["status"])
    return out


def generated_secret(cluster) -> dict[str, str]:
    secret = cluster.get(SECRETS, "s1-observatory-secrets", NS)
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def assert_no_secret_leaks(cluster, values) -> None:
    """No generated value in status, events, the apps' ConfigMap, rendered workloads or helm's
    release records (which hold each release's values and rendered manifests)."""
    records = [gzip.decompress(base64.b64decode(base64.b64decode(r["data"]["release"]))).decode()
               for r in cluster.list(SECRETS, NS, labelSelector="owner=helm")]
    assert records
    exposed = json.dumps([cluster.get(STACKS, "s1", NS), cluster.list("events.k8s.io/v1/events", NS),
                          cluster.get(CONFIGMAPS, "s1-otel", NS),
                          *[d["spec"] for d in cluster.list(DEPLOYMENTS, NS)], *records])
    for value in values:
        assert value not in exposed


async def test_create_update_ready_and_delete(acluster, helm, real_charts, upstream_dir):
    """The real upstream charts, the ClickHouse operator's real CRDs."""
    cluster = acluster
    clickhouse_crds(cluster, upstream_dir)
    async with operator(cluster, helm, real_charts) as controller:
        cluster.seed(stack())
        await cluster.until(lambda: condition(cluster, "Progressing").get("status") == "True", timeout=120)
        assert sorted(release_records(cluster)) == sorted(RELEASES)
        assert controller.helm.upgrades == 3

        # The generated Secret holds every required key; values only ever referenced.
        secret = generated_secret(cluster)
        assert sorted(secret) == sorted(["PHOENIX_SECRET", "PHOENIX_ADMIN_SECRET", "PHOENIX_DEFAULT_ADMIN_INITIAL_PASSWORD",
                                         "langfuse-salt", "langfuse-encryption-key", "langfuse-nextauth-secret",
                                         "langfuse-public-key", "langfuse-secret-key", "langfuse-user-password"])
        assert secret["langfuse-public-key"].startswith("pk-lf-") and len(secret["langfuse-encryption-key"]) == 64
        assert_no_secret_leaks(cluster, secret.values())

        # The apps' ConfigMap points at the collector endpoint the status reports.
        st = status(cluster)
        otel = cluster.get(CONFIGMAPS, "s1-otel", NS)
        assert otel["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == st["endpoints"]["otlpHttp"] \
            == f"http://s1-collector.{NS}.svc.cluster.local:4318"
        assert st["endpoints"]["otlpGrpc"].endswith(":4317") and st["endpoints"]["phoenixUI"].endswith(":6006")
        assert st["endpoints"]["langfuseUI"] == f"http://s1-langfuse-web.{NS}.svc.cluster.local:3000"
        assert st["configMap"] == "s1-otel"
        assert otel["metadata"]["ownerReferences"][0]["kind"] == "ObservabilityStack"
        assert cluster.list("monitoring.coreos.com/v1/prometheusrules", NS), "the default rule pack"
        assert {c: st["components"][c]["revision"] for c in ("phoenix", "langfuse", "collector")} == \
            {"phoenix": 1, "langfuse": 1, "collector": 1}
        assert condition(cluster, "Ready")["status"] == "False"

        # The Deployment controller reports them available: the readiness timer turns the stack Ready.
        assert sorted(set_available(cluster, NS)) == ["s1-collector", "s1-langfuse-postgresql", "s1-langfuse-redis",
                                                      "s1-langfuse-s3-all-in-one", "s1-langfuse-web", "s1-langfuse-worker",
                                                      "s1-phoenix"]
        await cluster.until(lambda: condition(cluster, "Ready").get("status") == "True", timeout=60)
        assert condition(cluster, "Progressing")["status"] == "False"
        assert condition(cluster, "CollectorReady")["message"] == "1 workload(s) available"

        # Update: only the collector's values change, so only its release is upgraded.
        cluster.patch(STACKS, "s1", NS, {"spec": {"collector": {"replicas": 2}}})
        await cluster.until(lambda: status(cluster).get("components", {}).get("collector", {}).get("revision") == 2,
                            timeout=120)
        assert controller.helm.upgrades == 4
        assert {name: len(revisions) for name, revisions in release_records(cluster).items()} == \
            {"s1-phoenix": 1, "s1-langfuse": 1, "s1-collector": 2}
        assert cluster.get(DEPLOYMENTS, "s1-collector", NS)["spec"]["replicas"] == 2
        # The new replica is not available yet: the stack is Progressing again until it is.
        await cluster.until(lambda: condition(cluster, "CollectorReady").get("status") == "False", timeout=60)
        set_available(cluster, NS)
        await cluster.until(lambda: condition(cluster, "Ready").get("status") == "True", timeout=60)
        assert generated_secret(cluster) == secret

        # Delete (deletionPolicy Retain): releases uninstalled, Phoenix's PVC and the Secret kept.
        assert cluster.get(PVCS, "s1-phoenix-data-pvc", NS) is not None
        cluster.delete(STACKS, "s1", NS)
        await cluster.until(lambda: cluster.get(STACKS, "s1", NS) is None, timeout=120)
        assert release_records(cluster) == {}
        assert cluster.list(DEPLOYMENTS, NS) == []
        await cluster.until(lambda: cluster.get(CONFIGMAPS, "s1-otel", NS) is None)  # owned: garbage-collected
        assert cluster.get(PVCS, "s1-phoenix-data-pvc", NS) is not None
        assert generated_secret(cluster) == secret


async def test_delete_policy_delete_removes_pvcs_and_secret(acluster, helm, real_charts, upstream_dir):
    cluster = acluster
    clickhouse_crds(cluster, upstream_dir)
    async with operator(cluster, helm, real_charts):
        cluster.seed(stack({"deletionPolicy": "Delete"}))
        await cluster.until(lambda: sorted(release_records(cluster)) == sorted(RELEASES), timeout=60)
        # helm uninstall keeps what the charts mark `keep`: Phoenix's PVC and the Langfuse chart's
        # generated credentials (found by helm's release annotation, their labels name no release),
        # and StatefulSets' claims (found by their instance label): the operator deletes them all.
        assert cluster.get(PVCS, "s1-phoenix-data-pvc", NS) is not None
        assert cluster.get(SECRETS, "s1-langfuse-postgresql-auth", NS) is not None
        cluster.seed({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                      "metadata": {"name": "data-s1-phoenix-0", "namespace": NS,
                                   "labels": {"app.kubernetes.io/instance": "s1-phoenix"}}, "spec": {}})
        cluster.delete(STACKS, "s1", NS)
        await cluster.until(lambda: cluster.get(STACKS, "s1", NS) is None, timeout=120)
        assert cluster.list(PVCS, NS) == []
        assert cluster.list(SECRETS, NS) == []  # the generated Secret too
        assert release_records(cluster) == {}


async def test_helm_failure_is_degraded_scrubbed_and_recovers(acluster, helm):
    """The stand-in Phoenix chart fails rendering, quoting a generated secret; fixing the spec recovers."""
    cluster = acluster
    async with operator(cluster, helm) as controller:
        cluster.seed(stack_class("test", {"phoenix": {"allowedValues": ["failOnSecretKey"]}}))
        cluster.seed(stack({"className": "test", "langfuse": {"enabled": False},
                            "phoenix": {"values": {"failOnSecretKey": "PHOENIX_ADMIN_SECRET"}}}))
        await cluster.until(lambda: condition(cluster, "Degraded").get("status") == "True", timeout=120)
        secret = generated_secret(cluster)
        degraded = condition(cluster, "Degraded")
        assert degraded["reason"] == "HelmFailed"
        assert f"cannot render with {REDACTED}" in degraded["message"]
        assert status(cluster)["components"]["phoenix"]["ready"] is False
        # The collector does not depend on Phoenix's release: it is installed regardless.
        assert "s1-collector" in release_records(cluster) and "s1-phoenix" not in release_records(cluster)
        # Retried with backoff while the spec is unchanged.
        await cluster.until(lambda: controller.helm.upgrades >= 4, timeout=60)
        assert_no_secret_leaks(cluster, secret.values())

        cluster.patch(STACKS, "s1", NS, {"spec": {"phoenix": {"values": None}}})
        await cluster.until(lambda: condition(cluster, "Degraded").get("status") == "False", timeout=120)
        assert release_records(cluster)["s1-phoenix"] == ["deployed"]
        assert generated_secret(cluster) == secret


async def test_api_500_during_install_is_retried(acluster, helm, real_charts):
    cluster = acluster
    async with operator(cluster, helm, real_charts):
        # helm 3 creates chart objects with POST; the first Deployment create fails.
        cluster.fail("POST", rf"^/apis/apps/v1/namespaces/{NS}/deployments$", status=500, times=1)
        cluster.seed(stack({"langfuse": {"enabled": False}}))
        await cluster.until(lambda: condition(cluster, "Degraded").get("status") == "True", timeout=120)
        assert "500" in condition(cluster, "Degraded")["message"] or "nternal" in condition(cluster, "Degraded")["message"]
        await cluster.until(lambda: condition(cluster, "Degraded").get("status") == "False", timeout=120)
        set_available(cluster, NS)
        await cluster.until(lambda: condition(cluster, "Ready").get("status") == "True", timeout=60)
        assert sorted(cluster.get(DEPLOYMENTS, n, NS)["metadata"]["name"] for n in ("s1-phoenix", "s1-collector"))


async def test_secrets_survive_restarts_and_nothing_is_rewritten(acluster, helm, real_charts, upstream_dir):
    cluster = acluster
    clickhouse_crds(cluster, upstream_dir)
    async with operator(cluster, helm, real_charts):
        cluster.seed(stack())
        await cluster.until(lambda: len(status(cluster).get("components", {})) == 3, timeout=120)
        set_available(cluster, NS)
        await cluster.until(lambda: condition(cluster, "Ready").get("status") == "True", timeout=60)
    first = cluster.get(SECRETS, "s1-observatory-secrets", NS)
    cluster.clear_requests()
    async with operator(cluster, helm, real_charts) as restarted:
        # kopf's resume handler runs the full reconcile once.
        await cluster.until(lambda: restarted.metrics.registry.get_sample_value(
            "observatory_reconcile_total", {"kind": "ObservabilityStack", "result": "applied"}), timeout=120)
    assert restarted.helm.upgrades == 0
    assert cluster.get(SECRETS, "s1-observatory-secrets", NS) == first
    writes = cluster.write_counts()
    assert writes["secrets"] == 0 and writes["configmaps"] == 0 and writes["observabilitystacks/status"] == 0, writes


async def test_missing_langfuse_prerequisites_install_nothing(acluster, helm):
    cluster = acluster
    async with operator(cluster, helm) as controller:
        cluster.seed(stack())
        await cluster.until(lambda: condition(cluster, "LangfuseReady").get("reason") == "PrerequisiteMissing",
                            timeout=120)
        message = condition(cluster, "LangfuseReady")["message"]
        assert all(crd in message for crd in LANGFUSE_PREREQUISITES)
        assert condition(cluster, "Ready")["status"] == "False" and condition(cluster, "Degraded")["status"] == "True"
    assert controller.helm.upgrades == 0 and release_records(cluster) == {}


@pytest.mark.parametrize("binary_name", ["helm", "helm4"])
async def test_external_clickhouse_needs_no_prerequisites(acluster, request, binary_name, real_charts):
    cluster = acluster
    async with operator(cluster, request.getfixturevalue(binary_name), real_charts):
        cluster.seed(stack({"langfuse": {"dedicated": {"clickhouse": {"host": "ch.example", "passwordSecret": {"name": "ch"}}}}}))
        await cluster.until(lambda: sorted(release_records(cluster)) == sorted(RELEASES), timeout=120)
        await cluster.until(lambda: condition(cluster, "Progressing").get("status") == "True", timeout=60)


async def test_a_class_chart_change_upgrades_the_release_of_its_stacks_only(acluster, helm, tmp_path):
    """The class's spec.phoenix.chart.path (a mirror copy with a newer version) replaces the operator's
    chart: changing the class re-reconciles the stacks of that class (kopf's index of stacks by class),
    not a stack of another class."""
    cluster = acluster
    mirror = tmp_path / "phoenix-helm"
    shutil.copytree(CHARTS / "phoenix-helm", mirror)
    chart = (mirror / "Chart.yaml").read_text().replace("version: 12.0.4", "version: 12.0.5")
    (mirror / "Chart.yaml").write_text(chart)
    async with operator(cluster, helm) as controller:
        cluster.seed(stack_class("mirrored", {}))
        cluster.seed(stack_class("other", {}))
        cluster.seed(stack({"className": "mirrored", "langfuse": {"enabled": False}}))
        cluster.seed({**stack({"className": "other", "langfuse": {"enabled": False}}), "metadata": {"name": "s2", "namespace": NS}})
        await cluster.until(lambda: status(cluster).get("components", {}).get("phoenix", {}).get("revision") == 1
                            and status(cluster).get("className") == "mirrored", timeout=120)
        await cluster.until(lambda: controller.helm.upgrades == 4, timeout=120)
        cluster.patch(CLASSES, "mirrored", None, {"spec": {"phoenix": {"chart": {"path": str(mirror)}}}})
        await cluster.until(lambda: status(cluster).get("components", {}).get("phoenix", {}).get("revision") == 2, timeout=120)
        assert status(cluster)["components"]["phoenix"]["chart"] == "phoenix-helm-12.0.5"
        assert status(cluster)["components"]["collector"]["revision"] == 1
        assert release_records(cluster)["s2-phoenix"] == ["deployed"]  # the other class's stack: untouched
        assert controller.helm.upgrades == 5


async def test_a_stack_name_too_long_for_its_releases_is_refused_by_the_apiserver(acluster, helm):
    """A 40-character name would fail at helm on every retry: the CRD's rule refuses it at create
    (the model's own check, for `observatory validate`, is in tests/stack_operator/test_stack_names.py)."""
    cluster, name = acluster, "s" * 40
    async with operator(cluster, helm) as controller:
        with pytest.raises(kmock.KubernetesError) as refused:
            cluster.seed({**stack(), "metadata": {"name": name, "namespace": NS}})
        assert refused.value.status == 422 and "at most 32 characters" in str(refused.value)
        assert cluster.get(STACKS, name, NS) is None
    assert controller.helm.upgrades == 0 and release_records(cluster) == {}


def pid_recording(helm_binary, tmp_path):
    """A stand-in for helm that records each invocation's pid (exec keeps it), then is the real helm."""
    pids, wrapper = tmp_path / "helm-pids", tmp_path / "helm"
    wrapper.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo $$ >> {pids}
        exec {helm_binary} "$@"
        """))
    wrapper.chmod(0o755)
    return wrapper, pids


# The Deployment write helm makes while its release record says pending: helm 3 creates with POST
# and updates with a three-way PATCH; helm 4 applies server-side (PATCH) both times.
HUNG_WRITE = {("helm", "install"): "POST", ("helm", "upgrade"): "PATCH",
              ("helm4", "install"): "PATCH", ("helm4", "upgrade"): "PATCH"}


@pytest.mark.parametrize("binary_name, operation", list(HUNG_WRITE))
async def test_a_helm_killed_mid_operation_leaves_a_pending_release_that_is_recovered(
        acluster, request, tmp_path, real_charts, binary_name, operation):
    """SIGKILL the real helm while a request of its install/upgrade hangs: the release stays
    pending-<operation> (every later upgrade would answer "another operation is in progress");
    the next reconcile rolls back to the deployed revision (or uninstalls the first install) and
    then converges."""
    cluster = acluster
    wrapper, pids = pid_recording(request.getfixturevalue(binary_name), tmp_path)
    spec = {"langfuse": {"enabled": False}, "phoenix": {"enabled": False}}
    method = HUNG_WRITE[binary_name, operation]
    deployment = rf"^/apis/apps/v1/namespaces/{NS}/deployments" + ("$" if method == "POST" else "/s1-collector$")
    async with operator(cluster, wrapper, real_charts) as controller:
        if operation == "install":
            cluster.hang(method, deployment)
            cluster.seed(stack(spec))
        else:
            cluster.seed(stack(spec))
            await cluster.until(lambda: release_records(cluster) == {"s1-collector": ["deployed"]}, timeout=60)
            cluster.clear_requests()  # the install's own Deployment write is not the one that hangs
            cluster.hang(method, deployment)
            cluster.patch(STACKS, "s1", NS, {"spec": {"collector": {"replicas": 2}}})
        await cluster.until(lambda: f"pending-{operation}" in release_records(cluster).get("s1-collector", []), timeout=60)
        await cluster.until(lambda: any(r.method == method and r.resource is not None and r.resource.plural == "deployments"
                                        for r in cluster.requests), timeout=60)
        os.kill(int(pids.read_text().split()[-1]), signal.SIGKILL)
        cluster.call(cluster.emulator.release_hung)

        await cluster.until(lambda: settled(cluster, "False"), timeout=60)
        # Rolled back (revision 3, a copy of 1) then upgraded (4); helm leaves the killed revision as it was.
        # A first install that never deployed was uninstalled and installed again.
        assert release_records(cluster)["s1-collector"] == (
            ["superseded", "pending-upgrade", "superseded", "deployed"] if operation == "upgrade" else ["deployed"])
        assert cluster.get(DEPLOYMENTS, "s1-collector", NS)["spec"]["replicas"] == (2 if operation == "upgrade" else 1)
        assert controller.helm.upgrades >= 2


async def test_a_release_of_the_same_name_that_observatory_did_not_install_is_left_alone(acluster, helm, real_charts, tmp_path):
    """Someone's own `helm install s1-collector` in the namespace: the stack reports the conflict and
    neither upgrades (adopts) nor, when deleted, uninstalls it; its own releases carry its uid."""
    cluster = acluster
    config = tmp_path / "kubeconfig"
    config.write_text(kubeconfig(cluster, NS, ADMIN))  # someone else: the operator may not write there itself
    cluster.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    await asyncio.to_thread(subprocess.run, [str(helm), "install", "s1-collector", real_charts["OBSERVATORY_COLLECTOR_CHART"], "--kubeconfig", str(config),
                    "--set", "mode=deployment", "--set", "image.repository=otel/opentelemetry-collector-k8s"],
                   check=True, capture_output=True, timeout=120)
    async with operator(cluster, helm, real_charts) as controller:
        cluster.seed(stack({"langfuse": {"enabled": False}}))
        await cluster.until(lambda: condition(cluster, "CollectorReady").get("reason") == "ReleaseConflict", timeout=60)
        message = condition(cluster, "CollectorReady")["message"]
        assert "s1-collector" in message and "not installed by Observatory for this stack" in message, message
        assert condition(cluster, "Degraded")["status"] == "True"
        assert release_records(cluster) == {"s1-collector": ["deployed"], "s1-phoenix": ["deployed"]}
        assert controller.helm.upgrades == 1  # Phoenix only
        uid = cluster.get(STACKS, "s1", NS)["metadata"]["uid"]
        owners = {r["metadata"]["labels"]["name"]: r["metadata"]["labels"].get("observatory.dev/owner-uid")
                  for r in cluster.list(SECRETS, NS, labelSelector="owner=helm")}
        assert owners == {"s1-collector": None, "s1-phoenix": uid}

        cluster.delete(STACKS, "s1", NS)
        await cluster.until(lambda: cluster.get(STACKS, "s1", NS) is None, timeout=120)
    assert release_records(cluster) == {"s1-collector": ["deployed"]}
    assert [d["metadata"]["name"] for d in cluster.list(DEPLOYMENTS, NS)] == ["s1-collector-opentelemetry-collector"]


async def test_a_component_dropped_while_its_install_is_reconciled_is_uninstalled_from_a_stale_body(acluster, helm):
    """kopf hands the change as its event had it, without the status the install wrote since: the
    status naming Phoenix's release is what the stack holds, so the release the change drops goes."""
    cluster = acluster
    api_client = cluster.api_client()
    controller = build_stack_controller(StackKube(api_client, DEFAULT), CompileOptions(), Metrics(),
                                        kubeconfig=kubeconfig(cluster), helm_executable=str(helm), env=STAND_IN_CHARTS)
    try:
        cluster.seed(stack({"langfuse": {"enabled": False}}))
        created = cluster.get(STACKS, "s1", NS)
        changed = cluster.patch(STACKS, "s1", NS, {"spec": {"phoenix": {"enabled": False}}})
        await controller.reconcile(created)
        assert sorted(status(cluster)["components"]) == ["collector", "phoenix"]
        assert "status" not in changed
        await controller.reconcile(changed)
        assert sorted(release_records(cluster)) == ["s1-collector"]
        assert sorted(status(cluster)["components"]) == ["collector"]
    finally:
        controller.helm.close()
        api_client.close()
