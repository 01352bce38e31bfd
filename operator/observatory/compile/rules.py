"""Rules and rule groups as data, and how they become PrometheusRule objects."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Collection, Iterable, Mapping

import promql_parser as pp

from .. import promql
from ..conventions import Conventions
from .errors import CompileError

# prometheus-operator packs rule files into ConfigMaps of at most half a Secret's 1 MiB.
MAX_RULE_OBJECT_BYTES = 512 * 1024
MAX_NAME_LENGTH = 253
MAX_LABEL_VALUE_LENGTH = 63
# On a shared PrometheusRule whose rules are parts, one per owner: the rule label naming the owner.
PARTS_ANNOTATION = "observatory.dev/parts-label"


@dataclass(frozen=True)
class Rule:
    expr: pp.Expr
    record: str | None = None
    alert: str | None = None
    for_: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleGroup:
    name: str
    rules: tuple[Rule, ...]
    interval: str | None = None


@dataclass(frozen=True)
class Tenant:
    """The namespace a resource lives in and the label that confines its PromQL to it."""

    namespace: str
    conventions: Conventions

    def pinned_text(self, expr: pp.Expr) -> str:
        return promql.render_pinned(expr, self.conventions.tenant_label, self.namespace)


def rule_to_dict(rule: Rule, tenant: Tenant) -> dict[str, Any]:
    out: dict[str, Any] = {"record": rule.record} if rule.record else {"alert": rule.alert}
    out["expr"] = tenant.pinned_text(rule.expr)
    if rule.for_:
        out["for"] = rule.for_
    # The tenant label is set on the output too: aggregations may have dropped it, and an alert must
    # keep it so that the tenant's AlertmanagerConfig (matched on it) receives the alert.
    labels = {**rule.labels, tenant.conventions.tenant_label: tenant.namespace}
    out["labels"] = dict(sorted(labels.items()))
    if rule.annotations:
        out["annotations"] = dict(sorted(rule.annotations.items()))
    return out


def group_to_dict(group: RuleGroup, tenant: Tenant) -> dict[str, Any]:
    out: dict[str, Any] = {"name": group.name}
    if group.interval:
        out["interval"] = group.interval
    out["rules"] = [rule_to_dict(rule, tenant) for rule in group.rules]
    return out


def object_name(*parts: str) -> str:
    """A Kubernetes name from parts, shortened with a hash suffix when too long."""
    return shorten("-".join(parts), MAX_NAME_LENGTH)


def shorten(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:10]
    return value[: limit - 11].rstrip("-.") + "-" + digest


def owner_labels(conventions: Conventions, kind: str, name: str) -> dict[str, str]:
    return {
        conventions.managed_by_label: conventions.managed_by_value,
        conventions.owner_kind_label: kind,
        conventions.owner_name_label: shorten(name, MAX_LABEL_VALUE_LENGTH),
    }


def prometheus_rules(
    base_name: str,
    groups: Iterable[RuleGroup],
    tenant: Tenant,
    labels: Mapping[str, str],
    field_path: str = "spec",
) -> list[dict[str, Any]]:
    """PrometheusRule objects holding `groups`, split so that each fits prometheus-operator's limit."""
    conventions = tenant.conventions
    all_labels = dict(sorted({**conventions.rule_selector_labels, **labels}.items()))

    def make(name: str, group_dicts: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": name, "namespace": tenant.namespace, "labels": all_labels},
            "spec": {"groups": group_dicts},
        }

    # Sizes add up: measure each group once (re-dumping growing batches is quadratic).
    overhead = _size(make(base_name, []))
    batches: list[list[dict[str, Any]]] = [[]]
    batch_size = overhead
    for group in groups:
        group_dict = group_to_dict(group, tenant)
        size = _size(group_dict)
        if overhead + size > MAX_RULE_OBJECT_BYTES:
            raise CompileError(field_path, f"rule group {group.name} is larger than the {MAX_RULE_OBJECT_BYTES // 1024} KiB "
                                           "prometheus-operator accepts in one rule file; split the resource")
        if batches[-1] and batch_size + size > MAX_RULE_OBJECT_BYTES:
            batches.append([])
            batch_size = overhead
        batches[-1].append(group_dict)
        batch_size += size
    return [make(base_name if i == 0 else object_name(base_name, str(i + 1)), batch) for i, batch in enumerate(batches)]


