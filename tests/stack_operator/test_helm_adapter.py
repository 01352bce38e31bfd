"""observatory.helm against the real helm binary and the emulator."""

from __future__ import annotations

import base64
import os
import stat
import textwrap

import kubernetes.client
import pytest
import yaml
from conftest import CHARTS
from k8s.helm_support import kubeconfig
from observatory.controller.stack_kube import installer_user
from observatory.compile.stack import DEFAULT_CHARTS, ChartRef, ReleasePlan
from observatory.helm import (
    REDACTED,
    Helm,
    HelmError,
    kubeconfig_from_client,
    operator_charts,
    release_digest,
    scrub,
)

SECRET = "s3cr3t-Value-0123456789abcdef"


def plan(values: dict, chart: str = "opentelemetry-collector", name: str = "s1-collector") -> ReleasePlan:
    ref = ChartRef(chart, None, path=str(CHARTS / chart))
    return ReleasePlan("collector", name, "default", ref, values)


COLLECTOR_VALUES = {"mode": "deployment", "fullnameOverride": "s1-collector"}


def test_scrub_removes_raw_and_base64_forms():
    encoded = base64.b64encode(SECRET.encode()).decode()
    text = f"Error: bad value {SECRET!r} in data: {encoded} (key abc)"
    scrubbed = scrub(text, [SECRET, "abc"])  # "abc" is too short to be a generated secret
    assert SECRET not in scrubbed and encoded not in scrubbed
    assert scrubbed == f"Error: bad value '{REDACTED}' in data: {REDACTED} (key abc)"


async def test_upgrade_status_uninstall(cluster, helm):
    adapter = Helm(executable=str(helm), kubeconfig=kubeconfig(cluster), impersonate=installer_user)
    try:
        assert await adapter.status("s1-collector", "default") is None
        first = await adapter.upgrade(plan(COLLECTOR_VALUES))
        assert (first.revision, first.status, first.chart) == (1, "deployed", "opentelemetry-collector-0.170.0")
        assert first.digest == release_digest(plan(COLLECTOR_VALUES))
        assert await adapter.get_values("s1-collector", "default") == COLLECTOR_VALUES

        changed = plan({**COLLECTOR_VALUES, "replicaCount": 2})
        second = await adapter.upgrade(changed)
        assert second.revision == 2 and second.digest == release_digest(changed) != first.digest
        assert await adapter.status("s1-collector", "default") == second
        assert cluster.get("apps/v1/deployments", "s1-collector", "default")["spec"]["replicas"] == 2

        assert await adapter.uninstall("s1-collector", "default") is True
        assert await adapter.uninstall("s1-collector", "default") is False
        assert cluster.get("apps/v1/deployments", "s1-collector", "default") is None
    finally:
        adapter.close()
    assert adapter.upgrades == 2


async def test_helm_error_quoting_a_secret_is_scrubbed(cluster, helm):
    """The test chart fails rendering with the Secret's value in helm's stderr."""
    cluster.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "auth", "namespace": "default"},
                  "data": {"PHOENIX_SECRET": base64.b64encode(SECRET.encode()).decode()}})
    adapter = Helm(executable=str(helm), kubeconfig=kubeconfig(cluster), impersonate=installer_user)
    values = {"auth": {"name": "auth"}, "failOnSecretKey": "PHOENIX_SECRET"}
    try:
        with pytest.raises(HelmError) as failed:
            await adapter.upgrade(plan(values, "phoenix-helm", "s1-phoenix"), secrets=[SECRET])
        # Without the secrets to scrub, helm's message would carry the value: the chart really quotes it.
        with pytest.raises(HelmError) as unscrubbed:
            await adapter.upgrade(plan(values, "phoenix-helm", "s1-phoenix"))
    finally:
        adapter.close()
    assert SECRET in unscrubbed.value.message
    assert SECRET not in str(failed.value) and f"cannot render with {REDACTED}" in failed.value.message


