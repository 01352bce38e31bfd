"""Structural schemas as kube-apiserver 1.29–1.33 applies them: pruning, defaulting, validation.

One compiled `Node` tree per resource version, built once (from a CRD's `openAPIV3Schema`, or for
built-in kinds from the Kubernetes 1.33 OpenAPI that `kubernetes-validate` ships) and reused for
every request; the same tree carries the list/map types server-side apply needs (ssa.py).

What runs, in the apiserver's order (k8s.io/apiextensions-apiserver/pkg/apiserver/schema/...):
1. pruning of fields the schema does not declare (`pruning/algorithm.go`), reported per
   `fieldValidation` (Ignore: dropped; Warn, the server default: dropped with a `Warning` header;
   Strict: 400 `strict decoding error: unknown field "spec.x"`);
2. nulls of non-nullable fields dropped, then `default:` applied (`defaulting/prunenulls.go`,
   `defaulting/algorithm.go`);
3. validation (k8s.io/kube-openapi/pkg/validation/validate), errors converted to field errors as
   `kubeOpenAPIResultToFieldErrors` in apiextensions-apiserver `pkg/apiserver/validation/validation.go`
   does, then `x-kubernetes-validations` (CEL, the subset in `cel_compile`), answered as one 422
   whose message is `errors.NewInvalid`'s (k8s.io/apimachinery/pkg/api/errors/errors.go).

Built-in kinds are typed Go structs on a real server: a value of the wrong JSON type fails
decoding (400 `... cannot be handled as a ConfigMap: json: cannot unmarshal ...`), unknown fields
follow the same fieldValidation rules, and the OpenAPI `required`/`enum` stand in for the Go
validation (422). Go-side semantic validation beyond that (e.g. label syntax) is not emulated.
"""

from __future__ import annotations

import copy
import functools
import json
import operator
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kmock
import yaml

Obj = dict[str, Any]
# Kubernetes 1.33: the newest release of the 1.29–1.33 range the project supports; a field added
# after 1.29 is accepted here as on 1.33 (kubernetes-validate has no 1.29-only refusal either).
BUILTIN_SCHEMA_VERSION = '1.33.0'
OBJECT_META = 'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta'
JSON_TYPES = {bool: 'boolean', int: 'integer', float: 'number', str: 'string', list: 'array', dict: 'object', type(None): 'null'}


@dataclass
class FieldError:
    """k8s.io/apimachinery/pkg/util/validation/field.Error: type, field path, bad value, detail."""

    type: str  # the cause type, e.g. FieldValueInvalid
    field: str
    value: Any = None
    detail: str = ''

    def body(self) -> str:
        """`ErrorBody()`: Required/TooLong omit the value; strings are quoted, numbers bare."""
        label = {'FieldValueRequired': 'Required value', 'FieldValueInvalid': 'Invalid value',
                 'FieldValueNotSupported': 'Unsupported value', 'FieldValueTooLong': 'Too long',
                 'FieldValueTooMany': 'Too many', 'FieldValueTypeInvalid': 'Invalid value',
                 'FieldValueForbidden': 'Forbidden', 'FieldValueDuplicate': 'Duplicate value'}[self.type]
        text = label if self.type in ('FieldValueRequired', 'FieldValueTooLong', 'FieldValueForbidden') \
            else f'{label}: {go_value(self.value)}'
        return f'{text}: {self.detail}' if self.detail else text

    def __str__(self) -> str:
        return f'{self.field}: {self.body()}'


def go_value(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return 'null'
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, int | float) else json.dumps(value, sort_keys=True)


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> kmock.KubernetesError:
    """`errors.NewInvalid`: 422 Invalid, `<Kind>.<group> "<name>" is invalid: <aggregate>`."""
    qualified = f'{kind}.{group}' if group else kind
    texts = list(dict.fromkeys(str(e) for e in errors))  # utilerrors.NewAggregate dedupes
    aggregate = texts[0] if len(texts) == 1 else '[' + ', '.join(texts) + ']'
    return kmock.KubernetesError(
        status=422, reason='Invalid', message=f'{qualified} "{name}" is invalid: {aggregate}',
        details={'name': name, 'group': group, 'kind': kind,
                 'causes': [{'reason': e.type, 'message': e.body(), 'field': e.field} for e in errors]})


