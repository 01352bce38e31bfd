"""Shared by tests/security/test_tenant_helm_*.py, which run the stack operator in-process
(k8s.helm_support.stack_operator) against the RBAC-enforcing emulator."""

from __future__ import annotations

import pytest

STACKS = "observatory.dev/v1alpha1/observabilitystacks"


@pytest.fixture(autouse=True)
def helm_homes(tmp_path, monkeypatch):
    for name in ("CACHE", "CONFIG", "DATA"):
        monkeypatch.setenv(f"HELM_{name}_HOME", str(tmp_path / f"helm-{name.lower()}"))


def stack(name: str, namespace: str, spec: dict) -> dict:
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStack",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}
