"""Issue 13 item 4: the operator's RBAC is not cluster-admin in effect, and every rule it keeps says why.

`helm template charts/observatory` (the real helm, every watch and peering mode) is read rule by
rule: each (apiGroup, resource, verb, resourceName) it grants must be a Permission declared in
observatory.rbac with a reason — the operator's own (REQUIRED_PERMISSIONS) for its
ClusterRole/Roles, the tenant installer's (INSTALLER_PERMISSIONS) for the
`observatory-stack-installer` ClusterRole that the operator binds in each stack's namespace.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from observatory.conventions import DEFAULT
from observatory.rbac import INSTALLER_PERMISSIONS, REQUIRED_PERMISSIONS

CHART = Path(__file__).resolve().parents[2] / "charts" / "observatory"
MODES = {
    "clusterwide": [],
    "clusterwide-peering": ["--set", "replicas=2", "--set", "peering.enabled=true"],
    "namespaced": ["--set-json", 'watchNamespaces=["team-a","team-b"]'],
    "namespaced-peering": ["--set-json", 'watchNamespaces=["team-a","team-b"]', "--set", "replicas=2",
                           "--set", "peering.enabled=true"],
}
# The resources issue 13 item 4 found the operator could write in every namespace, and what it
# may still do on each (the installer's identity does the rest): create its installer
# ServiceAccount and RoleBinding, and read/patch only those, by name.
CLUSTER_ADMIN_IN_EFFECT = {("", "secrets"), ("", "serviceaccounts"), ("", "configmaps"), ("apps", "deployments"),
                           ("apps", "statefulsets"), ("batch", "jobs"), ("rbac.authorization.k8s.io", "roles"),
                           ("rbac.authorization.k8s.io", "rolebindings"), ("", "persistentvolumeclaims"),
                           ("", "pods"), ("rbac.authorization.k8s.io", "clusterroles")}


def rendered(helm: Path, mode: str) -> list[dict]:
    result = subprocess.run([str(helm), "template", "observatory", str(CHART), "--namespace", "observatory",
                             *MODES[mode]], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc and doc["kind"] in ("ClusterRole", "Role")]


def grants(role: dict) -> set[tuple[str, str, str, str]]:
    """(group, resource, verb, resourceName or "") of every rule; nonResourceURLs are never granted."""
    out = set()
    for rule in role["rules"]:
        assert "nonResourceURLs" not in rule, rule
        out |= {(g, r, v, n) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
                for n in rule.get("resourceNames") or [""]}
    return out


def declared(permissions) -> dict[tuple[str, str, str, str], str]:
    return {(p.group, p.resource, v, n): p.reason for p in permissions for v in p.verbs for n in p.resource_names or ("",)}


def test_every_permission_says_why():
    for p in (*REQUIRED_PERMISSIONS, *INSTALLER_PERMISSIONS):
        assert len(p.reason.split()) >= 3, p


@pytest.mark.parametrize("mode", list(MODES))
def test_the_rendered_chart_grants_nothing_not_listed_with_its_reason(helm, mode):
    roles = rendered(helm, mode)
    installer = [r for r in roles if r["metadata"]["name"] == DEFAULT.stack_installer]
    assert len(installer) == 1 and installer[0]["kind"] == "ClusterRole"
    operator_declared, installer_declared = declared(REQUIRED_PERMISSIONS), declared(INSTALLER_PERMISSIONS)
    for role in roles:
        allowed = installer_declared if role in installer else operator_declared
        unlisted = sorted(grants(role) - set(allowed))
        assert unlisted == [], f"{role['kind']} {role['metadata']['name']} grants what rbac.py does not list: {unlisted}"


@pytest.mark.parametrize("mode", list(MODES))
def test_the_operator_can_neither_read_secrets_nor_write_workloads_or_rbac(helm, mode):
    name = DEFAULT.stack_installer
    for role in rendered(helm, mode):
        if role["metadata"]["name"] == name:
            continue
        kept = sorted((g, r, v, n) for g, r, v, n in grants(role) if (g, r) in CLUSTER_ADMIN_IN_EFFECT)
        # create cannot be limited by name (the name is in the body, not the URL); what it may create
        # is limited by escalation prevention (a RoleBinding grants only what the operator holds, or
        # the installer ClusterRole it may `bind`).
        # Namespace-scoped grants: in the ClusterRole when watching all namespaces, else in each Role.
        namespaced = role["kind"] == "Role" or mode.startswith("clusterwide")
        assert kept == (sorted([
            ("", "serviceaccounts", "create", ""), ("", "serviceaccounts", "get", name),
            ("", "serviceaccounts", "impersonate", name), ("", "serviceaccounts", "patch", name),
            ("rbac.authorization.k8s.io", "clusterroles", "bind", name),
            ("rbac.authorization.k8s.io", "rolebindings", "create", ""),
            ("rbac.authorization.k8s.io", "rolebindings", "get", name),
            ("rbac.authorization.k8s.io", "rolebindings", "patch", name),
        ]) if namespaced else []), f"{role['kind']} {role['metadata']['name']}: {json.dumps(kept)}"


def test_the_installer_role_grants_nothing_beyond_one_namespace(helm):
    (installer,) = [r for r in rendered(helm, "clusterwide") if r["metadata"]["name"] == DEFAULT.stack_installer]
    for group, resource, verb, _ in grants(installer):
        assert group != "rbac.authorization.k8s.io" and verb not in ("escalate", "bind", "impersonate"), (group, resource, verb)
        assert resource not in ("nodes", "customresourcedefinitions", "persistentvolumes"), resource
        # Through a RoleBinding, `get` on namespaces reaches the binding's own Namespace only.
        assert resource != "namespaces" or verb == "get", verb