def child(path: str, key: str) -> str:
    return f'{path}.{key}' if path else key


# --- the compiled schema ------------------------------------------------------------------------

@dataclass(eq=False)
class Node:
    """One schema node, compiled. `types` None means any type (int-or-string lists both)."""

    types: frozenset[str] | None = None
    nullable: bool = False
    format: str | None = None
    props: dict[str, Node] = field(default_factory=dict)
    additional: Node | bool | None = None  # None: not given (closed unless preserve)
    items: Node | None = None
    required: tuple[str, ...] = ()
    enum: list[Any] | None = None
    pattern: re.Pattern[str] | None = None
    pattern_text: str = ''
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    min_length: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    min_properties: int | None = None
    max_properties: int | None = None
    multiple_of: float | None = None
    unique_items: bool = False
    any_of: list[Node] = field(default_factory=list)
    all_of: list[Node] = field(default_factory=list)
    one_of: list[Node] = field(default_factory=list)
    preserve: bool = False
    embedded: bool = False
    has_default: bool = False
    default: Any = None
    rules: list[tuple[Callable[[Any], Any], str, str]] = field(default_factory=list)  # (eval, rule, message)
    list_type: str | None = None  # atomic (the default), set, map
    list_keys: tuple[str, ...] = ()
    map_type: str | None = None  # granular (the default for objects) or atomic

    @property
    def is_object(self) -> bool:
        return self.types is not None and 'object' in self.types

    def closed(self) -> bool:
        """Whether an object node prunes keys it does not declare."""
        return not self.preserve and self.additional in (None, False)


def go_pattern(pattern: str) -> re.Pattern[str]:
    """An RE2 pattern as Python's re reads it. RE2's `(?i)` mid-pattern sets the flag to the end
    of the enclosing group; re only allows that as a scoped group `(?i:...)`."""
    while (start := pattern.find('(?i)')) >= 0:
        depth, end = 0, start + 4
        while end < len(pattern) and depth >= 0:
            if pattern[end] == '\\':
                end += 1
            elif pattern[end] == '(':
                depth += 1
            elif pattern[end] == ')':
                depth -= 1
                if depth < 0:
                    break
            end += 1
        pattern = f'{pattern[:start]}(?i:{pattern[start + 4:end]}){pattern[end:]}'
    return re.compile(pattern)


