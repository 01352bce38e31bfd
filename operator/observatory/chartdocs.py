"""The tables of docs/install.md: the operator chart's configuration, generated from its
values.schema.json, and its RBAC rules with their reasons, generated from observatory.rbac.

docs/install.md carries each table between two markers; a test keeps them identical to
`values_table()` and `rbac_table()` (UPDATE_GOLDEN=1 rewrites them), so the documented options
are exactly the ones the schema accepts and the documented rules exactly the ones the chart grants.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .rbac import INSTALLER, INSTALLER_PERMISSIONS, REQUIRED_PERMISSIONS, Permission

TABLE_START = "<!-- values-table:start (generated from charts/observatory/values.schema.json) -->"
TABLE_END = "<!-- values-table:end -->"
RBAC_TABLE_START = "<!-- rbac-table:start (generated from operator/observatory/rbac.py) -->"
RBAC_TABLE_END = "<!-- rbac-table:end -->"
_WHERE = {("cluster", "always"): "cluster", ("namespace", "always"): "watched namespaces",
          ("cluster", "peering-clusterwide"): "cluster, with peering", ("namespace", "peering-namespaced"):
          "watched namespaces, with peering"}
# Helm passes `global` to every chart; the schema must accept it, but it is not an option.
_HELM_RESERVED = frozenset({"global"})


def value_keys(schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(dotted key, schema) of every documented option: leaves, and objects without `properties`."""
    for name, sub in schema.get("properties", {}).items():
        if not prefix and name in _HELM_RESERVED:
            continue
        key = f"{prefix}{name}"
        if "properties" in sub and "default" not in sub:
            yield from value_keys(sub, f"{key}.")
        else:
            yield key, sub


def _type(sub: dict[str, Any]) -> str:
    if "enum" in sub:
        return " \\| ".join(f"`{v}`" for v in sub["enum"])
    if "anyOf" in sub:
        return " or ".join(s["type"] for s in sub["anyOf"])
    return sub["type"]


def values_table(schema: dict[str, Any]) -> str:
    rows = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for key, sub in value_keys(schema):
        default = json.dumps(sub.get("default"), sort_keys=True) if "default" in sub else ""
        description = sub["description"].replace("|", "\\|")
        rows.append(f"| `{key}` | {_type(sub)} | `{default}` | {description} |")
    return "\n".join(rows) + "\n"


def with_table(document: str, table: str, start: str = TABLE_START, end: str = TABLE_END) -> str:
    """`document` with the text between the markers `start` and `end` replaced by `table`."""
    head, found, rest = document.partition(start)
    _, found_end, tail = rest.partition(end)
    if not (found and found_end):
        raise ValueError(f"markers {start!r} … {end!r} not found")
    return f"{head}{start}\n{table}{end}{tail}"


def _rbac_row(who: str, where: str, p: Permission) -> str:
    api = f"`{p.group}`" if p.group else "core"
    names = ", ".join(f"`{n}`" for n in p.resource_names) or "any"
    reason = p.reason.replace("|", "\\|")
    return f"| {who} | {api} | `{p.resource}` | {', '.join(p.verbs)} | {names} | {where} | {reason} |"


def rbac_table() -> str:
    """Every rule of the operator's ClusterRole/Roles and of the installer ClusterRole, with its reason."""
    rows = ["| Identity | API group | Resource | Verbs | Objects | Where | Why |", "|---|---|---|---|---|---|---|"]
    rows += [_rbac_row("operator", _WHERE[(p.scope, p.condition)], p) for p in REQUIRED_PERMISSIONS]
    rows += [_rbac_row(f"`{INSTALLER}`", "a stack's namespace", p) for p in INSTALLER_PERMISSIONS]
    return "\n".join(rows) + "\n"
