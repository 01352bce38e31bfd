"""CustomResourceDefinitions generated from the pydantic models (the single source of the schemas).

pydantic emits JSON Schema 2020-12; the API server wants a *structural* OpenAPI v3 schema: no
`$ref`, no `anyOf` for optional fields, `nullable` instead of a null type, boolean exclusive bounds,
and `additionalProperties` never beside `properties`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .models import CLUSTER_SCOPED, KINDS
from .models.common import GROUP, VERSION, CustomResource

READY = '.status.conditions[?(@.type=="Ready")]'
_KEEP = {"type", "description", "properties", "required", "items", "enum", "pattern", "minimum", "maximum",
         "minLength", "maxLength", "minItems", "maxItems", "format", "default", "additionalProperties", "nullable",
         "exclusiveMinimum", "exclusiveMaximum"}


@dataclass(frozen=True)
class Names:
    plural: str
    short_names: tuple[str, ...]
    printer_columns: tuple[dict[str, Any], ...]


_COMMON_COLUMNS = (
    {"name": "Ready", "type": "string", "jsonPath": READY + ".status"},
    {"name": "Reason", "type": "string", "jsonPath": READY + ".reason"},
)
_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

NAMES: dict[str, Names] = {
    "AlertRule": Names("alertrules", ("ar", "alr"), (
        {"name": "Severity", "type": "string", "jsonPath": ".spec.severity"},
        *_COMMON_COLUMNS,
        {"name": "Alerts", "type": "integer", "jsonPath": ".status.alertingRules", "priority": 1},
        _AGE,
    )),
    "SLO": Names("slos", ("slo",), (
        {"name": "Objective", "type": "number", "jsonPath": ".spec.objective"},
        {"name": "Window", "type": "string", "jsonPath": ".spec.window"},
        *_COMMON_COLUMNS,
        {"name": "Rules", "type": "integer", "jsonPath": ".status.recordingRules", "priority": 1},
        _AGE,
    )),
    "ObservabilityStack": Names("observabilitystacks", ("obs", "ostack"), (
        *_COMMON_COLUMNS,
        {"name": "OTLP", "type": "string", "jsonPath": ".status.endpoints.otlpHttp"},
        {"name": "Phoenix", "type": "string", "jsonPath": ".status.endpoints.phoenixUI", "priority": 1},
        _AGE,
    )),
    "ObservabilityStackClass": Names("observabilitystackclasses", ("osc", "stackclass"), (
        {"name": "Default", "type": "string", "jsonPath": ".metadata.annotations.observatory\\.dev/is-default-class"},
        _AGE,
    )),
}


def structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Rewrite one pydantic JSON schema node into a structural OpenAPI v3 node."""
    node = dict(schema)
    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        description = node.get("description") or target.get("description")
        node = {**target, **node}
        if description:
            node["description"] = description
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"unions are not structural: {options}")
        description = node.get("description")
        node = {**structural(options[0], defs), **{k: v for k, v in node.items() if k != "default" or v is not None}}
        if description:
            node["description"] = description
        node["nullable"] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node and not isinstance(node[bound], bool):  # bool: converted in a nested call
            node[flag] = node.pop(bound)
            node[bound] = True
    if "patternProperties" in node:
        (value_schema,) = node.pop("patternProperties").values()
        node["additionalProperties"] = value_schema
    out: dict[str, Any] = {}
    if node.get("type") == "object" and node.get("additionalProperties") is True:
        out["x-kubernetes-preserve-unknown-fields"] = True
        node.pop("additionalProperties")
    for key, value in node.items():
        if key not in _KEEP or (key == "default" and value is None):
            continue
        if key == "properties":
            out[key] = {name: structural(prop, defs) for name, prop in value.items()}
        elif key in ("items",) or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = structural(value, defs)
        elif key == "additionalProperties":
            continue  # `false` beside `properties` is not structural; the server prunes unknown fields
        else:
            out[key] = value
    return {k: out[k] for k in sorted(out, key=_key_order)}


def _key_order(key: str) -> tuple[int, str]:
    order = ["description", "type", "nullable", "enum", "default"]
    return (order.index(key) if key in order else len(order), key)


def crd(kind: str, model: type[CustomResource]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})
    properties = schema["properties"]
    names = NAMES[kind]
    open_api = {
        "description": model.__doc__.strip(),
        "type": "object",
        "properties": {
            "apiVersion": {"description": "APIVersion of this object.", "type": "string"},
            "kind": {"description": "Kind of this object.", "type": "string"},
            "metadata": {"type": "object"},
            "spec": structural(properties["spec"], defs),
            **({"status": structural(properties["status"], defs)} if "status" in properties else {}),
        },
        "required": ["spec"],
    }
    if model.max_name_length is not None:
        # Root rules may read metadata.name; the apiserver checks it at create, before any operator sees it.
        open_api["x-kubernetes-validations"] = [{
            "rule": f"self.metadata.name.size() <= {model.max_name_length}",
            "message": f"metadata.name may have at most {model.max_name_length} characters: {model.name_limit_reason}"}]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{names.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": names.plural,
                "singular": kind.lower(),
                "shortNames": list(names.short_names),
                "categories": ["observatory"],
            },
            "scope": "Cluster" if kind in CLUSTER_SCOPED else "Namespaced",
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                **({"subresources": {"status": {}}} if "status" in properties else {}),
                "additionalPrinterColumns": list(names.printer_columns),
                "schema": {"openAPIV3Schema": open_api},
            }],
        },
    }


def kopf_peering_crd(kind: str, scope: str) -> dict[str, Any]:
    """kopf's peering resource: replicas of the operator elect the active one through it (HA)."""
    plural = f"{kind.lower()}s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "group": "kopf.dev",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()},
            "scope": scope,
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "description": "Keep-alives of the operator replicas sharing this peering (kopf).",
                    "type": "object",
                    "properties": {"status": {"description": "One entry per live replica, written by kopf.",
                                              "type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }},
            }],
        },
    }


def all_crds() -> dict[str, dict[str, Any]]:
    """File name → CRD object: every Observatory kind, and kopf's peering kinds for HA replicas."""
    crds = {f"{GROUP}_{NAMES[kind].plural}.yaml": crd(kind, model) for kind, model in sorted(KINDS.items())}
    for kind, scope in (("ClusterKopfPeering", "Cluster"), ("KopfPeering", "Namespaced")):
        crds[f"kopf.dev_{kind.lower()}s.yaml"] = kopf_peering_crd(kind, scope)
    return crds