def compile_schema(schema: Obj, ref: Callable[[str], Node] | None = None) -> Node:
    """A Node from an OpenAPI v3 schema (a CRD's openAPIV3Schema, or a JSON schema with `$ref`s)."""
    if '$ref' in schema and ref is not None:
        return ref(schema['$ref'])
    node = Node()
    kind = schema.get('type')
    kinds = set(kind if isinstance(kind, list) else [kind] if kind else [])
    if 'null' in kinds:
        node.nullable = True
        kinds.discard('null')
    node.nullable = node.nullable or bool(schema.get('nullable'))
    if schema.get('x-kubernetes-int-or-string'):
        kinds = {'integer', 'string'}
    if schema.get('oneOf') and not kinds:  # built-ins' IntOrString / Quantity: a union of types
        branches = [compile_schema(s, ref) for s in schema['oneOf']]
        if all(b.types and not b.props for b in branches):
            kinds = set().union(*(b.types for b in branches))
            node.nullable = node.nullable or any(b.nullable for b in branches)
        else:
            node.one_of = branches
    elif schema.get('oneOf'):
        node.one_of = [compile_schema(s, ref) for s in schema['oneOf']]
    node.types = frozenset(kinds) or None
    node.format = schema.get('format')
    node.props = {k: compile_schema(v, ref) for k, v in (schema.get('properties') or {}).items()}
    if node.props and node.types is None:
        node.types = frozenset({'object'})
    additional = schema.get('additionalProperties')
    node.additional = compile_schema(additional, ref) if isinstance(additional, dict) else additional
    if isinstance(schema.get('items'), dict):
        node.items = compile_schema(schema['items'], ref)
    node.required = tuple(schema.get('required') or ())
    node.enum = schema.get('enum')
    if schema.get('pattern'):
        node.pattern_text, node.pattern = schema['pattern'], go_pattern(schema['pattern'])
    for attr, key in (('minimum', 'minimum'), ('maximum', 'maximum'), ('min_length', 'minLength'),
                      ('max_length', 'maxLength'), ('min_items', 'minItems'), ('max_items', 'maxItems'),
                      ('min_properties', 'minProperties'), ('max_properties', 'maxProperties'),
                      ('multiple_of', 'multipleOf')):
        setattr(node, attr, schema.get(key))
    node.exclusive_minimum = bool(schema.get('exclusiveMinimum'))
    node.exclusive_maximum = bool(schema.get('exclusiveMaximum'))
    node.unique_items = bool(schema.get('uniqueItems'))
    node.any_of = [compile_schema(s, ref) for s in schema.get('anyOf') or ()]
    node.all_of = [compile_schema(s, ref) for s in schema.get('allOf') or ()]
    node.preserve = bool(schema.get('x-kubernetes-preserve-unknown-fields'))
    node.embedded = bool(schema.get('x-kubernetes-embedded-resource'))
    if 'default' in schema:
        node.has_default, node.default = True, schema['default']
    for rule in schema.get('x-kubernetes-validations') or ():
        node.rules.append((cel_compile(rule['rule']), rule['rule'], rule.get('message', '')))
    node.list_type = schema.get('x-kubernetes-list-type')
    node.list_keys = tuple(schema.get('x-kubernetes-list-map-keys') or ())
    node.map_type = schema.get('x-kubernetes-map-type')
    return node


# --- built-in kinds: kubernetes-validate's copy of the Kubernetes OpenAPI ------------------------

@functools.cache
def _builtin_definitions() -> dict[str, Obj]:
    """The `$defs` of kubernetes-validate's strict 1.33 schemas (additionalProperties: false
    everywhere, so an undeclared field is found, as the apiserver's strict decoder finds it)."""
    import importlib.resources
    folder = importlib.resources.files('kubernetes_validate') / 'kubernetes-json-schema' / f'v{BUILTIN_SCHEMA_VERSION}-local-strict'
    return json.loads((folder / '_definitions.json').read_text())['$defs']


_BUILTIN_NODES: dict[str, Node] = {}


def builtin_definition(name: str) -> Node:
    """The compiled node of one OpenAPI definition, e.g. `io.k8s.api.core.v1.PodSpec` (cached;
    recursive definitions resolve to the same node)."""
    if name not in _BUILTIN_NODES:
        placeholder = _BUILTIN_NODES[name] = Node()
        definition = _builtin_definitions()[name]
        compiled = compile_schema(definition, _builtin_ref)
        # Objects without properties (FieldsV1, RawExtension, ...) are opaque to the typed decoder.
        compiled.preserve = 'properties' not in definition and 'additionalProperties' not in definition
        placeholder.__dict__.update(compiled.__dict__)
    return _BUILTIN_NODES[name]


def _builtin_ref(ref: str) -> Node:
    return builtin_definition(ref.rpartition('/')[2])


@functools.cache
def builtin_schema(api_version: str, kind: str) -> Node | None:
    """The node of a built-in kind (by its x-kubernetes-group-version-kind), or None if unknown."""
    group, _, version = api_version.rpartition('/')
    for name, definition in _builtin_definitions().items():
        for gvk in definition.get('x-kubernetes-group-version-kind') or ():
            if (gvk['group'], gvk['version'], gvk['kind']) == (group, version, kind):
                return builtin_definition(name)
    return None


