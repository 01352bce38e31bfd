"""The chart's RBAC is generated from observatory.rbac and grants exactly what the code declares."""

from __future__ import annotations

import os

import pytest
from chartlib import CHART_DIR, by_kind, template
from observatory.rbac import (
    REQUIRED_PERMISSIONS,
    UndeclaredPermission,
    permission_for,
    render_rbac_file,
)

RBAC_FILE = CHART_DIR / "files" / "rbac.yaml"


def test_chart_rbac_file_is_generated_from_code():
    expected = render_rbac_file()
    if os.environ.get("UPDATE_GOLDEN") == "1":
        RBAC_FILE.write_text(expected)
    assert RBAC_FILE.read_text() == expected, (
        "charts/observatory/files/rbac.yaml is stale; regenerate with UPDATE_GOLDEN=1 pytest tests/chart")


def _grants(roles: list[dict]) -> set[tuple[str, str, str]]:
    return {(group, resource, verb)
            for role in roles for rule in role["rules"]
            for group in rule["apiGroups"] for resource in rule["resources"] for verb in rule["verbs"]}


def _required(conditions: set[str], scopes: set[str]) -> set[tuple[str, str, str]]:
    return {(p.group, p.resource, verb) for p in REQUIRED_PERMISSIONS
            if p.condition in conditions and p.scope in scopes for verb in p.verbs}


def _roles(manifests: list[dict]) -> list[dict]:
    return by_kind(manifests, "ClusterRole") + by_kind(manifests, "Role")


@pytest.mark.parametrize("manifests", ["default_manifests", "all_manifests"])
def test_no_wildcards(request, manifests):
    roles = _roles(request.getfixturevalue(manifests))
    assert roles
    for rule in (rule for role in roles for rule in role["rules"]):
        for field in ("apiGroups", "resources", "verbs"):
            assert not any("*" in item for item in rule[field]), rule
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule


def test_no_wildcards_declared():
    for p in REQUIRED_PERMISSIONS:
        assert "*" not in p.group + p.resource + "".join(p.verbs), p
    assert not any(v in p.verbs for p in REQUIRED_PERMISSIONS for v in ("escalate", "bind", "impersonate"))


def test_clusterwide_grants_every_declared_permission(default_manifests):
    (cluster_role,) = by_kind(default_manifests, "ClusterRole")
    assert not by_kind(default_manifests, "Role")
    assert _grants([cluster_role]) == _required({"always"}, {"cluster", "namespace"})
    (binding,) = by_kind(default_manifests, "ClusterRoleBinding")
    (account,) = by_kind(default_manifests, "ServiceAccount")
    assert binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]


def test_clusterwide_peering_adds_cluster_peerings(helm):
    manifests = template(helm, "--set", "replicas=2", "--set", "peering.enabled=true")
    (cluster_role,) = by_kind(manifests, "ClusterRole")
    assert _grants([cluster_role]) == _required({"always", "peering-clusterwide"}, {"cluster", "namespace"})


def test_watched_namespaces_get_roles(all_manifests):
    """watchNamespaces: namespaced grants only inside those namespaces, cluster-scoped ones cluster-wide."""
    (cluster_role,) = by_kind(all_manifests, "ClusterRole")
    assert _grants([cluster_role]) == _required({"always"}, {"cluster"})
    roles = by_kind(all_manifests, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert _grants([role]) == _required({"always", "peering-namespaced"}, {"namespace"})
    bindings = by_kind(all_manifests, "RoleBinding")
    assert sorted((b["metadata"]["namespace"], b["roleRef"]["kind"]) for b in bindings) == [
        ("team-a", "Role"), ("team-b", "Role")]
    # Together the roles cover every declared permission for this mode.
    every = _required({"always", "peering-namespaced"}, {"cluster", "namespace"})
    assert _grants(_roles(all_manifests)) == every


def test_permission_lookup_for_the_adapter():
    assert permission_for("monitoring.coreos.com", "prometheusrules", "patch").scope == "namespace"
    assert permission_for("", "namespaces", "list").scope == "cluster"
    with pytest.raises(UndeclaredPermission, match="delete on core/namespaces"):
        permission_for("", "namespaces", "delete")
    with pytest.raises(UndeclaredPermission, match="get on apps/daemonsets"):
        permission_for("apps", "daemonsets", "get")


def test_langfuse_clickhouse_kinds_are_granted(upstream_dir):
    """The Langfuse chart's ClickHouse custom resources are covered (kinds named in its values)."""
    values = (upstream_dir / "charts" / "langfuse" / "values.yaml").read_text()
    assert "clickhouse.com/v1alpha1" in values
    for kind in ("ClickHouseCluster", "KeeperCluster"):
        assert kind in values
        permission_for("clickhouse.com", f"{kind.lower()}s", "create")
