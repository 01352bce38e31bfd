"""`observatory run` serves ObservabilityStacks: the real process installs both example stacks with
the real upstream charts (../shared/upstream/charts/packaged) under the example default
ObservabilityStackClass through its own helm path, into the
emulator playing the Deployment, StatefulSet and Job controllers: Ready, upgraded on a spec
change, uninstalled without leftovers; two tenants' stacks of the same name side by side."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import yaml
from controller_harness import free_port
from k8s.emulator import Cluster, cluster_context
from k8s.helm_support import (
    HelmEmulator,
    clickhouse_crds,
    helm_objects,
    kubeconfig,
    set_available,
)

REPO = Path(__file__).resolve().parents[2]
UPSTREAM_CHARTS = {"PHOENIX": "phoenix-helm-12.0.4.tgz", "LANGFUSE": "langfuse-2.0.0.tgz",
                   "COLLECTOR": "opentelemetry-collector-0.170.0.tgz"}
STACKS = "observatory.dev/v1alpha1/observabilitystacks"
SECRETS, PVCS = "v1/secrets", "v1/persistentvolumeclaims"
DEPLOYMENTS = "apps/v1/deployments"
TENANTS = ("team-a", "team-b")
RELEASES = {"team-a": {"llm-phoenix", "llm-langfuse", "llm-collector"}, "team-b": {"llm-phoenix", "llm-collector"}}


def example(name: str) -> dict:
    return yaml.safe_load((REPO / "examples" / "stacks" / name).read_text())


def stack_status(cluster: Cluster, namespace: str) -> dict:
    return (cluster.get(STACKS, "llm", namespace) or {}).get("status") or {}


def condition(cluster: Cluster, namespace: str, type_: str) -> dict:
    return next((c for c in stack_status(cluster, namespace).get("conditions") or [] if c["type"] == type_), {})


def deployed(cluster: Cluster, namespace: str) -> dict[str, int]:
    """Release name -> its deployed revision, from helm's release records."""
    return {r["metadata"]["labels"]["name"]: int(r["metadata"]["labels"]["version"])
            for r in cluster.list(SECRETS, namespace, labelSelector="owner=helm,status=deployed")}


@contextlib.asynccontextmanager
async def observatory_run(cluster: Cluster, tmp_path: Path, upstream_dir: Path) -> AsyncIterator[None]:
    """The real operator process, watching both tenants, charts from the operator's environment."""
    config = tmp_path / "kubeconfig"
    config.write_text(kubeconfig(cluster))
    packaged = upstream_dir / "charts" / "packaged"
    env = {**os.environ, "KUBECONFIG": str(config), "OBSERVATORY_WATCH_NAMESPACES": ",".join(TENANTS),
           "OBSERVATORY_HEALTH_PORT": str(free_port()), "OBSERVATORY_METRICS_PORT": str(free_port()),
           **{f"OBSERVATORY_{component}_CHART": str(packaged / chart) for component, chart in UPSTREAM_CHARTS.items()},
           **{f"HELM_{home}_HOME": str(tmp_path / f"helm-{home.lower()}") for home in ("CACHE", "CONFIG", "DATA")}}
    log = tmp_path / "observatory.log"
    with log.open("wb") as output:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "observatory", "run", env=env,
                                                    stdout=output, stderr=asyncio.subprocess.STDOUT)
    try:
        yield
    except BaseException as e:
        e.add_note("observatory run's output (tail):\n" + log.read_text()[-4000:])
        raise
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0, log.read_text()[-3000:]


