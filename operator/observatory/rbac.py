"""Every Kubernetes permission the operator needs, as data, each with the reason it is needed.

Two identities act for Observatory. The operator's own ServiceAccount (`REQUIRED_PERMISSIONS`)
watches its resources, writes the compiled alerting objects and status, and keeps one installer
ServiceAccount per stack namespace. Everything a stack's Helm releases do — helm itself, the
charts' templates and `lookup`, the generated Secret, the apps' ConfigMap, readiness reads — runs
as that installer (`INSTALLER_PERMISSIONS`, the ClusterRole `observatory-stack-installer` the
operator binds with a RoleBinding in the stack's namespace only, and impersonates), the model of
Flux helm-controller's multi-tenancy lockdown: a chart sees one namespace, never the operator's
credentials. The operator holds `bind` and `impersonate` on that one name only, and no access to
Secrets or workloads anywhere.

The Kubernetes adapter declares each API call against these lists (via `permission_for`), and
the Helm chart grants exactly what `render_rbac_values()` produces (checked in as
`charts/observatory/files/rbac.yaml`, kept identical by a test; docs/install.md's table of rules
and reasons is generated from them too). A new call without a grant therefore fails a test
instead of failing with 403 in a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import yaml

from observatory.conventions import DEFAULT
from observatory.models.common import GROUP

READ = ("get", "list", "watch")
# What helm (and server-side apply) needs to install, upgrade, prune and uninstall an object.
MANAGE = ("get", "list", "watch", "create", "update", "patch", "delete")
RBAC_GROUP = "rbac.authorization.k8s.io"
# The installer's ServiceAccount, RoleBinding and ClusterRole share this name.
INSTALLER = DEFAULT.stack_installer

# namespace: granted in each watched namespace (or cluster-wide when watching all of them).
# cluster: always granted cluster-wide, because the resource is cluster-scoped or lives outside the
#   watched namespaces (Prometheus objects usually sit in a `monitoring` namespace).
Scope = Literal["namespace", "cluster"]
# always, or only when kopf peering is on — kopf uses ClusterKopfPeering when watching all
# namespaces and KopfPeering per namespace otherwise.
Condition = Literal["always", "peering-clusterwide", "peering-namespaced"]


@dataclass(frozen=True)
class Permission:
    group: str  # "" is the core API group
    resource: str  # plural, with "/subresource" where one is meant
    verbs: tuple[str, ...]
    reason: str  # why it is granted: docs/install.md's table
    scope: Scope = "namespace"
    condition: Condition = "always"
    resource_names: tuple[str, ...] = ()  # only these objects (never for create: the name is in the body)


def _each(group: str, resources: tuple[str, ...], verbs: tuple[str, ...], reason: str, **kw) -> tuple[Permission, ...]:
    return tuple(Permission(group, r, verbs, reason, **kw) for r in resources)


_OWN_KINDS = ("alertrules", "slos", "observabilitystacks")
_INSTALLER_OBJECTS = ("the installer ServiceAccount and RoleBinding of a stack's namespace, kept by the stack "
                      "reconcile (owned by the stack, so they go after its releases are uninstalled)")

REQUIRED_PERMISSIONS: tuple[Permission, ...] = (
    *_each(GROUP, _OWN_KINDS, (*READ, "patch", "update"),
           "kopf watches the own custom resources and patches into them its retry records (annotations, "
           "while a handler retries) and, for stacks, its finalizer"),
    *_each(GROUP, tuple(f"{k}/status" for k in _OWN_KINDS), ("get", "patch", "update"),
           "conditions, components and endpoints are written to the status subresource"),
    *_each(GROUP, tuple(f"{k}/finalizers" for k in _OWN_KINDS), ("update",),
           "owner references with blockOwnerDeletion need update on the owner's finalizers "
           "(OwnerReferencesPermissionEnforcement)"),
    *_each("monitoring.coreos.com", ("prometheusrules", "alertmanagerconfigs"), MANAGE,
           "the compiled output of AlertRules, SLOs and a stack's default rule pack, server-side applied and pruned"),
    Permission(GROUP, "observabilitystackclasses", READ,
               "the platform's classes choose a stack's charts and what tenants may set (kopf indexes them; "
               "nothing is written to them)", scope="cluster"),
    Permission("monitoring.coreos.com", "prometheuses", READ,
               "RulesLoaded: which Prometheus selects a generated PrometheusRule", scope="cluster"),
    Permission("", "namespaces", READ,
               "ruleNamespaceSelector matching needs namespace labels; kopf observes namespaces", scope="cluster"),
    Permission("apiextensions.k8s.io", "customresourcedefinitions", READ,
               "kopf scans CRDs; the stack reconcile checks the ClickHouse operator's CRDs and the OpenTelemetry "
               "Operator's Instrumentation CRD are installed, and watches for the latter to appear", scope="cluster"),
    Permission("", "events", ("create", "patch"), "kopf posts core/v1 Events about handler progress"),
    Permission("events.k8s.io", "events", ("create", "patch"), "the adapter reports condition changes as Events"),
    *(Permission(group, resource, ("create",), _INSTALLER_OBJECTS)
      for group, resource in (("", "serviceaccounts"), (RBAC_GROUP, "rolebindings"))),
    *(Permission(group, resource, ("get", "patch"), _INSTALLER_OBJECTS, resource_names=(INSTALLER,))
      for group, resource in (("", "serviceaccounts"), (RBAC_GROUP, "rolebindings"))),
    Permission(RBAC_GROUP, "clusterroles", ("bind",),
               "binding the installer ClusterRole in a stack's namespace without holding its rules",
               resource_names=(INSTALLER,)),
    Permission("", "serviceaccounts", ("impersonate",),
               "helm and the stack's namespaced writes run as the installer ServiceAccount",
               resource_names=(INSTALLER,)),
    # kopf peering keep-alives (only with more than one replica).
    Permission("kopf.dev", "clusterkopfpeerings", (*READ, "patch"), "kopf peering keep-alives between replicas",
               scope="cluster", condition="peering-clusterwide"),
    Permission("kopf.dev", "kopfpeerings", (*READ, "patch"), "kopf peering keep-alives between replicas",
               condition="peering-namespaced"),
)

# The installer's rules: the kinds the Phoenix, Langfuse (with its subcharts) and OpenTelemetry
# Collector charts render for any stack (tests/security/test_tenant_helm_installer_role.py renders
# them and fails on any difference), what helm itself and the stack reconcile write beside them,
# inside the one namespace its RoleBinding is in.
_CHART_OBJECTS = "objects the Phoenix, Langfuse and OpenTelemetry Collector charts render"
INSTALLER_PERMISSIONS: tuple[Permission, ...] = (
    Permission("", "secrets", MANAGE, "helm's release records (a Secret per revision, read for history and "
               "ownership), the stack's generated Secret, the Langfuse chart's Secrets, and their removal with "
               "deletionPolicy Delete"),
    Permission("", "configmaps", MANAGE, f"{_CHART_OBJECTS}, the apps' <stack>-otel ConfigMap and the stack's "
               "Grafana dashboards (<stack>-dashboards)"),
    Permission("", "persistentvolumeclaims", MANAGE, f"{_CHART_OBJECTS} (Phoenix and Langfuse data), removed "
               "with deletionPolicy Delete"),
    *_each("", ("services", "serviceaccounts"), MANAGE, _CHART_OBJECTS),
    *_each("apps", ("deployments", "statefulsets"), MANAGE, f"{_CHART_OBJECTS}; readiness is read from their status"),
    Permission("batch", "jobs", MANAGE, f"{_CHART_OBJECTS} (Langfuse)"),
    Permission("policy", "poddisruptionbudgets", MANAGE, f"{_CHART_OBJECTS} (Langfuse's ClickHouse)"),
    Permission("monitoring.coreos.com", "servicemonitors", MANAGE, f"{_CHART_OBJECTS} (the collector's metrics)"),
    *_each("clickhouse.com", ("clickhouseclusters", "keeperclusters"), MANAGE,
           f"{_CHART_OBJECTS} (a dedicated Langfuse's ClickHouse, through the ClickHouse operator)"),
    # Not a chart's: the operator's own object, read to skip unchanged writes, replaced whole, removed on opt-out.
    Permission("opentelemetry.io", "instrumentations", ("get", "create", "update", "delete"),
               "the stack's OpenTelemetry Operator Instrumentation <stack>-python (auto-instrumentation of Python "
               "apps), where its CRD is installed"),
    # A RoleBinding's rules apply to requests in its namespace, and /api/v1/namespaces/NAME is in
    # namespace NAME (kubernetes staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go).
    Permission("", "namespaces", ("get",), "helm 3 reads the release's Namespace while it runs a chart hook "
               "(the Langfuse chart's Jobs); bound in one namespace, this is that Namespace object only"),
)


class UndeclaredPermission(LookupError):
    """An API call the operator's RBAC does not grant."""


