"""The tables of docs/install.md: the operator chart's configuration, generated from its
values.schema.json, and its RBAC rules with their reasons, generated from observatory.rbac.

docs/install.md carries each table between two markers; a test keeps them identical to
`values_table()` and `rbac_table()` (UPDATE_GOLDEN=1 rewrites them), so the documented options
are exactly the ones the schema accepts and the documented rules exactly the ones the chart grants.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from .crdgen import crd
from .models import KINDS
from .models.common import SecretKeyRef
from .models.stack import LangfuseKeySecret, SecretPasswordRef
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


SECRETS_TABLE_START = "<!-- secrets-table:start (generated from the pydantic models) -->"
SECRETS_TABLE_END = "<!-- secrets-table:end -->"
# The models that name a Secret (and keys in it) in the tenant's namespace.
SECRET_REFERENCES = (SecretKeyRef, SecretPasswordRef, LangfuseKeySecret)


def secret_fields(model: type[BaseModel], path: str = "spec") -> Iterator[tuple[str, type[BaseModel], str]]:
    """(field path, reference model, description) of every Secret reference under `model`: the
    Secrets a tenant creates. A list's items are written `[]`."""
    for name, info in model.model_fields.items():
        for sub, listed in _models_in(info.annotation):
            field_path = f"{path}.{info.alias or name}" + ("[]" if listed else "")
            if sub in SECRET_REFERENCES:
                yield field_path, sub, info.description or ""
            else:
                yield from secret_fields(sub, field_path)


def _models_in(annotation: Any, listed: bool = False) -> Iterator[tuple[type[BaseModel], bool]]:
    """The pydantic models an annotation holds (itself, or inside Optional/list/Annotated), each
    with whether it is a list's item."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, listed
        return
    for arg in typing.get_args(annotation):
        yield from _models_in(arg, listed or typing.get_origin(annotation) is list)


def _keys(reference: type[BaseModel]) -> str:
    """Which keys of the Secret a reference reads: the ones it names, with their defaults."""
    keys = []
    for name, info in reference.model_fields.items():
        if name == "name":
            continue
        alias = info.alias or name
        keys.append(f"`{alias}` (default `{info.default}`)" if not info.is_required() else f"named by `{alias}`")
    return ", ".join(keys)


def secrets_table() -> str:
    """Per kind, every field that references a Secret, which keys it reads and what they hold."""
    rows = ["| Kind | Field | Keys read | What they hold |", "|---|---|---|---|"]
    for kind, model in sorted(KINDS.items()):
        for path, reference, description in secret_fields(model.model_fields["spec"].annotation):
            holds = description.removeprefix("Secret key holding ").removeprefix("Secret holding ").rstrip(".")
            holds = holds[:1].lower() + holds[1:]
            rows.append(f"| {kind} | `{path}` | {_keys(reference)} | {holds} |")
    return "\n".join(rows) + "\n"


UNINSTALL_START = "<!-- uninstall:start (generated from crds/) -->"
UNINSTALL_END = "<!-- uninstall:end -->"


def uninstall_commands() -> str:
    """The deliberate full removal: the custom resources while the operator runs, the release, then
    Observatory's CRDs by name — never kopf's peering CRDs, which other kopf operators may use."""
    crds = [crd(kind, model) for kind, model in sorted(KINDS.items())]
    plurals = {scope: ",".join(c["spec"]["names"]["plural"] for c in crds if c["spec"]["scope"] == scope)
               for scope in ("Namespaced", "Cluster")}
    return "\n".join([
        "```sh",
        f"kubectl delete {plurals['Namespaced']} --all --all-namespaces",
        f"kubectl delete {plurals['Cluster']} --all",
        "helm uninstall observatory --namespace observatory-system",
        "kubectl delete crd " + " ".join(c["metadata"]["name"] for c in crds),
        "```",
    ]) + "\n"