async def test_both_example_stacks_install_the_real_charts_upgrade_and_uninstall(tmp_path, upstream_dir):
    async with cluster_context(emulator_class=HelmEmulator, operator_namespaces=TENANTS) as cluster, observatory_run(cluster, tmp_path, upstream_dir):
        clickhouse_crds(cluster, upstream_dir)
        cluster.seed(yaml.safe_load((REPO / "examples" / "stackclasses" / "default.yaml").read_text()))
        for name in ("team-a-dedicated.yaml", "team-b-external.yaml"):
            cluster.seed(example(name))
        for tenant in TENANTS:
            await cluster.until(lambda tenant=tenant: set(deployed(cluster, tenant)) == RELEASES[tenant], timeout=120)

        # Only deployed releases have created their workloads; the controllers report them available.
        for tenant in TENANTS:
            set_available(cluster, tenant)
            await cluster.until(lambda tenant=tenant: condition(cluster, tenant, "Ready").get("status") == "True", timeout=60)
        # Installed under the default class, with its base values (kopf's index of classes, in the real process).
        assert {stack_status(cluster, tenant).get("className") for tenant in TENANTS} == {"default"}
        collector = cluster.get(DEPLOYMENTS, "llm-collector", "team-b")["spec"]["template"]["spec"]
        assert collector["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
        assert stack_status(cluster, "team-a")["endpoints"]["phoenixUI"] == "http://llm-phoenix-svc.team-a.svc.cluster.local:6006"
        assert stack_status(cluster, "team-b")["endpoints"]["otlpHttp"] == "http://llm-collector.team-b.svc.cluster.local:4318"
        # The dedicated Langfuse's login: the status names where it is, the pod reads it from there.
        login = stack_status(cluster, "team-a")["langfuseLogin"]
        assert "langfuseLogin" not in stack_status(cluster, "team-b")
        password = base64.b64decode(cluster.get(SECRETS, login["secret"], "team-a")["data"][login["passwordKey"]]).decode()
        assert len(password) >= 8 and password not in json.dumps(stack_status(cluster, "team-a"))
        web = next(d for d in cluster.list(DEPLOYMENTS, "team-a") if d["metadata"]["name"] == "llm-langfuse-web")
        env = {e["name"]: e for c in web["spec"]["template"]["spec"]["containers"] for e in c.get("env") or []}
        assert env["LANGFUSE_INIT_USER_EMAIL"]["value"] == login["email"]
        assert env["LANGFUSE_INIT_USER_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": login["secret"],
                                                                                 "key": login["passwordKey"]}
        assert cluster.get("clickhouse.com/v1alpha1/clickhouseclusters", "llm-langfuse", "team-a") is not None

        # A spec change upgrades the release it concerns, in that tenant only.
        cluster.patch(STACKS, "llm", "team-a", {"spec": {"collector": {"replicas": 3}}})
        await cluster.until(lambda: deployed(cluster, "team-a").get("llm-collector") == 2, timeout=120)
        assert cluster.get("apps/v1/deployments", "llm-collector", "team-a")["spec"]["replicas"] == 3
        assert deployed(cluster, "team-a") == {"llm-phoenix": 1, "llm-langfuse": 1, "llm-collector": 2}
        assert deployed(cluster, "team-b") == {"llm-phoenix": 1, "llm-collector": 1}
        set_available(cluster, "team-a")
        await cluster.until(lambda: condition(cluster, "team-a", "Ready").get("status") == "True"
                            and stack_status(cluster, "team-a")["observedGeneration"] == 2, timeout=60)

        for tenant in TENANTS:
            cluster.delete(STACKS, "llm", tenant)
        for tenant in TENANTS:
            await cluster.until(lambda tenant=tenant: cluster.get(STACKS, "llm", tenant) is None, timeout=120)
            assert cluster.list(SECRETS, tenant, labelSelector="owner=helm") == []
        # Nothing the charts created is left but what they mark to keep: in team-a (deletionPolicy
        # Retain) Phoenix's data and the Langfuse chart's generated credentials; team-b (Delete) has no PVC.
        left = helm_objects(cluster, {"llm-phoenix", "llm-langfuse", "llm-collector"})
        assert {policy for *_, policy in left} == {"keep"}, left
        assert [(kind, namespace, name) for kind, namespace, name, _ in left if kind != "Secret"] == \
            [("PersistentVolumeClaim", "team-a", "llm-phoenix-data-pvc")]
        assert cluster.list(PVCS, "team-b") == []


async def test_two_tenants_with_dedicated_stacks_of_the_same_name_both_install(tmp_path, upstream_dir):
    async with cluster_context(emulator_class=HelmEmulator, operator_namespaces=TENANTS) as cluster, observatory_run(cluster, tmp_path, upstream_dir):
        clickhouse_crds(cluster, upstream_dir)
        for tenant in TENANTS:
            cluster.seed({**example("team-a-dedicated.yaml"), "metadata": {"name": "llm", "namespace": tenant}})
        for tenant in TENANTS:
            # Installed and reported (the status follows the releases), or failed.
            await cluster.until(lambda tenant=tenant: (set(deployed(cluster, tenant)) == RELEASES["team-a"]
                                                       and condition(cluster, tenant, "Degraded"))
                                or condition(cluster, tenant, "Degraded").get("status") == "True", timeout=120)
        assert {tenant: condition(cluster, tenant, "Degraded").get("message") for tenant in TENANTS} == \
            {tenant: "" for tenant in TENANTS}
        assert all(set(deployed(cluster, tenant)) == RELEASES["team-a"] for tenant in TENANTS)
