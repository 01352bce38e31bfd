"""Fixtures for the ObservabilityStack operator tests: the emulator helm can talk to, helm's homes."""

from __future__ import annotations

from pathlib import Path

import pytest
from k8s.emulator import cluster_context, running_cluster
from k8s.helm_support import HelmEmulator, kubeconfig, seed_installer

CHARTS = Path(__file__).parent / "charts"


@pytest.fixture(autouse=True)
def helm_homes(tmp_path_factory, monkeypatch):
    """helm's cache/config/data in a per-session temporary directory, never the user's."""
    home = tmp_path_factory.getbasetemp() / "helm-home"
    for name in ("CACHE", "CONFIG", "DATA"):
        monkeypatch.setenv(f"HELM_{name}_HOME", str(home / name.lower()))


@pytest.fixture()
def cluster():
    """Helm is run as the installer of `default`, as the operator runs it (`--kube-as-user`)."""
    with running_cluster(HelmEmulator) as cluster:
        seed_installer(cluster, "default")
        yield cluster


@pytest.fixture()
async def acluster():
    async with cluster_context(emulator_class=HelmEmulator) as cluster:
        yield cluster


@pytest.fixture()
def kubeconfig_file(cluster, tmp_path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(kubeconfig(cluster))
    return path


UPSTREAM_CHARTS = {"phoenix": "phoenix-helm-12.0.4.tgz", "langfuse": "langfuse-2.0.0.tgz",
                   "collector": "opentelemetry-collector-0.170.0.tgz"}


@pytest.fixture(scope="session")
def real_charts(upstream_dir) -> dict[str, str]:
    """The operator's chart environment pointing at the real packaged upstream charts."""
    packaged = upstream_dir / "charts" / "packaged"
    return {f"OBSERVATORY_{component.upper()}_CHART": str(packaged / name) for component, name in UPSTREAM_CHARTS.items()}
