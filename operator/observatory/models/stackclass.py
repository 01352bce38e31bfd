"""ObservabilityStackClass: what the platform lets tenants' ObservabilityStacks install.

Cluster-scoped and owned by platform admins, as a StorageClass or IngressClass is: it picks the
charts (source and version per component), adds the platform's base values, lists the Helm value
paths tenants may set and caps the resources they may ask for. A stack names its class in
`spec.className`; one class may be the default by the annotation `observatory.dev/is-default-class:
"true"` (StorageClass's `storageclass.kubernetes.io/is-default-class`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .common import CRModel, CustomResource

DEFAULT_CLASS_ANNOTATION = "observatory.dev/is-default-class"
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$"
VALUE_PATH_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
# An OCI repository as helm pulls it: a registry host[:port] and lowercase path components, the grammar
# of distribution/reference (reference/regexp.go: domain, port, path-component); helm appends the chart
# name, and the version is `version`, so no tag or digest.
_OCI_REPOSITORY = re.compile(r"oci://[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*"
                             r"(:[0-9]{1,5})?(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*/?")

# Value keys no class can open to tenants, at any depth of an allowed path or inside a tenant's value,
# whatever the chart: each reaches beyond the tenant's namespace or its pods' sandbox, or undoes the
# wiring and redaction the operator computes. Matched by key name, so a subchart's copy is caught too.
DENIED_KEYS: Mapping[str, str] = {
    "namespace": "places objects in another namespace",
    "namespaceOverride": "places objects in another namespace",
    "global": "reaches every subchart at once (its ClusterRoles, image registries, ServiceAccounts)",
    "rbac": "creates RBAC objects",
    "clusterRole": "creates a ClusterRole and its binding",
    "createClusterRole": "creates a ClusterRole and its binding",
    "serviceAccount": "chooses the pods' identity and its API token",
    "serviceAccountName": "chooses the pods' identity and its API token",
    "automountServiceAccountToken": "mounts an API token into the pods",
    "hostNetwork": "puts pods on the node's network",
    "hostPID": "shares the node's process table",
    "hostIPC": "shares the node's IPC namespace",
    "hostPath": "mounts the node's filesystem",
    "hostPort": "binds the node's ports",
    "privileged": "runs containers with the node's privileges",
    "securityContext": "sets the containers' privileges and user",
    "podSecurityContext": "sets the pods' privileges and user",
    "containerSecurityContext": "sets the containers' privileges and user",
    "image": "runs any image",
    "command": "runs another binary or flags",
    "priorityClassName": "preempts other tenants' pods",
    "nodeName": "bypasses the scheduler",
    "relabelings": "rewrites scrape labels, e.g. namespace=team-b forges another tenant's metrics",
    "metricRelabelings": "rewrites scrape labels, e.g. namespace=team-b forges another tenant's metrics",
    "extraManifests": "creates arbitrary objects",
    "extraObjects": "creates arbitrary objects",
    "fullnameOverride": "renames the objects the operator wires together",
    "nameOverride": "renames the objects the operator wires together",
}
# Per component: the collector's pipeline is the redaction boundary and the only way out of the pod.
DENIED_COMPONENT_KEYS: Mapping[str, Mapping[str, str]] = {
    "collector": {
        "config": "is the collector pipeline: redaction and exporters are the operator's",
        "alternateConfig": "replaces the collector pipeline",
        "configMap": "replaces the collector pipeline with another ConfigMap",
        "presets": "adds receivers with ClusterRoles and hostPath mounts",
    },
}
# Maps whose keys are data (label, annotation and selector keys), not chart settings: never matched.
DATA_MAP_SUFFIXES = ("annotations", "labels", "Annotations", "Labels", "nodeSelector")


def denied(component: str, key: str) -> str | None:
    """Why a tenant may never set `key` in `component`'s values, or None."""
    return DENIED_KEYS.get(key) or DENIED_COMPONENT_KEYS.get(component, {}).get(key)


def is_data_map(key: str) -> bool:
    return key.endswith(DATA_MAP_SUFFIXES)


class ChartSource(CRModel):
    """Where a component's Helm chart comes from, e.g. a mirror for air-gapped clusters."""

    repository: str | None = Field(default=None, pattern=r"^(https?|oci)://\S+$",
                                   description="Chart repository URL (https://...) or OCI registry path without the chart name (oci://registry/path).")
    name: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63,
                             description="Chart name inside the repository; default: the upstream chart name.")
    version: str | None = Field(default=None, min_length=1, max_length=64,
                                description="Chart version; default: the version Observatory pins.")
    path: str | None = Field(default=None, min_length=1, max_length=1024,
                             description="Local chart directory or .tgz on the operator's filesystem; excludes repository.")

    @field_validator("repository")
    @classmethod
    def _oci_reference(cls, value: str | None) -> str | None:
        if value and value.startswith("oci://") and not _OCI_REPOSITORY.fullmatch(value):
            raise ValueError(f"{value!r} is not an OCI repository: write oci://HOST[:PORT]/PATH with a lowercase path "
                             "and without the chart name or a tag (the chart's version goes in version), e.g. "
                             "oci://registry.example.com/charts")
        return value

    @model_validator(mode="after")
    def _path_or_repository(self) -> ChartSource:
        if self.path and self.repository:
            raise ValueError("set either repository or path, not both")
        return self


