"""Server-side apply and managedFields, after sigs.k8s.io/structured-merge-diff (SMD) as
kube-apiserver 1.29–1.33 uses it (k8s.io/apimachinery/pkg/util/managedfields).

A field set is a set of paths; a path is a tuple of fieldsV1 path elements: `f:<name>` (a field),
`k:{"name":"x"}` (an item of a `x-kubernetes-list-type: map` list, keys sorted), `v:<json>` (an
item of a `set` list). Leaves are scalars, atomic lists (the default list type) and atomic maps
(`x-kubernetes-map-type: atomic`); list-map items are members too. Fields without a schema
(preserve-unknown-fields) are deduced as SMD does: maps granular, lists atomic.

- Update (create, PUT, merge/JSON patches): the writer's manager takes every field it added or
  changed, from whoever owned it (SMD merge/update.go `Updater.Update`), no conflict.
- Apply: the config merges into the live object by list/map type; fields it changes that another
  manager owns are a 409 unless forced (then ownership moves); the applier owns exactly what it
  applied; fields it applied before and stopped applying are removed unless another manager owns
  them (`Updater.Apply`, `prune`). Messages as apiserver `internal/conflict.go`.
- The status subresource's fields are reset on main-resource writes and vice versa (the
  strategies' `GetResetFields`), so each only records its own part.

Approximations: a merged list-map keeps the applied items in applied order, then the live ones
the config does not name; version conversion of managed sets (one served version per kind here)
and `before-first-apply` upgrade of client-side-apply are not emulated.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import kmock

from .schema import Node

Obj = dict[str, Any]
Path = tuple[str, ...]
ITEM = object()  # the "value" of a list-map item as a member: items are compared by their fields
# Metadata SMD does not manage (apiserver managedfields/internal/stripmeta.go).
UNMANAGED_META = ('name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp',
                  'selfLink', 'managedFields', 'deletionTimestamp', 'deletionGracePeriodSeconds')


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(',', ':'), ensure_ascii=False)


def _child(node: Node | None, key: str) -> Node | None:
    if node is None:
        return None
    sub = node.props.get(key)
    return node.additional if sub is None and isinstance(node.additional, Node) else sub


def _list_type(node: Node | None) -> str:
    return node.list_type if node is not None and node.list_type in ('set', 'map') else 'atomic'


def _item_key(node: Node, item: Any) -> str:
    return 'k:' + _dumps({k: item.get(k) for k in node.list_keys if k in item}) if isinstance(item, dict) else 'v:' + _dumps(item)


def leaves(value: Any, node: Node | None, prefix: Path = (), out: dict[Path, Any] | None = None) -> dict[Path, Any]:
    """Member paths of `value` and the values there (ITEM for list-map items)."""
    out = {} if out is None else out
    if isinstance(value, dict) and value and not (node is not None and node.map_type == 'atomic'):
        for key, item in value.items():
            if item is not None:
                leaves(item, _child(node, key), prefix + (f'f:{key}',), out)
    elif isinstance(value, list) and _list_type(node) == 'set':
        for item in value:
            out[prefix + ('v:' + _dumps(item),)] = item
    elif isinstance(value, list) and _list_type(node) == 'map' and node is not None:
        for item in value:
            path = prefix + (_item_key(node, item),)
            out[path] = ITEM
            leaves(item, node.items, path, out)
    elif prefix:
        out[prefix] = value
    return out


def managed_view(obj: Obj, sub: str | None, status_subresource: bool) -> Obj:
    """The part of an object a write through `sub` manages: no type/identity metadata; with a
    status subresource, only status through /status and everything else through the resource."""
    view = {k: v for k, v in obj.items() if k not in ('apiVersion', 'kind', 'metadata')}
    meta = {k: v for k, v in (obj.get('metadata') or {}).items() if k not in UNMANAGED_META}
    if meta:
        view['metadata'] = meta
    if status_subresource and sub == 'status':
        return {'status': obj['status']} if 'status' in obj else {}
    if status_subresource:
        view.pop('status', None)
    return view


def merge(live: Any, config: Any, node: Node | None) -> Any:
    """The applied config merged into the live value by the schema's list and map types."""
    if isinstance(live, dict) and isinstance(config, dict) and not (node is not None and node.map_type == 'atomic'):
        result = dict(live)
        for key, value in config.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = merge(live.get(key), value, _child(node, key)) if key in live else copy.deepcopy(value)
        return result
    if isinstance(live, list) and isinstance(config, list) and _list_type(node) != 'atomic' and node is not None:
        by_key = {_item_key(node, item): item for item in live}
        applied = [_item_key(node, item) for item in config]
        merged = [merge(by_key[k], item, node.items) if k in by_key and _list_type(node) == 'map' else copy.deepcopy(item)
                  for k, item in zip(applied, config, strict=True)]
        return merged + [copy.deepcopy(item) for k, item in by_key.items() if k not in set(applied)]
    return copy.deepcopy(config)


