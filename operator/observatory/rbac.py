"""Every Kubernetes permission the operator needs, as data.

The Kubernetes adapter declares each API call against `REQUIRED_PERMISSIONS` (via
`permission_for`), and the Helm chart grants exactly what `render_rbac_values()` produces (checked
in as `charts/observatory/files/rbac.yaml`, kept identical by a test). A new call without a grant
therefore fails a test instead of failing with 403 in a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import yaml

from observatory.models.common import GROUP

READ = ("get", "list", "watch")
# What helm (and server-side apply) needs to install, upgrade, prune and uninstall an object.
MANAGE = ("get", "list", "watch", "create", "update", "patch", "delete")

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
    scope: Scope = "namespace"
    condition: Condition = "always"


def _each(group: str, resources: tuple[str, ...], verbs: tuple[str, ...], **kw) -> tuple[Permission, ...]:
    return tuple(Permission(group, r, verbs, **kw) for r in resources)


_OWN_KINDS = ("alertrules", "slos", "observabilitystacks")

REQUIRED_PERMISSIONS: tuple[Permission, ...] = (
    # Own custom resources: kopf watches them and patches its progress/finalizers into them.
    *_each(GROUP, _OWN_KINDS, (*READ, "patch", "update")),
    *_each(GROUP, tuple(f"{k}/status" for k in _OWN_KINDS), ("get", "patch", "update")),
    # Owner references with blockOwnerDeletion need update on the owner's finalizers.
    *_each(GROUP, tuple(f"{k}/finalizers" for k in _OWN_KINDS), ("update",)),
    # Generated alerting objects; ServiceMonitors also come from the collector chart.
    *_each("monitoring.coreos.com", ("prometheusrules", "alertmanagerconfigs", "servicemonitors"), MANAGE),
    # The platform's ObservabilityStackClasses: only read (kopf indexes them with a raw watch, writing nothing).
    Permission(GROUP, "observabilitystackclasses", READ, scope="cluster"),
    # "Is my rule loaded?": which Prometheus selects the generated PrometheusRule.
    Permission("monitoring.coreos.com", "prometheuses", READ, scope="cluster"),
    # ruleNamespaceSelector matching needs namespace labels; kopf observes namespaces too.
    Permission("", "namespaces", READ, scope="cluster"),
    # kopf scans CRDs; the stack reconcile detects prerequisites (ClickHouse operator CRDs).
    Permission("apiextensions.k8s.io", "customresourcedefinitions", READ, scope="cluster"),
    # Generated Secrets/ConfigMaps, helm release storage (Secrets), and the stack charts' objects.
    *_each("", ("secrets", "configmaps", "services", "serviceaccounts", "persistentvolumeclaims"), MANAGE),
    # helm --wait and component readiness read pods.
    Permission("", "pods", READ),
    # kopf posts core/v1 events; the adapter posts events.k8s.io/v1 events.
    Permission("", "events", ("create", "patch")),
    Permission("events.k8s.io", "events", ("create", "patch")),
    # Objects of the Phoenix, Langfuse and OpenTelemetry Collector charts (and their subcharts).
    *_each("apps", ("deployments", "statefulsets"), MANAGE),
    Permission("apps", "replicasets", READ),  # helm --wait follows a Deployment's ReplicaSets
    Permission("batch", "jobs", MANAGE),
    Permission("networking.k8s.io", "ingresses", MANAGE),
    Permission("policy", "poddisruptionbudgets", MANAGE),
    Permission("autoscaling", "horizontalpodautoscalers", MANAGE),
    *_each("rbac.authorization.k8s.io", ("roles", "rolebindings"), MANAGE),
    # Langfuse chart 2.x deploys ClickHouse through the ClickHouse operator's resources.
    *_each("clickhouse.com", ("clickhouseclusters", "keeperclusters"), MANAGE),
    # kopf peering keep-alives (only with more than one replica).
    Permission("kopf.dev", "clusterkopfpeerings", (*READ, "patch"), scope="cluster", condition="peering-clusterwide"),
    Permission("kopf.dev", "kopfpeerings", (*READ, "patch"), condition="peering-namespaced"),
)


class UndeclaredPermission(LookupError):
    """An API call the operator's RBAC does not grant."""


def permission_for(group: str, resource: str, verb: str) -> Permission:
    """The declared permission covering `verb` on `group`/`resource`; raises when there is none."""
    for p in REQUIRED_PERMISSIONS:
        if p.group == group and p.resource == resource and verb in p.verbs:
            return p
    api = f"{group}/{resource}" if group else f"core/{resource}"
    raise UndeclaredPermission(
        f"{verb} on {api} is not in observatory.rbac.REQUIRED_PERMISSIONS; add it there and regenerate "
        "charts/observatory/files/rbac.yaml (UPDATE_GOLDEN=1 pytest tests/chart)"
    )


_SECTIONS: dict[str, tuple[Scope, Condition]] = {
    "cluster": ("cluster", "always"),
    "namespaced": ("namespace", "always"),
    "peeringCluster": ("cluster", "peering-clusterwide"),
    "peeringNamespaced": ("namespace", "peering-namespaced"),
}


def _rules(permissions: list[Permission]) -> list[dict]:
    """PolicyRules, one per (group, verbs), resources sorted: compact and deterministic."""
    merged: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for p in permissions:
        merged.setdefault((p.group, p.verbs), []).append(p.resource)
    return [
        {"apiGroups": [group], "resources": sorted(resources), "verbs": list(verbs)}
        for (group, verbs), resources in sorted(merged.items())
    ]


def render_rbac_values() -> dict[str, list[dict]]:
    """The chart's `files/rbac.yaml`: PolicyRules per section, see `_SECTIONS`."""
    return {
        name: _rules([p for p in REQUIRED_PERMISSIONS if (p.scope, p.condition) == key])
        for name, key in _SECTIONS.items()
    }


RBAC_FILE_HEADER = (
    "# Generated from operator/observatory/rbac.py (REQUIRED_PERMISSIONS); do not edit.\n"
    "# Regenerate: UPDATE_GOLDEN=1 pytest tests/chart\n"
    "# cluster: ClusterRole in every mode. namespaced: ClusterRole when watching all namespaces,\n"
    "# else a Role per watched namespace. peering*: only with peering.enabled.\n"
)


def render_rbac_file() -> str:
    return RBAC_FILE_HEADER + yaml.safe_dump(render_rbac_values(), sort_keys=False, default_flow_style=None, width=120)