def permission_for(group: str, resource: str, verb: str, name: str | None = None,
                   permissions: tuple[Permission, ...] = REQUIRED_PERMISSIONS) -> Permission:
    """The declared permission covering `verb` on `group`/`resource` (object `name`, where the
    permission is limited to names); raises when there is none."""
    for p in permissions:
        if (p.group == group and p.resource == resource and verb in p.verbs
                and (not p.resource_names or name in p.resource_names)):
            return p
    api = f"{group}/{resource}" if group else f"core/{resource}"
    listing = "INSTALLER_PERMISSIONS" if permissions is INSTALLER_PERMISSIONS else "REQUIRED_PERMISSIONS"
    raise UndeclaredPermission(
        f"{verb} on {api}{f' {name!r}' if name else ''} is not in observatory.rbac.{listing}; add it there "
        "and regenerate charts/observatory/files/rbac.yaml (UPDATE_GOLDEN=1 pytest tests/chart)"
    )


_SECTIONS: dict[str, tuple[Scope, Condition]] = {
    "cluster": ("cluster", "always"),
    "namespaced": ("namespace", "always"),
    "peeringCluster": ("cluster", "peering-clusterwide"),
    "peeringNamespaced": ("namespace", "peering-namespaced"),
}


def _rules(permissions: Iterable[Permission]) -> list[dict]:
    """PolicyRules, one per (group, verbs, names), resources sorted: compact and deterministic."""
    merged: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for p in permissions:
        merged.setdefault((p.group, p.verbs, p.resource_names), []).append(p.resource)
    return [
        {"apiGroups": [group], "resources": sorted(resources), "verbs": list(verbs),
         **({"resourceNames": list(names)} if names else {})}
        for (group, verbs, names), resources in sorted(merged.items())
    ]


def render_rbac_values() -> dict:
    """The chart's `files/rbac.yaml`: PolicyRules per section (see `_SECTIONS`), and the installer
    ClusterRole's name and rules."""
    return {
        **{name: _rules(p for p in REQUIRED_PERMISSIONS if (p.scope, p.condition) == key)
           for name, key in _SECTIONS.items()},
        "installerName": INSTALLER,
        "installer": _rules(INSTALLER_PERMISSIONS),
    }


RBAC_FILE_HEADER = (
    "# Generated from operator/observatory/rbac.py (REQUIRED_PERMISSIONS, INSTALLER_PERMISSIONS); do not edit.\n"
    "# Regenerate: UPDATE_GOLDEN=1 pytest tests/chart\n"
    "# cluster: ClusterRole in every mode. namespaced: ClusterRole when watching all namespaces,\n"
    "# else a Role per watched namespace. peering*: only with peering.enabled.\n"
    "# installer: the ClusterRole installerName, bound per stack namespace by the operator.\n"
)


def render_rbac_file() -> str:
    return RBAC_FILE_HEADER + yaml.safe_dump(render_rbac_values(), sort_keys=False, default_flow_style=None, width=120)