def compose_shared(desired: Mapping[str, Any] | None, live: Mapping[str, Any] | None,
                   owners: Collection[str]) -> dict[str, Any]:
    """The shared object to write for one owner: `desired` (what it needs), or with None what `live`
    keeps once the owner is gone.

    An object annotated with PARTS_ANNOTATION holds one group whose rules are parts, one per owner
    (named by that rule label): the desired parts replace the live ones, and the parts of anyone no
    longer among `owners` go. Parts are ordered by owner, so that whichever owner writes last, the
    same owners give the same object.
    """
    base = dict(desired) if desired is not None else _declared(live)
    if not is_part(base):
        return base
    label = base["metadata"]["annotations"][PARTS_ANNOTATION]
    parts = {name: rules for name, rules in _parts(live, label).items() if name in owners}
    parts.update(_parts(desired, label))
    group = {**base["spec"]["groups"][0], "rules": [rule for name in sorted(parts) for rule in parts[name]]}
    composed = {**base, "spec": {"groups": [group]}}
    if _size(composed) > MAX_RULE_OBJECT_BYTES:
        meta = base["metadata"]
        raise CompileError("metadata.namespace", f"PrometheusRule {meta['name']} would hold the rules of {len(parts)} owners, "
                                                 f"more than the {MAX_RULE_OBJECT_BYTES // 1024} KiB prometheus-operator "
                                                 f"accepts in one rule file; move some to another namespace")
    return composed


def is_part(obj: Mapping[str, Any]) -> bool:
    return PARTS_ANNOTATION in (obj["metadata"].get("annotations") or {})


def compose_parts(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """`objects` with the parts of each shared object composed into one, as the operator composes them."""
    composed: list[dict[str, Any]] = []
    parts: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for obj in objects:
        if is_part(obj):
            parts.setdefault((obj["metadata"]["namespace"], obj["metadata"]["name"]), []).append(obj)
        else:
            composed.append(obj)
    for of_one in parts.values():
        owners = {owner for part in of_one for owner in _parts(part, part["metadata"]["annotations"][PARTS_ANNOTATION])}
        shared = None
        for part in of_one:  # one owner at a time
            shared = compose_shared(part, shared, owners)
        composed.append(shared)
    return composed


def _declared(live: Mapping[str, Any]) -> dict[str, Any]:
    """What Observatory declares of a live object: the rest is the API server's."""
    meta = live["metadata"]
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k == PARTS_ANNOTATION}
    return {"apiVersion": live["apiVersion"], "kind": live["kind"], "spec": live["spec"],
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": meta.get("labels") or {},
                         **({"annotations": annotations} if annotations else {})}}


def _parts(obj: Mapping[str, Any] | None, label: str) -> dict[str, list[dict[str, Any]]]:
    parts: dict[str, list[dict[str, Any]]] = {}
    for group in (obj or {}).get("spec", {}).get("groups") or []:
        for rule in group["rules"]:
            parts.setdefault((rule.get("labels") or {}).get(label, ""), []).append(rule)
    return parts


def _size(obj: Mapping[str, Any]) -> int:
    """Bytes, estimated from indented JSON: larger than the block YAML prometheus-operator writes.

    The length of `json.dumps(obj, indent=4)`, counted without it: `indent` turns on the pure-Python
    encoder (json/encoder.py), ~10x slower than the C one that writes the compact text here; the
    indentation is added by counting. A non-empty container at depth d with n items gains a newline
    and 4 * (d + 1) spaces per item and a newline and 4 * d spaces before its closing bracket."""
    size = len(json.dumps(obj, separators=(",", ": ")))  # ASCII (ensure_ascii): characters are bytes
    pending: list[tuple[Any, int]] = [(obj, 0)]
    while pending:
        node, level = pending.pop()
        items = node.values() if isinstance(node, dict) else node
        if items:
            size += len(items) * (1 + 4 * (level + 1)) + 1 + 4 * level
            pending.extend((item, level + 1) for item in items if isinstance(item, (dict, list, tuple)))
    return size


def count_rules(objects: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """(recording, alerting) rules in PrometheusRule objects."""
    recording = alerting = 0
    for obj in objects:
        if obj.get("kind") != "PrometheusRule":
            continue
        for group in obj["spec"]["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    recording += 1
                else:
                    alerting += 1
    return recording, alerting