# --- CRDs -------------------------------------------------------------------------------------

@dataclass
class ResourceSchema:
    """What the apiserver keeps per served resource version."""

    node: Node
    builtin: bool  # typed (built-in) or a custom resource
    status_subresource: bool = False


def crd_schema(version: Obj) -> ResourceSchema:
    """A CRD version's schema; apiVersion/kind are strings and metadata is ObjectMeta whatever the
    CRD says (the apiserver validates metadata itself: `pkg/apiserver/schema/objectmeta`)."""
    node = compile_schema((version.get('schema') or {}).get('openAPIV3Schema') or {'type': 'object', 'x-kubernetes-preserve-unknown-fields': True})
    node.types = frozenset({'object'})
    node.props = dict(node.props, apiVersion=Node(types=frozenset({'string'})), kind=Node(types=frozenset({'string'})),
                      metadata=builtin_definition(OBJECT_META))
    return ResourceSchema(node, builtin=False, status_subresource='status' in (version.get('subresources') or {}))


# --- pruning and defaulting -------------------------------------------------------------------

def prune(value: Any, node: Node | None, path: str, unknown: list[str], root: bool = False) -> None:
    """Drop undeclared fields in place; their paths go to `unknown`, in the apiserver's format."""
    if node is None:
        return
    if isinstance(value, dict):
        keep = ('apiVersion', 'kind', 'metadata') if node.embedded or root else ()
        for key in list(value):
            sub = node.props.get(key)
            if sub is None and isinstance(node.additional, Node):
                sub = node.additional
            if sub is None and key not in keep and node.closed() and (node.props or node.additional is False or node.types):
                unknown.append(child(path, key))
                del value[key]
            elif sub is not None:
                prune(value[key], sub, child(path, key), unknown)
            elif key == 'metadata' and node.embedded:
                prune(value[key], builtin_definition(OBJECT_META), child(path, key), unknown)
    elif isinstance(value, list) and node.items is not None:
        for i, item in enumerate(value):
            prune(item, node.items, f'{path}[{i}]', unknown)


def apply_defaults(value: Any, node: Node | None) -> None:
    """Drop nulls of non-nullable fields without a default, set defaults of absent fields, recurse."""
    if node is None:
        return
    if isinstance(value, dict):
        for key, sub in node.props.items():
            current = value.get(key, ...)
            if current is None and not sub.nullable:
                del value[key]
                current = ...
            if current is ... and sub.has_default:
                value[key] = copy.deepcopy(sub.default)
        for key, item in list(value.items()):
            sub = node.props.get(key) or (node.additional if isinstance(node.additional, Node) else None)
            if sub is not None:
                apply_defaults(item, sub)
    elif isinstance(value, list) and node.items is not None:
        for item in value:
            apply_defaults(item, node.items)


# --- validation -------------------------------------------------------------------------------

DATE_TIME = re.compile(r'\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(:\d\d(\.\d+)?)?([Zz]|[+-]\d\d:?\d\d)?')


def json_type(value: Any) -> str:
    return JSON_TYPES.get(type(value), 'object')


def type_matches(value: Any, types: frozenset[str]) -> bool:
    actual = json_type(value)
    return actual in types or (actual == 'integer' and 'number' in types) or \
        (actual == 'number' and 'integer' in types and float(value).is_integer())


def type_name(types: frozenset[str]) -> str:
    # go-openapi prints a single type by name and a StringOrArray as Go prints a slice.
    return next(iter(types)) if len(types) == 1 else '[' + ' '.join(sorted(types)) + ']'


