"""The stack installer identity: kept by the operator, used for every release, gone after the last stack.

The operator loop (kopf in-process, real helm, the stand-in charts) against the RBAC-enforcing
emulator in the chart's `watchNamespaces` mode (a Role in the stack's namespace only): nothing is
refused in normal operation — the operator's own calls, its impersonation and the RoleBinding's
`bind` are all granted — and the installer's ServiceAccount and RoleBinding outlive every stack
of the namespace's uninstall, which runs as them.
"""

from __future__ import annotations

import pytest
from k8s.emulator import cluster_context
from k8s.helm_support import STAND_IN_CHARTS, HelmEmulator, stack_operator
from observatory.controller.stack_kube import installer_user
from observatory.rbac import INSTALLER, RBAC_GROUP
from tenant_helm_support import (  # noqa: F401 (helm_homes: a fixture)
    STACKS,
    helm_homes,
    stack,
)

NS = "team-a"
SECRETS, ACCOUNTS, BINDINGS = "v1/secrets", "v1/serviceaccounts", f"{RBAC_GROUP}/v1/rolebindings"
SPEC = {"langfuse": {"enabled": False}}


def releases(cluster) -> set[str]:
    return {r["metadata"]["labels"]["name"] for r in cluster.list(SECRETS, NS, labelSelector="owner=helm")}


def owners(obj: dict | None) -> list[str]:
    return sorted(r["name"] for r in (obj or {}).get("metadata", {}).get("ownerReferences") or [])


@pytest.mark.parametrize("binary_name", ["helm", "helm4"])
async def test_the_installer_is_kept_for_every_stack_and_goes_after_the_last_uninstall(request, binary_name):
    async with cluster_context(emulator_class=HelmEmulator, operator_namespaces=(NS,)) as cluster:
        async with stack_operator(cluster, request.getfixturevalue(binary_name), STAND_IN_CHARTS, namespaces=(NS,)):
            for name in ("s1", "s2"):
                cluster.seed(stack(name, NS, SPEC))
            await cluster.until(lambda: releases(cluster) == {"s1-phoenix", "s1-collector", "s2-phoenix", "s2-collector"},
                                timeout=60)
            await cluster.until(lambda: owners(cluster.get(ACCOUNTS, INSTALLER, NS)) == ["s1", "s2"], timeout=60)
            account, binding = cluster.get(ACCOUNTS, INSTALLER, NS), cluster.get(BINDINGS, INSTALLER, NS)
            assert account["automountServiceAccountToken"] is False
            assert binding["roleRef"] == {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": INSTALLER}
            assert binding["subjects"] == [{"kind": "ServiceAccount", "name": INSTALLER, "namespace": NS}]
            assert owners(binding) == ["s1", "s2"]
            # Every request of helm, and every Secret read or written, impersonated the installer.
            helm_requests = [r for r in cluster.requests if r.headers.get("User-Agent", "").lower().startswith("helm")]
            secret_requests = [r for r in cluster.requests if r.resource is not None and r.resource.plural == "secrets"]
            assert helm_requests and secret_requests
            assert {r.headers.get("Impersonate-User") for r in helm_requests + secret_requests} == {installer_user(NS)}
            assert cluster.emulator.rbac.denials == []

            cluster.delete(STACKS, "s1", NS)
            await cluster.until(lambda: releases(cluster) == {"s2-phoenix", "s2-collector"}, timeout=60)
            await cluster.until(lambda: cluster.get(STACKS, "s1", NS) is None, timeout=60)
            # The garbage collector drops the gone owner; s2 keeps them.
            await cluster.until(lambda: owners(cluster.get(ACCOUNTS, INSTALLER, NS)) == ["s2"], timeout=60)
            assert owners(cluster.get(BINDINGS, INSTALLER, NS)) == ["s2"]

            cluster.delete(STACKS, "s2", NS)
            await cluster.until(lambda: cluster.get(STACKS, "s2", NS) is None, timeout=60)
            assert releases(cluster) == set()
            await cluster.until(lambda: cluster.get(ACCOUNTS, INSTALLER, NS) is None
                                and cluster.get(BINDINGS, INSTALLER, NS) is None, timeout=60)
            assert cluster.emulator.rbac.denials == []


async def test_a_tenants_own_rolebinding_of_the_installers_name_blocks_the_stack_and_is_left_alone(request, helm):
    """A tenant may bind the installer's name to a Role of its own (escalation prevention limits it to
    what the tenant holds); the operator does not impersonate through someone else's binding."""
    async with cluster_context(emulator_class=HelmEmulator, operator_namespaces=(NS,)) as cluster:
        theirs = cluster.seed({"apiVersion": f"{RBAC_GROUP}/v1", "kind": "RoleBinding",
                               "metadata": {"name": INSTALLER, "namespace": NS},
                               "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "mine"},
                               "subjects": [{"kind": "ServiceAccount", "name": INSTALLER, "namespace": NS}]})
        async with stack_operator(cluster, helm, STAND_IN_CHARTS, namespaces=(NS,)):
            cluster.seed(stack("s1", NS, SPEC))

            def blocked():
                conditions = ((cluster.get(STACKS, "s1", NS) or {}).get("status") or {}).get("conditions") or []
                return next((c for c in conditions if c["type"] == "Degraded" and c["status"] == "True"), None)
            degraded = await cluster.until(blocked, timeout=30)
            assert f"RoleBinding {INSTALLER} in {NS} binds Role mine" in degraded["message"]
            assert "delete it" in degraded["message"]
            assert releases(cluster) == set() and cluster.list(SECRETS, NS) == []
            assert cluster.get(BINDINGS, INSTALLER, NS)["roleRef"] == theirs["roleRef"]


async def test_a_stack_in_a_deleted_namespace_does_not_hold_the_namespace(helm):
    """The namespace controller deletes the installer's ServiceAccount and RoleBinding with the rest,
    and refuses to create them again (NamespaceLifecycle): the stack's uninstall cannot run as the
    installer, and need not — the releases' objects and records go with the namespace."""
    async with cluster_context(emulator_class=HelmEmulator) as cluster:
        cluster.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        async with stack_operator(cluster, helm, STAND_IN_CHARTS):
            cluster.seed(stack("s1", NS, SPEC))
            await cluster.until(lambda: releases(cluster) == {"s1-phoenix", "s1-collector"}, timeout=60)
            cluster.delete("v1/namespaces", NS)
            await cluster.until(lambda: cluster.get("v1/namespaces", NS) is None, timeout=60)
