"""The chart's RBAC is generated from observatory.rbac and grants exactly what the code declares:
the operator's ClusterRole/Roles REQUIRED_PERMISSIONS, the installer ClusterRole INSTALLER_PERMISSIONS."""

from __future__ import annotations

import os

import pytest
from chartlib import CHART_DIR, by_kind, template
from observatory.rbac import (
    INSTALLER,
    INSTALLER_PERMISSIONS,
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


def _grants(roles: list[dict]) -> set[tuple[str, str, str, str]]:
    return {(group, resource, verb, name)
            for role in roles for rule in role["rules"]
            for group in rule["apiGroups"] for resource in rule["resources"] for verb in rule["verbs"]
            for name in rule.get("resourceNames") or [""]}


def _tuples(permissions) -> set[tuple[str, str, str, str]]:
    return {(p.group, p.resource, verb, name) for p in permissions for verb in p.verbs for name in p.resource_names or ("",)}


def _required(conditions: set[str], scopes: set[str]) -> set[tuple[str, str, str, str]]:
    return _tuples(p for p in REQUIRED_PERMISSIONS if p.condition in conditions and p.scope in scopes)


def _roles(manifests: list[dict]) -> list[dict]:
    """The operator's own roles (the installer ClusterRole is bound by the operator, not to it)."""
    return [r for r in by_kind(manifests, "ClusterRole") + by_kind(manifests, "Role") if r["metadata"]["name"] != INSTALLER]


def _operator_cluster_role(manifests: list[dict]) -> dict:
    (role,) = [r for r in by_kind(manifests, "ClusterRole") if r["metadata"]["name"] != INSTALLER]
    return role


@pytest.mark.parametrize("manifests", ["default_manifests", "all_manifests"])
def test_no_wildcards(request, manifests):
    roles = _roles(request.getfixturevalue(manifests))
    assert roles
    for rule in (rule for role in roles for rule in role["rules"]):
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert not any("*" in item for item in rule.get(field) or []), rule
        assert "nonResourceURLs" not in rule


def test_no_wildcards_declared():
    for p in (*REQUIRED_PERMISSIONS, *INSTALLER_PERMISSIONS):
        assert "*" not in p.group + p.resource + "".join(p.verbs) + "".join(p.resource_names), p
    # bind and impersonate only on the installer's name; escalate never.
    powerful = [p for p in REQUIRED_PERMISSIONS if {"escalate", "bind", "impersonate"} & set(p.verbs)]
    assert powerful and all(p.resource_names == (INSTALLER,) and "escalate" not in p.verbs for p in powerful)
    assert not any(v in p.verbs for p in INSTALLER_PERMISSIONS for v in ("escalate", "bind", "impersonate"))


def test_the_installer_cluster_role_grants_the_installer_permissions(default_manifests, all_manifests):
    for manifests in (default_manifests, all_manifests):
        (installer,) = [r for r in by_kind(manifests, "ClusterRole") if r["metadata"]["name"] == INSTALLER]
        assert _grants([installer]) == _tuples(INSTALLER_PERMISSIONS)
        # Bound per stack namespace by the operator, never by the chart.
        assert not [b for b in by_kind(manifests, "ClusterRoleBinding") + by_kind(manifests, "RoleBinding")
                    if b["roleRef"]["name"] == INSTALLER]


def test_clusterwide_grants_every_declared_permission(default_manifests):
    cluster_role = _operator_cluster_role(default_manifests)
    assert not by_kind(default_manifests, "Role")
    assert _grants([cluster_role]) == _required({"always"}, {"cluster", "namespace"})
    (binding,) = by_kind(default_manifests, "ClusterRoleBinding")
    (account,) = by_kind(default_manifests, "ServiceAccount")
    assert binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]


def test_clusterwide_peering_adds_cluster_peerings(helm):
    manifests = template(helm, "--set", "replicas=2", "--set", "peering.enabled=true")
    cluster_role = _operator_cluster_role(manifests)
    assert _grants([cluster_role]) == _required({"always", "peering-clusterwide"}, {"cluster", "namespace"})


def test_watched_namespaces_get_roles(all_manifests):
    """watchNamespaces: namespaced grants only inside those namespaces, cluster-scoped ones cluster-wide."""
    cluster_role = _operator_cluster_role(all_manifests)
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
    # Limited to the installer's name; the installer's own list is another one.
    assert permission_for("", "serviceaccounts", "impersonate", INSTALLER).resource_names == (INSTALLER,)
    with pytest.raises(UndeclaredPermission, match="impersonate on core/serviceaccounts 'default'"):
        permission_for("", "serviceaccounts", "impersonate", "default")
    with pytest.raises(UndeclaredPermission, match="get on core/secrets is not in observatory.rbac.REQUIRED_PERMISSIONS"):
        permission_for("", "secrets", "get")
    assert permission_for("", "secrets", "get", permissions=INSTALLER_PERMISSIONS).scope == "namespace"


def test_langfuse_clickhouse_kinds_are_granted(upstream_dir):
    """The Langfuse chart's ClickHouse custom resources are covered for the installer (kinds named in its values)."""
    values = (upstream_dir / "charts" / "langfuse" / "values.yaml").read_text()
    assert "clickhouse.com/v1alpha1" in values
    for kind in ("ClickHouseCluster", "KeeperCluster"):
        assert kind in values
        permission_for("clickhouse.com", f"{kind.lower()}s", "create", permissions=INSTALLER_PERMISSIONS)
