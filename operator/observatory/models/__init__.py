"""Custom resource models; the CRD schemas in crds/ are generated from them."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Mapping

from pydantic import BaseModel, ValidationError

from ..compile.errors import CompileError, FieldError
from .alertrule import AlertRule
from .common import API_VERSION, CustomResource, SecretKeyRef
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
    if not isinstance(document.get("metadata") or {}, Mapping):
        raise CompileError("metadata", "must be a mapping, e.g. {name: my-slo, namespace: team-a}")
    metadata = dict(document.get("metadata") or {})
    if kind in CLUSTER_SCOPED:
        metadata.pop("namespace", None)
    elif default_namespace and not metadata.get("namespace"):
        metadata["namespace"] = default_namespace
    document["metadata"] = metadata
    try:
        return model.model_validate(document)
    except ValidationError as err:
        raise CompileError([_field_error(model, e) for e in err.errors()]) from None


def _field_error(model: type[BaseModel], error: Mapping[str, Any]) -> FieldError:
    loc = [str(p) for p in error["loc"]]
    message = error["msg"]
    if loc and loc[-1] == "[key]":  # pydantic's marker for an invalid mapping key
        loc.pop()
        message = f"invalid key: {message}"
    path = ".".join(loc) or "(document)"
    value = error.get("input")
    if error["type"] == "extra_forbidden":
        message = REMOVED_FIELDS.get(tuple(loc)) or _unknown_field(model, loc)
    elif message.startswith("Value error, "):
        message = message[len("Value error, "):]
    elif error["type"].split("_")[0] in ("float", "int", "bool") and isinstance(value, str):
        # The CRD says number or boolean: the API server refuses a quoted one, so the file must not pass here either.
        message = _quoted_scalar(error["type"].split("_")[0], value)
    elif error["type"] == "finite_number":
        message = "must be a finite number: .inf and .nan are no threshold (a comparison with +Inf never fires)"
    elif error["type"] == "model_type" and isinstance(value, str) and _model_at(model, loc) is SecretKeyRef:
        message = ("credentials are never written inline: reference a Secret: {name, key}, e.g. "
                   "{name: my-secret, key: url}, and put the value in that Secret")
    return FieldError(path, message)


def _quoted_scalar(kind: str, value: str) -> str:
    text = value.strip()
    if kind == "bool":
        hint = f"write {text} without quotes" if text in ("true", "false") else "write true or false"
        return f"{value!r} is a string; true or false is expected: {hint}"
    number = text.rstrip("%").strip()
    if text.endswith("%") and _is_number(number):
        hint = f"write {number} (a number, without % or quotes)"
    else:
        hint = f"write {text} without quotes" if _is_number(text) else "write a number, e.g. 99.5"
    return f"{value!r} is a string; a number is expected: {hint}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _unknown_field(model: type[BaseModel], loc: list[str]) -> str:
    parent = _model_at(model, loc[:-1])
    if parent is None:
        return "unknown field"
    valid = sorted(f.alias or name for name, f in parent.model_fields.items())
    close = difflib.get_close_matches(loc[-1], valid, n=1)
    return f"unknown field; {f'closest match: {close[0]}; ' if close else ''}valid fields: {', '.join(valid)}"


def _model_at(model: type[BaseModel], loc: list[str]) -> type[BaseModel] | None:
    """The model class at a pydantic error location (aliases, list indexes, map keys), if it is one."""
    annotation: Any = model
    for part in loc:
        current = _model_in(annotation)
        fields = {f.alias or name: f for name, f in current.model_fields.items()} if current else {}
        if part in fields:
            annotation = fields[part].annotation
        else:  # a list index or map key: the element's type
            while typing.get_origin(annotation) in (typing.Union, types.UnionType):
                annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
            args = typing.get_args(annotation)
            annotation = args[-1] if args else None
    return _model_in(annotation)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside Optional[...] / Annotated[...], if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if arg is not type(None) and (found := _model_in(arg)) and typing.get_origin(annotation) is not list:
            return found
    return None