def remove(obj: Any, path: Path) -> None:
    """Delete the member at `path` (a field, or a list item by key or value), and the lists and
    maps that leaves empty, as SMD's removingWalker does (it keeps no empty container)."""
    chain: list[Any] = [obj]
    for element in path[:-1]:
        chain.append(_step(chain[-1], element))
        if chain[-1] is None:
            return
    for depth in range(len(path) - 1, -1, -1):
        parent, last = chain[depth], path[depth]
        if last.startswith('f:') and isinstance(parent, dict):
            parent.pop(last[2:], None)
        elif isinstance(parent, list):
            parent[:] = [item for item in parent if not _matches(item, last)]
        if parent or depth == 0:
            return


def _matches(item: Any, element: str) -> bool:
    if element.startswith('v:'):
        return _dumps(item) == element[2:]
    keys = json.loads(element[2:])
    return isinstance(item, dict) and all(item.get(k) == v for k, v in keys.items())


def _step(value: Any, element: str) -> Any:
    if element.startswith('f:'):
        return value.get(element[2:]) if isinstance(value, dict) else None
    return next((item for item in value if _matches(item, element)), None) if isinstance(value, list) else None


# --- fieldsV1 ---------------------------------------------------------------------------------

def encode(paths: set[Path]) -> Obj:
    """A field set as fieldsV1 JSON: members with children carry `.`."""
    tree: Obj = {}
    for path in paths:
        node = tree
        for element in path:
            node = node.setdefault(element, {})
        node['.'] = {}

    def finish(node: Obj) -> Obj:
        children = {k: finish(v) for k, v in sorted(node.items()) if k != '.'}
        return {'.': {}, **children} if children and '.' in node else children
    return finish(tree)