async def test_values_go_through_a_private_file_that_is_removed(cluster, helm, tmp_path):
    """A wrapper in place of helm records the values file's mode, then runs the real helm."""
    seen = tmp_path / "seen"
    wrapper = tmp_path / "helm-wrapper"
    wrapper.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        prev=""
        for arg in "$@"; do
          if [ "$prev" = "--values" ]; then stat -c '%a %n' "$arg" >> {seen}; fi
          prev="$arg"
        done
        exec {helm} "$@"
        """))
    wrapper.chmod(0o755)
    adapter = Helm(executable=str(wrapper), kubeconfig=kubeconfig(cluster), impersonate=installer_user)
    try:
        await adapter.upgrade(plan(COLLECTOR_VALUES))
    finally:
        adapter.close()
    mode, path = seen.read_text().split()
    assert mode == "600" and not os.path.exists(path)


def test_operator_charts_from_env():
    charts = operator_charts({
        "OBSERVATORY_PHOENIX_CHART": "oci://mirror.example/charts/phoenix-helm",
        "OBSERVATORY_PHOENIX_CHART_VERSION": "12.1.0",
        "OBSERVATORY_LANGFUSE_CHART": "https://charts.example/langfuse",
        "OBSERVATORY_COLLECTOR_CHART": "/charts/opentelemetry-collector",
    })
    assert charts["phoenix"] == ChartRef("phoenix-helm", "12.1.0", "oci://mirror.example/charts")
    assert charts["phoenix"].reference == "oci://mirror.example/charts/phoenix-helm"
    assert charts["langfuse"].repo_url == "https://charts.example/langfuse"
    assert (charts["langfuse"].reference, charts["langfuse"].version) == ("langfuse", DEFAULT_CHARTS["langfuse"].version)
    assert charts["collector"].reference == "/charts/opentelemetry-collector"
    assert operator_charts({}) == dict(DEFAULT_CHARTS)
    with pytest.raises(ValueError, match="OBSERVATORY_PHOENIX_CHART"):
        operator_charts({"OBSERVATORY_PHOENIX_CHART": "oci://phoenix-helm"})


def test_kubeconfig_from_the_operator_connection():
    configuration = kubernetes.client.Configuration(host="https://10.0.0.1:443", api_key={"authorization": "Bearer tok"})
    configuration.ssl_ca_cert = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    config = yaml.safe_load(kubeconfig_from_client(configuration))
    assert config["clusters"][0]["cluster"] == {"server": "https://10.0.0.1:443",
                                                "certificate-authority": configuration.ssl_ca_cert}
    assert config["users"][0]["user"] == {"token": "tok"}


def test_kubeconfig_file_is_private_and_removed_on_close(cluster):
    adapter = Helm(kubeconfig=kubeconfig(cluster))
    path = adapter._command()._kubeconfig
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    adapter.close()
    assert not os.path.exists(path)


async def test_labels_history_and_rollback(cluster, helm):
    """Labels land on helm's release record and survive an upgrade without them and a rollback."""
    adapter = Helm(executable=str(helm), kubeconfig=kubeconfig(cluster), impersonate=installer_user)
    try:
        await adapter.upgrade(plan(COLLECTOR_VALUES), labels={"observatory.dev/owner-uid": "u-1"})
        await adapter.upgrade(plan({**COLLECTOR_VALUES, "replicaCount": 2}))
        await adapter.rollback("s1-collector", "default", 1)
        history = await adapter.history("s1-collector", "default")
    finally:
        adapter.close()
    assert [(r.revision, r.status) for r in history] == [(1, "superseded"), (2, "superseded"), (3, "deployed")]
    assert history[0].digest == release_digest(plan(COLLECTOR_VALUES)) and history[2].digest is None  # "Rollback to 1"
    records = cluster.list("v1/secrets", "default", labelSelector="owner=helm,name=s1-collector")
    assert [r["metadata"]["labels"].get("observatory.dev/owner-uid") for r in records] == ["u-1"] * 3
    assert cluster.get("apps/v1/deployments", "s1-collector", "default")["spec"]["replicas"] == 1
