"""Issue 13 item 4: a chart's templates and `lookup` run with the tenant's identity, not the operator's.

A hostile chart (tests/security/charts, see its README) is installed through the operator loop
(kopf in-process, real helm 3.17 and 4.3) against the RBAC-enforcing emulator, the operator
holding the RBAC `helm template charts/observatory` renders (clusterwide, the widest mode).
helm's `lookup` of an object it may not read fails the render with the apiserver's 403
(helm/helm pkg/engine/lookup_func.go: only IsNotFound becomes an empty result, any other error
is returned), so the chart's `fail` never runs; its writes outside the namespace are refused
with 403. Nothing of another tenant's Secret reaches status, Events or logs; the operator
stays up and uninstalls the stack.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
from k8s.emulator import cluster_context
from k8s.helm_support import HelmEmulator, stack_operator
from tenant_helm_support import (  # noqa: F401 (helm_homes: a fixture)
    STACKS,
    helm_homes,
    stack,
)

CHARTS = Path(__file__).parent / "charts"
NS, VICTIM_NS = "team-a", "team-b"
SECRETS = "v1/secrets"
VICTIM_PASSWORD = "team-b-database-password-7f3a9c"
# Each release fails at its first refused object, so the attacks are spread over two sets of charts.
ATTACKS = {
    "lookup-writes-clusterrole": {"PHOENIX": "tenant-helm-lookup", "COLLECTOR": "tenant-helm-writes",
                                  "LANGFUSE": "tenant-helm-clusterrole"},
    "rolebinding-writes-lookup": {"PHOENIX": "tenant-helm-rolebinding", "COLLECTOR": "tenant-helm-writes",
                                  "LANGFUSE": "tenant-helm-lookup"},
}
# An external ClickHouse: the Langfuse component needs no prerequisite CRDs to reach helm.
SPEC = {"langfuse": {"dedicated": {"clickhouse": {"host": "ch.example", "passwordSecret": {"name": "ch"}}}}}
INSTALLER = "system:serviceaccount:team-a:observatory-stack-installer"


COMPONENT_CONDITIONS = {"PhoenixReady", "LangfuseReady", "CollectorReady"}


def component_conditions(cluster) -> dict[str, dict]:
    """The components' conditions (reported together, once every release was tried) by type."""
    conditions = ((cluster.get(STACKS, "s1", NS) or {}).get("status") or {}).get("conditions") or []
    return {c["type"]: c for c in conditions if c["type"] in COMPONENT_CONDITIONS}


@pytest.mark.parametrize("attack", list(ATTACKS))
@pytest.mark.parametrize("binary_name", ["helm", "helm4"])
async def test_a_malicious_chart_reads_and_writes_nothing_outside_the_tenant_namespace(
        request, binary_name, attack, caplog):
    caplog.set_level(logging.DEBUG)
    async with cluster_context(emulator_class=HelmEmulator) as cluster:
        for namespace in (NS, VICTIM_NS):
            cluster.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        victim = cluster.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "victim", "namespace": VICTIM_NS},
                               "data": {"password": base64.b64encode(VICTIM_PASSWORD.encode()).decode()}})
        charts = {f"OBSERVATORY_{component}_CHART": str(CHARTS / chart) for component, chart in ATTACKS[attack].items()}
        async with stack_operator(cluster, request.getfixturevalue(binary_name), charts):
            cluster.seed(stack("s1", NS, SPEC))
            await cluster.until(lambda: set(component_conditions(cluster)) == COMPONENT_CONDITIONS, timeout=60)
            status = cluster.get(STACKS, "s1", NS)["status"]

            # Nothing outside team-a was written; team-b's Secret is as it was.
            assert cluster.get("apps/v1/deployments", "takeover", "kube-system") is None
            for kind in ("clusterroles", "clusterrolebindings"):
                assert cluster.get(f"rbac.authorization.k8s.io/v1/{kind}", "tenant-helm-everything") is None
            assert cluster.get(SECRETS, "planted", VICTIM_NS) is None
            # ...nor an RBAC object inside it: only the operator's installer binding is there.
            bindings = cluster.list("rbac.authorization.k8s.io/v1/rolebindings", NS)
            assert [b["metadata"]["name"] for b in bindings] == ["observatory-stack-installer"]
            assert cluster.get(SECRETS, "victim", VICTIM_NS)["data"] == victim["data"]
            # Nothing of the Secret reached status, Events or logs.
            events = cluster.list("events.k8s.io/v1/events", NS) + cluster.list("v1/events", NS)
            exposed = json.dumps([status, events]) + caplog.text
            for form in (VICTIM_PASSWORD, victim["data"]["password"]):
                assert form not in exposed

            # The lookup and the writes were refused by the apiserver, as the tenant's installer.
            for kind, cond in component_conditions(cluster).items():
                assert cond["reason"] == "HelmFailed" and "forbidden" in cond["message"] and INSTALLER in cond["message"], cond
            denials = cluster.emulator.rbac.denials
            assert any(d.startswith(("GET /api/v1/secrets", f"GET /api/v1/namespaces/{VICTIM_NS}/secrets/victim"))
                       for d in denials), denials

            # The operator stays up: it uninstalls the stack (as the installer, which it keeps until then).
            cluster.delete(STACKS, "s1", NS)
            await cluster.until(lambda: cluster.get(STACKS, "s1", NS) is None, timeout=60)
            assert cluster.list(SECRETS, NS, labelSelector="owner=helm") == []
