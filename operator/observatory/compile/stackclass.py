"""An ObservabilityStack under its ObservabilityStackClass: which class applies, which of the tenant's
Helm values it allows, and whether the stack stays under the class's ceilings. Pure: classes and the
charts' values schemas are inputs.

Without any class (none named, no default) the operator's built-in default applies: its own charts
and no tenant values at all, so a cluster that defines no class keeps serving the typed fields and
opens nothing new; the first class a platform defines decides what else its tenants may set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import jsonschema

from .. import models  # a module reference: models imports this package's errors first
from ..models.stack import ObservabilityStack, Resources
from ..models.stackclass import (
    DEFAULT_CLASS_ANNOTATION,
    Ceilings,
    ComponentClass,
    ObservabilityStackClass,
    denied,
    is_data_map,
)
from .errors import CompileError, FieldError

BUILT_IN = "the operator's built-in default (no ObservabilityStackClass named in spec.className and none is the default)"
# Value keys the ceilings read wherever they appear in a tenant's values.
REPLICA_KEYS, STORAGE_KEYS = ("replicaCount", "replicas"), ("size", "storage")
_SUFFIXES = {"m": Decimal("0.001"), "": Decimal(1), "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
             "T": Decimal(10) ** 12, "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40}


def quantity(text: str) -> Decimal | None:
    """A Kubernetes quantity (the subset QUANTITY_PATTERN accepts) as a number, or None when it is not one."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(m|k|Ki|Mi|Gi|Ti|M|G|T)?", str(text))
    return Decimal(match[1]) * _SUFFIXES[match[2] or ""] if match else None


# --- which class ------------------------------------------------------------------------------

