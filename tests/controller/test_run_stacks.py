"""`observatory run` serves ObservabilityStacks too: the real process installs a stack with helm."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from controller_harness import free_port
from k8s.emulator import cluster_context
from k8s.helm_support import HelmEmulator, kubeconfig, set_available

CHARTS = Path(__file__).resolve().parents[1] / "stack_operator" / "charts"
STACKS = "observatory.dev/v1alpha1/observabilitystacks"
SECRETS = "v1/secrets"
STACK = {
    "apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStack",
    "metadata": {"name": "llm", "namespace": "team-a"},
    "spec": {"langfuse": {"mode": "external", "external": {"url": "https://langfuse.example.com",
                                                            "keySecret": {"name": "langfuse-keys"}}}},
}


def ready(cluster) -> bool:
    status = (cluster.get(STACKS, "llm", "team-a") or {}).get("status") or {}
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])


async def test_observatory_run_installs_a_stack_and_reports_it_ready(tmp_path, monkeypatch):
    for variable in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    # The chart's RBAC for watchNamespaces=[team-a]: a Role there, the ClusterRole for cluster-scoped reads.
    async with cluster_context(emulator_class=HelmEmulator, operator_namespaces=('team-a',)) as cluster:
        config = tmp_path / "kubeconfig"
        config.write_text(kubeconfig(cluster))
        env = {**os.environ, "KUBECONFIG": str(config), "OBSERVATORY_WATCH_NAMESPACES": "team-a",
               "OBSERVATORY_HEALTH_PORT": str(free_port()), "OBSERVATORY_METRICS_PORT": str(free_port()),
               **{f"OBSERVATORY_{component}_CHART": str(CHARTS / chart) for component, chart in
                  (("PHOENIX", "phoenix-helm"), ("LANGFUSE", "langfuse"), ("COLLECTOR", "opentelemetry-collector"))}}
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "observatory", "run", env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            cluster.seed(STACK)
            # helm (driven by the operator with the process's KUBECONFIG) stores one release record each,
            # first as pending: only a deployed release has created its Deployments.
            await cluster.until(lambda: {r["metadata"]["labels"]["name"] for r in
                                         cluster.list(SECRETS, "team-a", labelSelector="owner=helm")
                                         if r["metadata"]["labels"].get("status") == "deployed"}
                                >= {"llm-phoenix", "llm-collector"}, timeout=60)
            set_available(cluster, "team-a")
            await cluster.until(lambda: ready(cluster), timeout=60)
            endpoints = cluster.get(STACKS, "llm", "team-a")["status"]["endpoints"]
            assert endpoints["otlpHttp"].startswith("http://llm-collector")
        finally:
            if proc.returncode is None:
                proc.terminate()
            output, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, output.decode()[-3000:]
