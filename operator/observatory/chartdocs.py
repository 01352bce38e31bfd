"""The configuration table of the operator chart, generated from its values.schema.json.

docs/install.md carries the table between two markers; a test keeps it identical to
`values_table()` (UPDATE_GOLDEN=1 rewrites it), so the documented options are exactly the ones
the schema accepts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

TABLE_START = "<!-- values-table:start (generated from charts/observatory/values.schema.json) -->"
TABLE_END = "<!-- values-table:end -->"
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


def with_table(document: str, table: str) -> str:
    """`document` with the text between the table markers replaced by `table`."""
    head, found, rest = document.partition(TABLE_START)
    _, found_end, tail = rest.partition(TABLE_END)
    if not (found and found_end):
        raise ValueError(f"markers {TABLE_START!r} … {TABLE_END!r} not found")
    return f"{head}{TABLE_START}\n{table}{TABLE_END}{tail}"
