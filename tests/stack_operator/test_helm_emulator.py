"""The real helm binaries (3 and 4) install, upgrade, inspect and uninstall against the emulator.

This is the fidelity check of tests/k8s/helm_support.py: each thing helm needs (protobuf bodies,
OpenAPI v3, PUT, XList lists, apps/v1 discovery) is exercised by the real client.
"""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
from conftest import CHARTS
from k8s.helm_support import decode_protobuf
from observatory.controller.stack_kube import installer_user

COLLECTOR = CHARTS / "opentelemetry-collector"


def run(binary, kubeconfig_file, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *args, "--kubeconfig", str(kubeconfig_file), "--namespace", "default",
                           "--kube-as-user", installer_user("default")],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("binary_name", ["helm", "helm4"])
def test_helm_lifecycle_against_the_emulator(binary_name, request, cluster, kubeconfig_file):
    binary = request.getfixturevalue(binary_name)
    install = run(binary, kubeconfig_file, "upgrade", "--install", "r1", str(COLLECTOR), "--set", "mode=deployment")
    assert install.returncode == 0, install.stderr
    assert cluster.get("apps/v1/deployments", "r1", "default")["spec"]["replicas"] == 1
    # helm's release record is a Secret it sent as protobuf; decoded, it is a normal Secret.
    records = cluster.list("v1/secrets", "default", labelSelector="owner=helm,name=r1")
    assert [r["metadata"]["labels"]["status"] for r in records] == ["deployed"]
    assert records[0]["type"] == "helm.sh/release.v1" and base64.b64decode(records[0]["data"]["release"])
    # helm skipped client-side validation because /openapi/v3 advertises fieldValidation.
    paths = [r.url.path for r in cluster.requests]
    assert "/openapi/v3" in paths and "/openapi/v2" not in paths

    upgrade = run(binary, kubeconfig_file, "upgrade", "--install", "r1", str(COLLECTOR), "--set", "mode=deployment",
                  "--set", "replicaCount=3")
    assert upgrade.returncode == 0, upgrade.stderr
    assert cluster.get("apps/v1/deployments", "r1", "default")["spec"]["replicas"] == 3
    status = json.loads(run(binary, kubeconfig_file, "status", "r1", "--output", "json").stdout)
    assert (status["version"], status["info"]["status"]) == (2, "deployed")

    uninstall = run(binary, kubeconfig_file, "uninstall", "r1")
    assert uninstall.returncode == 0, uninstall.stderr
    assert cluster.get("apps/v1/deployments", "r1", "default") is None
    assert cluster.list("v1/secrets", "default", labelSelector="owner=helm") == []


def test_protobuf_decoding_refuses_what_it_does_not_know():
    from k8s.emulator import ApiError

    # A v1 Pod in protobuf: magic, runtime.Unknown{typeMeta{apiVersion "v1", kind "Pod"}}.
    type_meta = b"\x0a\x02v1\x12\x03Pod"
    body = b"k8s\x00" + b"\x0a" + bytes([len(type_meta)]) + type_meta
    with pytest.raises(ApiError) as refused:
        decode_protobuf(body)
    assert refused.value.status == 415 and "v1 Pod" in refused.value.message
