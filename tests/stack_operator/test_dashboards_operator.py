"""The operator applies a stack's Grafana dashboards: kopf in-process against the RBAC-enforcing
emulator, the real helm with the stand-in charts. The dashboards' ConfigMap is written as the
namespace's installer (impersonated), as the apps' ConfigMap is: the operator's own
ServiceAccount may not write ConfigMaps in a tenant namespace at all."""

from __future__ import annotations

import json

from k8s.helm_support import STAND_IN_CHARTS, stack_operator
from k8s.rbac import OPERATOR
from observatory.compile.dashboards import dashboard_objects
from observatory.conventions import DEFAULT
from observatory.models import parse_resource
from observatory.rbac import INSTALLER

NS = "team-a"
STACKS, CONFIGMAPS = "observatory.dev/v1alpha1/observabilitystacks", "v1/configmaps"
SPEC = {"langfuse": {"enabled": False}}


def stack(spec: dict) -> dict:
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStack",
            "metadata": {"name": "s1", "namespace": NS}, "spec": spec}


def condition(cluster, type_: str) -> dict:
    conditions = ((cluster.get(STACKS, "s1", NS) or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), {})


def dashboards(cluster) -> dict | None:
    return cluster.get(CONFIGMAPS, "s1-dashboards", NS)


async def test_the_stack_applies_its_dashboards_as_the_installer_and_owns_them(acluster, helm):
    cluster = acluster
    async with stack_operator(cluster, helm, STAND_IN_CHARTS, namespaces=(NS,)):
        cluster.seed(stack(SPEC))
        live = await cluster.until(lambda: dashboards(cluster), timeout=30)
        [expected] = dashboard_objects(parse_resource(stack(SPEC)), DEFAULT)
        assert live["data"] == expected["data"]
        assert live["metadata"]["labels"]["grafana_dashboard"] == "1"
        [owner] = live["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"]) == ("ObservabilityStack", "s1")
        assert sorted(json.loads(text)["title"] for text in live["data"].values()) == [f"LLM overview · {NS}", f"SLOs · {NS}"]

        # Every write of it impersonated the installer ServiceAccount of the namespace.
        writes = [r for r in cluster.requests if r.method in ("POST", "PUT", "PATCH") and r.name == "s1-dashboards"]
        assert writes and {r.headers.get("Impersonate-User") for r in writes} == {f"system:serviceaccount:{NS}:{INSTALLER}"}
        # The operator itself is refused: the installer's RoleBinding is what allows the write.
        code, body = cluster.request("PATCH", f"/api/v1/namespaces/{NS}/configmaps/s1-dashboards",
                                     {"data": {"x.json": "{}"}}, identity=OPERATOR,
                                     headers={"Content-Type": "application/merge-patch+json"})
        assert code == 403, body

        # A tenant's edit is repaired by the next reconcile (here: a spec change).
        cluster.patch(CONFIGMAPS, "s1-dashboards", NS, {"data": {"slo-overview.json": "{}"}})
        cluster.patch(STACKS, "s1", NS, {"spec": {"collector": {"replicas": 2}}})
        await cluster.until(lambda: dashboards(cluster)["data"] == expected["data"], timeout=30)

        cluster.delete(STACKS, "s1", NS)
        await cluster.until(lambda: dashboards(cluster) is None, timeout=30)  # owned: garbage-collected


async def test_an_invalid_stack_writes_no_dashboards(acluster, helm):
    cluster = acluster
    async with stack_operator(cluster, helm, STAND_IN_CHARTS, namespaces=(NS,)):
        cluster.seed(stack({**SPEC, "collector": {"values": {"namespaceOverride": "kube-system"}}}))
        await cluster.until(lambda: condition(cluster, "Ready").get("reason") == "InvalidSpec", timeout=30)
        assert dashboards(cluster) is None