class ComponentClass(CRModel):
    """One component's chart, the platform's values and the value paths tenants may set."""

    chart: ChartSource | None = Field(default=None, description="Chart source; default: the operator's (OBSERVATORY_<COMPONENT>_CHART or the pinned upstream chart).")
    values: dict[str, Any] = Field(default_factory=dict, description="The platform's base values: under the tenant's allowed values and the values the operator computes, which win.")
    allowed_values: list[str] = Field(default_factory=list, max_length=256,
                                      description="Dotted value paths tenants may set in spec.<component>.values (a path allows its subtree); none by default. Paths naming a key that reaches outside the tenant (namespace, RBAC, ServiceAccounts, host access, security contexts, images, relabelings, the collector config) are refused.")

    @field_validator("allowed_values")
    @classmethod
    def _paths(cls, paths: list[str]) -> list[str]:
        bad = [p for p in paths if len(p) > 256 or not re.fullmatch(VALUE_PATH_PATTERN, p)]
        if bad:
            raise ValueError(f"not a dotted value path: {', '.join(map(repr, bad))}; write keys separated by dots, e.g. podAnnotations")
        return paths


class Ceilings(CRModel):
    """Upper bounds on what a stack of this class may request, typed fields and allowed values alike."""

    cpu: str | None = Field(default=None, pattern=QUANTITY_PATTERN, description="Largest CPU request or limit per container, e.g. 2.")
    memory: str | None = Field(default=None, pattern=QUANTITY_PATTERN, description="Largest memory request or limit per container, e.g. 4Gi.")
    replicas: int | None = Field(default=None, ge=1, description="Most replicas per workload.")
    storage: str | None = Field(default=None, pattern=QUANTITY_PATTERN, description="Largest volume size, e.g. 100Gi.")


COMPONENTS = ("phoenix", "langfuse", "collector")


class InstrumentationClass(CRModel):
    """The auto-instrumentation the platform gives its stacks' Python apps (their Instrumentation)."""

    python_image: str | None = Field(
        default=None, min_length=1, max_length=512, pattern=r"^\S+$",
        description="Python auto-instrumentation image (the Instrumentation's spec.python.image), e.g. the OpenTelemetry "
                    "Operator's with the GenAI instrumentations (opentelemetry-instrumentation-openai-v2, ...) added; default: "
                    "the OpenTelemetry Operator's own, which has none of them (v0.158.0), so apps must install them.")


class ObservabilityStackClassSpec(CRModel):
    """What stacks of this class install and what their tenants may change."""

    phoenix: ComponentClass = Field(default_factory=ComponentClass, description="Arize Phoenix.")
    langfuse: ComponentClass = Field(default_factory=ComponentClass, description="Langfuse (dedicated mode).")
    collector: ComponentClass = Field(default_factory=ComponentClass, description="OpenTelemetry Collector.")
    ceilings: Ceilings = Field(default_factory=Ceilings, description="Resource ceilings; none by default.")
    instrumentation: InstrumentationClass = Field(default_factory=InstrumentationClass,
                                                  description="Auto-instrumentation of the stacks' Python apps.")

    @model_validator(mode="after")
    def _no_denied_paths(self) -> ObservabilityStackClassSpec:
        problems = []
        for component in COMPONENTS:
            for i, path in enumerate(getattr(self, component).allowed_values):
                reasons = [f"{key!r} {why}" for key in path.split(".") if (why := denied(component, key))]
                if reasons:
                    problems.append(f"{component}.allowedValues.{i} {path!r}: never allowed to tenants: {'; '.join(reasons)}")
        if problems:
            raise ValueError("; ".join(problems) + " (remove the path; the platform can set such values in "
                             "spec.<component>.values itself)")
        return self


class ObservabilityStackClass(CustomResource):
    """Charts, base values, the values tenants may set and resource ceilings for ObservabilityStacks (cluster-scoped, for platform admins)."""

    kind: Literal["ObservabilityStackClass"] = Field(description="ObservabilityStackClass")
    spec: ObservabilityStackClassSpec = Field(default_factory=ObservabilityStackClassSpec, description="Desired state.")

    @property
    def is_default(self) -> bool:
        return self.metadata.annotations.get(DEFAULT_CLASS_ANNOTATION) == "true"
