"""The compile core: custom resources in, Kubernetes objects out. Pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..conventions import DEFAULT, Conventions
from ..models.alertrule import AlertRule
from ..models.common import API_VERSION, CustomResource
from ..models.slo import SLO
from ..models.stack import ObservabilityStack
from ..models.stackclass import ObservabilityStackClass
from .alertrule import compile_alertrule
from .defaults import catalogue_for, default_alert_rules
from .errors import CompileError, FieldError
from .prices import DEFAULT_CATALOGUE, ModelPrice, price_groups, price_objects
from .routing import alertmanager_config
from .rules import Tenant, object_name, owner_labels, prometheus_rules
from .slo_groups import Member, groups_of, slo_member, windows_objects
from .stack import release_plans

__all__ = ["CompileError", "CompileOptions", "FieldError", "assemble", "compile_resource", "compile_bundle", "contribution",
           "needs_prices", "plan_documents", "shared_objects", "sort_objects", "ModelPrice"]


@dataclass(frozen=True)
class CompileOptions:
    conventions: Conventions = DEFAULT
    catalogue: tuple[ModelPrice, ...] = DEFAULT_CATALOGUE
    # Email smarthosts (host:port, as `routing.smarthost` normalises them) the platform admin allows;
    # empty: any public DNS name, nothing inside the cluster.
    allowed_email_smarthosts: tuple[str, ...] = ()


def compile_resource(resource: CustomResource, options: CompileOptions = CompileOptions()) -> list[dict[str, Any]]:
    """The objects one resource owns: PrometheusRule(s) and, with routing, an AlertmanagerConfig.
    An SLO's rules are not its own object but in a group of its namespace (`contribution`)."""
    return contribution(resource, options)[0]


def contribution(resource: CustomResource, options: CompileOptions = CompileOptions(), *, uid: str = "",
                 created: str = "") -> tuple[list[dict[str, Any]], Member | None]:
    """The objects `resource` owns and, for an SLO, its rules as a member of its group (`uid` and
    `created` are its metadata's, where known: the group's owners and the order a full group keeps)."""
    if isinstance(resource, ObservabilityStackClass):
        return [], None  # cluster-scoped and owns nothing: the stacks of the class compile with it
    c = options.conventions
    tenant = Tenant(resource.namespace, c)
    kind = resource.kind
    base_name = object_name(kind.lower(), resource.name)
    labels = owner_labels(c, kind, resource.name)
    if isinstance(resource, ObservabilityStack):
        if not resource.spec.default_rules.enabled:
            return [], None
        groups = price_groups(catalogue_for(resource, options.catalogue), tenant, resource.spec.default_rules.spend_labels)
        groups += [compile_alertrule(rule, tenant) for rule in default_alert_rules(resource, c)]
        return prometheus_rules(base_name, groups, tenant, labels), None
    member = None
    if isinstance(resource, AlertRule):
        objects = prometheus_rules(base_name, [compile_alertrule(resource, tenant)], tenant, labels)
        match_label = c.alertrule_label
    elif isinstance(resource, SLO):
        objects, member = [], slo_member(resource, c, uid, created)
        match_label = c.slo_label
    else:
        raise TypeError(f"cannot compile {kind}")
    routing = resource.spec.routing
    if routing is not None:
        objects.append(alertmanager_config(base_name, resource.namespace, routing, match_label, resource.name,
                                           c.severity_label, labels, options.allowed_email_smarthosts))
    return objects, member


def plan_documents(stack: ObservabilityStack, options: CompileOptions = CompileOptions(),
                   stack_class: ObservabilityStackClass | None = None,
                   schemas: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """The Helm releases a stack installs under its class, as documents for review (`observatory render`).

    Secrets appear as references only: the values name Secrets, never their contents.
    """
    documents = []
    for plan in release_plans(stack, options.conventions, stack_class=stack_class, schemas=schemas):
        chart = {"name": plan.chart.name, "reference": plan.chart.reference}
        for key, value in (("version", plan.chart.version), ("repository", plan.chart.repo_url)):
            if value:
                chart[key] = value
        documents.append({
            "apiVersion": API_VERSION,
            "kind": "HelmReleasePlan",
            "metadata": {"name": plan.name, "namespace": plan.namespace},
            "spec": {"component": plan.component, "chart": chart, "values": plan.values},
        })
    return documents


def needs_prices(resource: CustomResource) -> bool:
    if not isinstance(resource, AlertRule):
        return False
    spec = resource.spec
    return spec.cost is not None or (spec.anomaly is not None and spec.anomaly.signal == "costRate")


def compile_bundle(resources: Iterable[CustomResource], options: CompileOptions = CompileOptions()) -> list[dict[str, Any]]:
    """Every object for a set of resources, plus one price catalogue per namespace that needs one.

    Raises CompileError for the first resource that fails; callers wanting every error compile the
    resources one by one.
    """
    resources = list(resources)
    objects, members = [], []
    for resource in resources:
        owned, member = contribution(resource, options)
        objects.extend(owned)
        if member is not None:
            members.append((resource, member))
    return assemble(objects, resources, options, members)


def assemble(objects: Iterable[dict[str, Any]], resources: Iterable[CustomResource],
             options: CompileOptions = CompileOptions(), members: Iterable[tuple[SLO, Member]] | None = None) -> list[dict[str, Any]]:
    """The objects `resources` compiled to, as they are applied: what each owns and the namespaces'
    shared objects, sorted. `members`: the SLOs' rules as `contribution` gave them (else rendered here)."""
    return sort_objects([*objects, *shared_objects(resources, options, members)])


def shared_objects(resources: Iterable[CustomResource], options: CompileOptions = CompileOptions(),
                   members: Iterable[tuple[SLO, Member]] | None = None) -> list[dict[str, Any]]:
    """Objects a namespace needs once, whichever resources need them: the price catalogue, the
    burn-rate windows of its SLOs, one object per SLO period, and the groups holding the SLOs' rules.

    A namespace with an ObservabilityStack gets its prices from the stack's rule pack instead.
    Raises CompileError when a group cannot hold all its SLOs (`groups_of` tells which).
    """
    resources = list(resources)
    c = options.conventions
    priced_by_stack = {r.namespace for r in resources
                       if isinstance(r, ObservabilityStack) and r.spec.default_rules.enabled}
    objects: list[dict[str, Any]] = []
    for namespace in sorted({r.namespace for r in resources if needs_prices(r)} - priced_by_stack):
        objects.extend(price_objects(options.catalogue, Tenant(namespace, c), "Namespace", namespace))
    for namespace, period in sorted({(r.namespace, r.spec.window) for r in resources if isinstance(r, SLO)}):
        objects.extend(windows_objects(namespace, period, c))
    if members is None:
        members = [(r, slo_member(r, c)) for r in resources if isinstance(r, SLO)]
    for group in groups_of(members, c):
        if group.left_out:
            raise group.error()
        objects.append(group.object)
    return objects


def sort_objects(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(objects, key=lambda o: (o["metadata"]["namespace"], o["kind"], o["metadata"]["name"]))