def validate(value: Any, node: Node, path: str, errors: list[FieldError]) -> None:
    """kube-openapi's SchemaValidator on one node, errors converted as apiextensions does."""
    if value is None and node.nullable:
        return
    if node.types is not None and not type_matches(value, node.types):
        actual = json_type(value)
        errors.append(FieldError('FieldValueTypeInvalid', path, actual,
                                 f'{path} in body must be of type {type_name(node.types)}: "{actual}"'))
        return
    if isinstance(value, dict):
        _validate_object(value, node, path, errors)
    elif isinstance(value, list):
        _validate_array(value, node, path, errors)
    elif isinstance(value, str):
        _validate_string(value, node, path, errors)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(value, node, path, errors)
    if node.enum is not None and value not in node.enum:
        errors.append(FieldError('FieldValueNotSupported', path, value,
                                 'supported values: ' + ', '.join(json.dumps(v) for v in node.enum)))
    for branches, need in ((node.any_of, 'anyOf'), (node.one_of, 'oneOf')):
        if branches:
            matched = sum(1 for b in branches if not _errors_of(value, b, path))
            if (need == 'anyOf' and matched == 0) or (need == 'oneOf' and matched != 1):
                errors.append(FieldError('FieldValueInvalid', path, value, f'"{path}" must validate {"at least one schema (anyOf)" if need == "anyOf" else "one and only one schema (oneOf)"}'))
    for branch in node.all_of:
        validate(value, branch, path, errors)
    for evaluate, rule, message in node.rules:
        try:
            ok = evaluate(value)
        except CelError as e:
            errors.append(FieldError('FieldValueInvalid', path, json_type(value), f'{e} evaluating rule: {rule}'))
            continue
        if ok is not True:
            errors.append(FieldError('FieldValueInvalid', path, json_type(value), message or f'failed rule: {rule}'))


def _errors_of(value: Any, node: Node, path: str) -> list[FieldError]:
    found: list[FieldError] = []
    validate(value, node, path, found)
    return found


def _validate_object(value: Obj, node: Node, path: str, errors: list[FieldError]) -> None:
    for key in node.required:
        if key not in value:
            errors.append(FieldError('FieldValueRequired', child(path, key)))
    if node.embedded:
        for key in ('apiVersion', 'kind'):
            if not value.get(key):
                errors.append(FieldError('FieldValueRequired', child(path, key), detail='must not be empty'))
    if node.max_properties is not None and len(value) > node.max_properties:
        errors.append(FieldError('FieldValueTooMany', path, len(value), f'must have at most {node.max_properties} items'))
    if node.min_properties is not None and len(value) < node.min_properties:
        errors.append(FieldError('FieldValueInvalid', path, node.min_properties,
                                 f'{path} in body should have at least {node.min_properties} properties'))
    for key, item in value.items():
        sub = node.props.get(key) or (node.additional if isinstance(node.additional, Node) else None)
        if sub is not None:
            validate(item, sub, child(path, key), errors)


def _validate_array(value: list[Any], node: Node, path: str, errors: list[FieldError]) -> None:
    if node.max_items is not None and len(value) > node.max_items:
        errors.append(FieldError('FieldValueTooMany', path, len(value), f'must have at most {node.max_items} items'))
    if node.min_items is not None and len(value) < node.min_items:
        errors.append(FieldError('FieldValueInvalid', path, len(value), f'{path} in body should have at least {node.min_items} items'))
    if node.unique_items or node.list_type == 'set':
        seen: list[Any] = []
        for i, item in enumerate(value):
            if item in seen:
                errors.append(FieldError('FieldValueDuplicate' if node.list_type == 'set' else 'FieldValueInvalid',
                                         f'{path}[{i}]', item, '' if node.list_type == 'set' else f"{path} in body shouldn't contain duplicates"))
            seen.append(item)
    if node.list_type == 'map' and node.list_keys:
        keys: set[str] = set()
        for i, item in enumerate(value):
            if isinstance(item, dict):
                identity = json.dumps([item.get(k) for k in node.list_keys])
                if identity in keys:
                    errors.append(FieldError('FieldValueDuplicate', f'{path}[{i}]', {k: item.get(k) for k in node.list_keys if k in item}))
                keys.add(identity)
    if node.items is not None:
        for i, item in enumerate(value):
            validate(item, node.items, f'{path}[{i}]', errors)