def resolve_class(stack: ObservabilityStack, classes: Mapping[str, Mapping[str, Any]]) -> ObservabilityStackClass | None:
    """The class of `stack` among `classes` (name → object as read): the one named in spec.className,
    else the only default; None for the built-in default. A missing, invalid or ambiguous class is an
    error on spec.className, so the stack installs nothing until the platform fixes it."""
    name = stack.spec.class_name
    if name is None:
        defaults = sorted(n for n, body in classes.items()
                          if ((body.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true")
        if len(defaults) > 1:
            raise CompileError("spec.className", (
                f"not set, and {len(defaults)} ObservabilityStackClasses are marked default ({', '.join(defaults)}): "
                f"name one in spec.className, or ask the platform admin to keep the annotation {DEFAULT_CLASS_ANNOTATION} on one only"))
        if not defaults:
            return None
        name = defaults[0]
    body = classes.get(name)
    if body is None:
        raise CompileError("spec.className", f"no ObservabilityStackClass {name!r} exists: name an existing class or ask the platform admin to create it")
    try:
        parsed = models.parse_resource(body)
    except CompileError as err:
        raise CompileError("spec.className", f"ObservabilityStackClass {name!r} is invalid ("
                           + "; ".join(str(e) for e in err.errors) + "): ask the platform admin to fix it") from None
    assert isinstance(parsed, ObservabilityStackClass)
    return parsed


def component_class(stack_class: ObservabilityStackClass | None, component: str) -> ComponentClass:
    return getattr(stack_class.spec, component) if stack_class else ComponentClass()


# --- tenant values ----------------------------------------------------------------------------

def _leaves(values: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf of a values tree (lists and empty maps are leaves) with its key path."""
    if isinstance(values, Mapping) and values:
        for key, value in values.items():
            yield from _leaves(value, (*path, str(key)))
    elif path:
        yield path, values


def _denied_keys(component: str, value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    """Denied keys anywhere inside a value (lists included), skipping maps whose keys are data."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            key = str(key)
            if why := denied(component, key):
                yield (*path, key), why
            elif not is_data_map(key):
                yield from _denied_keys(component, inner, (*path, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _denied_keys(component, inner, (*path, str(i)))


def _computed_at(computed: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    """Whether the operator's values set `path`, a prefix of it (as a non-map) or anything below it."""
    node: Any = computed
    for key in path:
        if not isinstance(node, Mapping):
            return True
        if key not in node:
            return False
        node = node[key]
    return True


def _subschema(root: Mapping[str, Any], key: str) -> Mapping[str, Any] | None | bool:
    """The schema of top-level value `key` (carrying the root's definitions for its $refs); False when the
    chart accepts no such key, None when its schema says nothing about it."""
    properties = root.get("properties") or {}
    if key in properties:
        return {**properties[key], **{k: root[k] for k in ("$defs", "definitions") if k in root}}
    return False if root.get("additionalProperties") is False else None


def _schema_errors(component: str, values: Mapping[str, Any], schemas: Mapping[str, Mapping[str, Any]]) -> list[FieldError]:
    """The tenant's values against the chart's values.schema.json ("" → the chart's, an alias → a subchart's)."""
    errors = []
    for key, value in values.items():
        # `required` is left out below: a tenant gives part of a subtree, and helm checks the merged values
        # against the whole schema at install (helm/helm pkg/chart/v2/util/jsonschema.go ValidateAgainstSchema).
        sub: Any = schemas[key] if key in schemas and key != "" else _subschema(schemas[""], key) if "" in schemas else None
        if sub is False:
            errors.append(FieldError(f"spec.{component}.values.{key}", "the chart has no such value (its values.schema.json)"))
            continue
        if sub is None:
            continue
        cls = jsonschema.validators.validator_for(sub, default=jsonschema.Draft7Validator)
        lenient = jsonschema.validators.extend(cls, {"required": None})
        for error in sorted(lenient(sub).iter_errors(value), key=lambda e: list(map(str, e.absolute_path))):
            where = ".".join(str(p) for p in (key, *error.absolute_path))
            errors.append(FieldError(f"spec.{component}.values.{where}", f"{error.message} (the chart's values.schema.json)"))
    return errors


def tenant_value_errors(component: str, values: Mapping[str, Any], stack_class: ObservabilityStackClass | None,
                        computed: Mapping[str, Any], schemas: Mapping[str, Mapping[str, Any]] | None) -> list[FieldError]:
    """Every reason the class refuses the tenant's `values` of `component`, each naming its path."""
    allowed = [tuple(p.split(".")) for p in component_class(stack_class, component).allowed_values]
    where = f"ObservabilityStackClass {stack_class.name!r}" if stack_class else BUILT_IN
    errors: list[FieldError] = []
    for path, why in _denied_keys(component, values, ()):
        errors.append(FieldError(f"spec.{component}.values.{'.'.join(path)}",
                                 f"never settable by a tenant, whatever the class: it {why}"))
    if errors:
        return errors
    for path, _ in _leaves(values):
        field = f"spec.{component}.values.{'.'.join(path)}"
        if not any(path[:len(prefix)] == prefix for prefix in allowed):
            fix = (f"ask the platform admin to add {'.'.join(path)!r} (or a prefix of it) to spec.{component}.allowedValues "
                   f"of class {stack_class.name!r}" if stack_class else
                   f"ask the platform admin for an ObservabilityStackClass whose spec.{component}.allowedValues has it")
            errors.append(FieldError(field, f"not allowed by {where}: {fix}"))
        elif _computed_at(computed, path):
            errors.append(FieldError(field, "set by the operator (from the typed fields of the spec or its wiring); "
                                            "use the typed field where there is one"))
    return errors or _schema_errors(component, values, schemas or {})


# --- ceilings ---------------------------------------------------------------------------------

def _over(value: Any, ceiling: str | None) -> bool:
    given = quantity(value) if isinstance(value, (str, int, float)) else None
    return ceiling is not None and given is not None and given > quantity(ceiling)


def _resource_errors(field: str, resources: Mapping[str, Any], ceilings: Ceilings) -> list[FieldError]:
    errors = []
    for group in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            value = ((resources or {}).get(group) or {}).get(resource)
            if _over(value, getattr(ceilings, resource)):
                errors.append(FieldError(f"{field}.{group}.{resource}",
                                         f"{value} is above the class's ceiling {getattr(ceilings, resource)}"))
    return errors


def ceiling_errors(stack: ObservabilityStack, stack_class: ObservabilityStackClass | None) -> list[FieldError]:
    """The typed fields and the tenant's values against the class's ceilings."""
    if stack_class is None:
        return []
    ceilings, spec = stack_class.spec.ceilings, stack.spec
    errors = []
    typed: list[tuple[str, Resources | None]] = [("spec.phoenix.resources", spec.phoenix.resources),
                                                 ("spec.langfuse.dedicated.resources", spec.langfuse.dedicated.resources),
                                                 ("spec.collector.resources", spec.collector.resources)]
    for field, resources in typed:
        if resources is not None:
            errors += _resource_errors(field, resources.model_dump(exclude_none=True), ceilings)
    if ceilings.replicas is not None and spec.collector.replicas > ceilings.replicas:
        errors.append(FieldError("spec.collector.replicas", f"{spec.collector.replicas} is above the class's ceiling {ceilings.replicas}"))
    sqlite = spec.phoenix.storage.sqlite
    if sqlite is not None and _over(sqlite.size, ceilings.storage):
        errors.append(FieldError("spec.phoenix.storage.sqlite.size", f"{sqlite.size} is above the class's ceiling {ceilings.storage}"))
    for component in ("phoenix", "langfuse", "collector"):
        errors += _value_ceiling_errors(f"spec.{component}.values", getattr(spec, component).values, ceilings)
    return errors


def _value_ceiling_errors(field: str, value: Any, ceilings: Ceilings) -> list[FieldError]:
    """Resources, replica counts and volume sizes anywhere in a tenant's values."""
    errors: list[FieldError] = []
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        here = f"{field}.{key}"
        if key == "resources" and isinstance(inner, Mapping):
            errors += _resource_errors(here, inner, ceilings)
        elif key in REPLICA_KEYS and isinstance(inner, int) and ceilings.replicas is not None and inner > ceilings.replicas:
            errors.append(FieldError(here, f"{inner} is above the class's ceiling {ceilings.replicas}"))
        elif key in STORAGE_KEYS and _over(inner, ceilings.storage):
            errors.append(FieldError(here, f"{inner} is above the class's ceiling {ceilings.storage}"))
        else:
            errors += _value_ceiling_errors(here, inner, ceilings)
    return errors
