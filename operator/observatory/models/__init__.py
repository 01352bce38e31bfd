"""Custom resource models; the CRD schemas in crds/ are generated from them."""

from __future__ import annotations

from typing import Any, Mapping

from pydantic import ValidationError

from ..compile.errors import CompileError, FieldError
from .alertrule import AlertRule
from .common import API_VERSION, CustomResource
from .slo import SLO
from .stack import REMOVED_FIELDS, ObservabilityStack
from .stackclass import ObservabilityStackClass

KINDS: dict[str, type[CustomResource]] = {"AlertRule": AlertRule, "SLO": SLO, "ObservabilityStack": ObservabilityStack,
                                          "ObservabilityStackClass": ObservabilityStackClass}
# Kinds without a namespace (the CRD scope and the loader follow this).
CLUSTER_SCOPED = frozenset({"ObservabilityStackClass"})


def parse_resource(document: Mapping[str, Any], default_namespace: str | None = None) -> CustomResource:
    """Validate one YAML document as an Observatory resource; errors name the field."""
    kind = document.get("kind")
    if document.get("apiVersion") != API_VERSION:
        raise CompileError("apiVersion", f"must be {API_VERSION}, got {document.get('apiVersion')!r}")
    model = KINDS.get(kind)
    if model is None:
        raise CompileError("kind", f"must be one of {', '.join(sorted(KINDS))}, got {kind!r}")
    document = dict(document)
    metadata = dict(document.get("metadata") or {})
    if kind in CLUSTER_SCOPED:
        metadata.pop("namespace", None)
    elif default_namespace and not metadata.get("namespace"):
        metadata["namespace"] = default_namespace
    document["metadata"] = metadata
    try:
        return model.model_validate(document)
    except ValidationError as err:
        raise CompileError([_field_error(e) for e in err.errors()]) from None


def _field_error(error: Mapping[str, Any]) -> FieldError:
    loc = [str(p) for p in error["loc"]]
    message = error["msg"]
    if loc and loc[-1] == "[key]":  # pydantic's marker for an invalid mapping key
        loc.pop()
        message = f"invalid key: {message}"
    path = ".".join(loc) or "(document)"
    if error["type"] == "extra_forbidden":
        message = REMOVED_FIELDS.get(tuple(loc), "unknown field")
    elif message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return FieldError(path, message)