def _validate_string(value: str, node: Node, path: str, errors: list[FieldError]) -> None:
    if node.max_length is not None and len(value) > node.max_length:  # runes, as utf8.RuneCountInString
        unit = 'byte' if node.max_length == 1 else 'bytes'
        errors.append(FieldError('FieldValueTooLong', path, value, f'may not be more than {node.max_length} {unit}'))
    if node.min_length is not None and len(value) < node.min_length:
        errors.append(FieldError('FieldValueInvalid', path, value, f'{path} in body should be at least {node.min_length} chars long'))
    if node.pattern is not None and not node.pattern.search(value):
        errors.append(FieldError('FieldValueInvalid', path, value, f"{path} in body should match '{node.pattern_text}'"))
    if node.format == 'date-time' and not DATE_TIME.fullmatch(value):
        errors.append(FieldError('FieldValueInvalid', path, value, f'{path} in body must be of type date-time: "{value}"'))


def _validate_number(value: float, node: Node, path: str, errors: list[FieldError]) -> None:
    if node.maximum is not None and (value >= node.maximum if node.exclusive_maximum else value > node.maximum):
        op = 'less than' if node.exclusive_maximum else 'less than or equal to'
        errors.append(FieldError('FieldValueInvalid', path, value, f'{path} in body should be {op} {go_value(node.maximum)}'))
    if node.minimum is not None and (value <= node.minimum if node.exclusive_minimum else value < node.minimum):
        op = 'greater than' if node.exclusive_minimum else 'greater than or equal to'
        errors.append(FieldError('FieldValueInvalid', path, value, f'{path} in body should be {op} {go_value(node.minimum)}'))
    if node.multiple_of and (value / node.multiple_of) % 1:
        errors.append(FieldError('FieldValueInvalid', path, value, f'{path} in body should be a multiple of {go_value(node.multiple_of)}'))


# --- admission: the three steps for one write ---------------------------------------------------

FIELD_VALIDATION = ('Ignore', 'Warn', 'Strict')


def admit(schema: ResourceSchema, obj: Obj, field_validation: str | None, *, group: str, kind: str) -> list[str]:
    """Prune, default and validate `obj` in place for a create/update; the Warning texts to send.

    Raises 400 for bad fieldValidation, strict unknown fields and (built-ins) wrongly typed
    values; 422 for invalid values.
    """
    mode = field_validation or 'Warn'  # the server default since 1.27 (KEP-2885)
    if mode not in FIELD_VALIDATION:
        raise kmock.KubernetesError(status=400, reason='BadRequest', message=(
            f'fieldValidation: Invalid value: "{mode}": must be one of "Ignore", "Warn", or "Strict"'))
    unknown: list[str] = []
    prune(obj, schema.node, '', unknown, root=True)
    decoding = f'{kind} in version "{obj.get("apiVersion", "").rpartition("/")[2]}" cannot be handled as a {kind}'
    if unknown and mode == 'Strict':
        raise kmock.KubernetesError(status=400, reason='BadRequest', message=(
            f'{decoding}: strict decoding error: ' + ', '.join(f'unknown field "{p}"' for p in unknown)))
    if not schema.builtin:
        apply_defaults(obj, schema.node)
    errors: list[FieldError] = []
    validate(obj, schema.node, '', errors)
    name = (obj.get('metadata') or {}).get('name', '')
    if schema.builtin:
        mistyped = [e for e in errors if e.type == 'FieldValueTypeInvalid']
        if mistyped:  # encoding/json's UnmarshalTypeError, as the typed decoder reports it
            e = mistyped[0]
            wanted = e.detail.split(' must be of type ')[1].split(':')[0]
            raise kmock.KubernetesError(status=400, reason='BadRequest', message=(
                f'{decoding}: json: cannot unmarshal {e.value} into Go struct field {kind}.{e.field} of type {wanted}'))
    if errors:
        raise invalid(kind, group, name, errors)
    return [f'unknown field "{p}"' for p in unknown] if mode == 'Warn' else []


