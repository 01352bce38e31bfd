"""Fixtures for the ObservabilityStack operator tests: the emulator helm can talk to, helm's homes."""

from __future__ import annotations

from pathlib import Path

import pytest
from k8s.emulator import cluster_context, running_cluster
from k8s.helm_support import HelmEmulator, kubeconfig

CHARTS = Path(__file__).parent / "charts"


@pytest.fixture(autouse=True)
def helm_homes(tmp_path_factory, monkeypatch):
    """helm's cache/config/data in a per-session temporary directory, never the user's."""
    home = tmp_path_factory.getbasetemp() / "helm-home"
    for name in ("CACHE", "CONFIG", "DATA"):
        monkeypatch.setenv(f"HELM_{name}_HOME", str(home / name.lower()))


@pytest.fixture()
def cluster():
    with running_cluster(HelmEmulator) as cluster:
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