def decode(fields: Obj, prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for element, children in fields.items():
        if element == '.':
            out.add(prefix)
        elif not children:
            out.add(prefix + (element,))
        else:
            out |= decode(children, prefix + (element,))
    return out


def path_string(path: Path) -> str:
    """SMD fieldpath.Path.String(): `.spec.containers[name="x"].image`, `.finalizers[="a"]`."""
    parts = []
    for element in path:
        if element.startswith('f:'):
            parts.append('.' + element[2:])
        elif element.startswith('k:'):
            parts.append('[' + ','.join(f'{k}={json.dumps(v)}' for k, v in json.loads(element[2:]).items()) + ']')
        else:
            parts.append(f'[={element[2:]}]')
    return ''.join(parts)


# --- managers ---------------------------------------------------------------------------------

Manager = tuple[str, str, str | None]  # (manager, operation, subresource)


def managers_of(obj: Obj | None) -> dict[Manager, tuple[set[Path], Obj]]:
    entries = ((obj or {}).get('metadata') or {}).get('managedFields') or []
    return {(e['manager'], e['operation'], e.get('subresource')): (decode(e.get('fieldsV1') or {}), e) for e in entries}


def entries_of(managers: dict[Manager, tuple[set[Path], Obj]]) -> list[Obj]:
    out = []
    for (manager, operation, sub), (paths, entry) in managers.items():
        if paths:
            fields = dict(entry, manager=manager, operation=operation, fieldsType='FieldsV1', fieldsV1=encode(paths))
            if sub:
                fields['subresource'] = sub
            out.append(fields)
    return out


def describe(key: Manager, entry: Obj) -> str:
    """printManager on SMD's manager identifier (which never holds the time; appliers no version)."""
    manager, operation, sub = key
    text = json.dumps(manager) + (f' with subresource {json.dumps(sub)}' if sub else '')
    return f"{text} using {entry['apiVersion']}" if operation == 'Update' else text


def conflict_error(conflicts: list[tuple[Manager, Obj, Path]]) -> kmock.KubernetesError:
    """409 Conflict as the apiserver's NewConflictError writes it."""
    causes = [{'reason': 'FieldManagerConflict', 'message': f'conflict with {describe(m, e)}', 'field': path_string(p)}
              for m, e, p in conflicts]
    if len(conflicts) == 1:
        (manager, entry, path), = conflicts
        message = f'Apply failed with 1 conflict: conflict with {describe(manager, entry)}: {path_string(path)}'
    else:
        lines = []
        for name in sorted({describe(m, e) for m, e, _ in conflicts}):
            lines.append(f'conflicts with {name}:')
            lines += [f'- {path_string(p)}' for m, e, p in conflicts if describe(m, e) == name]
        message = f'Apply failed with {len(conflicts)} conflicts: ' + '\n'.join(lines)
    return kmock.KubernetesError(status=409, reason='Conflict', message=message, details={'causes': causes})


def _changed(old: dict[Path, Any], new: dict[Path, Any]) -> tuple[set[Path], set[Path]]:
    """(added or modified, removed) member paths between two leaf maps."""
    changed = {p for p, v in new.items() if p not in old or (v is not ITEM and old[p] != v)}
    return changed, set(old) - set(new)


def _stamp(manager: Manager, api_version: str, now: str) -> Obj:
    return {'manager': manager[0], 'operation': manager[1], 'apiVersion': api_version, 'time': now}


def record_update(old: Obj | None, new: Obj, node: Node | None, manager: str, sub: str | None,
                  status_subresource: bool, now: str) -> list[Obj]:
    """managedFields after an Update-operation write of `new` over `old` (None: a create)."""
    managers = managers_of(old)
    before = leaves(managed_view(old, sub, status_subresource), node) if old is not None else {}
    changed, removed = _changed(before, leaves(managed_view(new, sub, status_subresource), node))
    for paths, _ in managers.values():
        paths -= changed | removed
    key: Manager = (manager, 'Update', sub)
    owned, entry = managers.get(key, (set(), {}))
    managers[key] = (owned | changed, entry if changed <= owned and entry else _stamp(key, new['apiVersion'], now))
    return entries_of(managers)


def apply(live: Obj, config: Obj, node: Node | None, manager: str, force: bool, sub: str | None,
          status_subresource: bool, now: str) -> tuple[Obj, list[Obj]]:
    """(the object to store, its managedFields) for an apply of `config` onto `live`."""
    managers = managers_of(live)
    key: Manager = (manager, 'Apply', sub)
    applied = set(leaves(managed_view(config, sub, status_subresource), node))
    # The emulator's update then resets what this write may not change (status or the rest).
    merged = merge(live, {k: v for k, v in config.items() if k not in ('apiVersion', 'kind')}, node)
    changed, removed = _changed(leaves(managed_view(live, sub, status_subresource), node),
                                leaves(managed_view(merged, sub, status_subresource), node))
    conflicts = [(other, entry, path) for other, (paths, entry) in managers.items() if other != key
                 for path in sorted(paths & changed)]
    if conflicts and not force:
        raise conflict_error(conflicts)
    for paths, _ in managers.values():
        paths -= changed | removed
    previous, entry = managers.get(key, (set(), {}))
    managers[key] = (applied, entry if applied == previous and entry else
                     _stamp(key, config.get('apiVersion') or live['apiVersion'], now))
    others = set().union(*(paths for other, (paths, _) in managers.items() if other != key))
    removed_paths: list[Path] = []
    for path in sorted(previous - applied, key=len):  # a removed item takes its fields along
        if not any(owned[:len(path)] == path for owned in others) and not any(path[:len(r)] == r for r in removed_paths):
            remove(merged, path)
            removed_paths.append(path)
    return merged, entries_of(managers)