# --- CEL: the subset the CRDs in use need -------------------------------------------------------
# The rules of every CRD the emulator serves are compiled at registration, so a rule outside this
# subset fails there, loudly (CelUnsupported), never silently passes. Semantics from
# https://github.com/google/cel-spec/blob/master/doc/langdef.md: `has(a.f)` tests presence,
# `&&`/`||` are commutative over errors (an error on one side is absorbed by a decisive other side).

class CelError(Exception):
    """A runtime error evaluating a rule, e.g. `no such key: x`."""


class CelUnsupported(ValueError):
    """A rule this emulator cannot evaluate (outside the subset)."""


CEL_TOKEN = re.compile(r"\s*(?:(\d+)|('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|([A-Za-z_]\w*)|(\|\||&&|==|!=|<=|>=|[<>!?:().,+\-\[\]]))")


def _cel_tokens(text: str) -> list[tuple[str, Any]]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = CEL_TOKEN.match(text, pos)
        if match is None:
            raise CelUnsupported(f'cannot parse CEL at {text[pos:]!r}')
        number, string, ident, op = match.groups()
        tokens.append(('num', int(number)) if number else ('str', string[1:-1]) if string else
                      ('id', ident) if ident else ('op', op))
        pos = match.end()
    return tokens


Expr = Callable[[Any], Any]


