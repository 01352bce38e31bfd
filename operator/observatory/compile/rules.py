"""Rules and rule groups as data, and how they become PrometheusRule objects."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import promql_parser as pp

from .. import promql
from ..conventions import Conventions
from .errors import CompileError

# prometheus-operator packs rule files into ConfigMaps of at most half a Secret's 1 MiB.
MAX_RULE_OBJECT_BYTES = 512 * 1024
MAX_NAME_LENGTH = 253
MAX_LABEL_VALUE_LENGTH = 63


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

    def pin(self, expr: pp.Expr) -> pp.Expr:
        return promql.pin_tenant(expr, self.conventions.tenant_label, self.namespace)

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