class _CelParser:
    """Recursive descent over CEL's grammar: ternary > || > && > relations > +,- > unary > member."""

    def __init__(self, text: str) -> None:
        self.tokens, self.pos = _cel_tokens(text), 0

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, Any]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise CelUnsupported(f'expected {value!r}, found {token}')
        self.pos += 1
        return token

    def accept(self, value: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == 'op' and token[1] == value:
            self.pos += 1
            return True
        return False

    def parse(self) -> Expr:
        expr = self.ternary()
        if self.peek() is not None:
            raise CelUnsupported(f'unexpected {self.peek()}')
        return expr

    def ternary(self) -> Expr:
        cond = self.disjunction()
        if not self.accept('?'):
            return cond
        then = self.disjunction()
        self.take(':')
        other = self.ternary()
        return lambda s: then(s) if _bool(cond(s)) else other(s)

    def disjunction(self) -> Expr:
        left = self.conjunction()
        while self.accept('||'):
            left = _logical(left, self.conjunction(), True)
        return left

    def conjunction(self) -> Expr:
        left = self.relation()
        while self.accept('&&'):
            left = _logical(left, self.relation(), False)
        return left

    def relation(self) -> Expr:
        left = self.additive()
        ops: dict[str, Callable[[Any, Any], bool]] = {'==': operator.eq, '!=': operator.ne, '<': operator.lt,
                                                      '<=': operator.le, '>': operator.gt, '>=': operator.ge}
        token = self.peek()
        if token is not None and token[0] == 'op' and token[1] in ops:
            self.pos += 1
            return _binary(ops[token[1]], left, self.additive())
        if token == ('id', 'in'):
            self.pos += 1
            return _binary(lambda a, b: a in b, left, self.additive())
        return left

    def additive(self) -> Expr:
        left = self.unary()
        while (token := self.peek()) is not None and token[0] == 'op' and token[1] in '+-' and len(token[1]) == 1:
            self.pos += 1
            right, sign = self.unary(), token[1]
            left = _binary(operator.add if sign == '+' else operator.sub, left, right)
        return left

    def unary(self) -> Expr:
        if self.accept('!'):
            inner = self.unary()
            return lambda s: not _bool(inner(s))
        if self.accept('-'):
            inner = self.unary()
            return lambda s: -inner(s)
        return self.member()

    def member(self) -> Expr:
        expr = self.primary()
        while True:
            if self.accept('.'):
                name = self.take()[1]
                if self.accept('('):
                    self.take(')')
                    if name != 'size':
                        raise CelUnsupported(f'method {name}() is not in the emulated CEL subset')
                    expr = _unary(len, expr)
                else:
                    operand, expr = expr, _unary(functools.partial(_select, name=name), expr)
                    expr.selection = (operand, name)  # type: ignore[attr-defined]  # for has()
            elif self.accept('['):
                index = self.ternary()
                self.take(']')
                expr = _binary(_index, expr, index)
            else:
                return expr

    def primary(self) -> Expr:
        kind, value = self.take()
        if kind in ('num', 'str'):
            return lambda s: value
        if kind == 'op' and value == '(':
            inner = self.ternary()
            self.take(')')
            return inner
        if kind == 'id' and value == 'has':
            self.take('(')
            target = self.member()
            self.take(')')
            return self._has(target)
        if kind == 'id' and value in ('true', 'false', 'null'):
            constant = {'true': True, 'false': False, 'null': None}[value]
            return lambda s: constant
        if kind == 'id' and value == 'self':
            return lambda s: s
        raise CelUnsupported(f'{value!r} is not in the emulated CEL subset')

    def _has(self, target: Expr) -> Expr:
        # has(a.f) takes a field selection: evaluate its operand and test the field's presence.
        selection = getattr(target, 'selection', None)
        if selection is None:
            raise CelUnsupported('has() needs a field selection')
        operand, name = selection
        return lambda s: isinstance(operand(s), dict) and name in operand(s)


def _unary(fn: Callable[[Any], Any], inner: Expr) -> Expr:
    return lambda s: fn(inner(s))


def _binary(fn: Callable[[Any, Any], Any], left: Expr, right: Expr) -> Expr:
    return lambda s: fn(left(s), right(s))


def _select(value: Any, name: str) -> Any:
    if not isinstance(value, dict):
        raise CelError(f'no such key: {name}')
    if name not in value:
        raise CelError(f'no such key: {name}')
    return value[name]


def _index(value: Any, index: Any) -> Any:
    try:
        return value[index]
    except (KeyError, IndexError, TypeError):
        raise CelError(f'no such key: {index}') from None


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise CelError('no matching overload')
    return value


def _logical(left: Expr, right: Expr, is_or: bool) -> Expr:
    def run(s: Any) -> bool:
        results, error = [], None
        for side in (left, right):
            try:
                value = _bool(side(s))
            except CelError as e:
                error = e
                continue
            if value is is_or:
                return is_or
            results.append(value)
        if error is not None:
            raise error
        return not is_or
    return run


@functools.cache
def cel_compile(rule: str) -> Expr:
    """A CEL rule as a function of `self`; CelUnsupported if outside the subset."""
    return _CelParser(rule).parse()


# --- the CRDs the emulator knows: the repo's own and the upstream reference copies ----------------

REPO = Path(__file__).resolve().parents[2]


class CrdLoader(yaml.CSafeLoader):
    """YAML 1.1 reads a bare `=` (an enum value upstream) as the obscure `value` type; it is a string."""


CrdLoader.add_constructor('tag:yaml.org,2002:value', lambda loader, node: loader.construct_scalar(node))


def upstream_dir() -> Path | None:
    """The upstream reference data (tests/conftest.py finds it the same way), or None if absent."""
    path = Path(os.environ.get('OBSERVATORY_UPSTREAM_DIR') or REPO.parent / 'shared' / 'upstream')
    return path if path.is_dir() else None


def load_crd(path: Path) -> Obj:
    return yaml.load(path.read_text(), Loader=CrdLoader)


@functools.cache
def compiled_crd(path: Path) -> tuple[Obj, dict[str, ResourceSchema]]:
    """A CRD file and its compiled served versions, once per process (the big upstream CRDs take
    ~0.4 s to parse and compile; emulators are made per test)."""
    crd = load_crd(path)
    return crd, {v['name']: crd_schema(v) for v in crd['spec']['versions'] if v.get('served', True)}


def known_crd_files() -> list[Path]:
    upstream = upstream_dir()
    return sorted((REPO / 'crds').glob('*.yaml')) + (sorted((upstream / 'crds').glob('*.yaml')) if upstream else [])
