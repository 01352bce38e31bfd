"""docs/reference.md: every field of every kind, generated from the CRD schemas (so from the models).

The rows come from the same structural schemas `kubectl explain` reads (crdgen), so the reference and
the cluster say the same thing; each kind shows one complete example from examples/, which the test
suite validates and renders. `observatory reference --out docs/reference.md` writes it; `--check`
(a test) fails when it is stale.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .crdgen import NAMES, crd
from .models import CLUSTER_SCOPED, KINDS
from .models.common import API_VERSION, DURATION_PATTERN

REPO = Path(__file__).resolve().parents[2]
# Kinds in the order a newcomer meets them, each with the example shown for it.
EXAMPLES = {
    "AlertRule": "examples/alertrules/llm-error-rate.yaml",
    "SLO": "examples/slos/llm-availability.yaml",
    "ObservabilityStack": "examples/stacks/team-a-dedicated.yaml",
    "ObservabilityStackClass": "examples/stackclasses/default.yaml",
}


def reference() -> str:
    """The whole of docs/reference.md."""
    parts = [
        "# Field reference\n",
        "<!-- Generated from the pydantic models (operator/observatory/refdoc.py): edit the models, then run\n"
        "     `make crds`. A test fails when this file is stale. -->\n",
        f"Every resource is `apiVersion: {API_VERSION}`. Durations are Prometheus durations: whole numbers with "
        "units y, w, d, h, m, s, ms, each unit once and the largest first (`5m`, `1h30m`). Numbers are written "
        "without quotes. `observatory validate -f FILE` checks a file offline and names the field of every error.\n",
        "".join(f"- [{kind}](#{kind.lower()})\n" for kind in EXAMPLES),
    ]
    for kind in EXAMPLES:
        parts.append(_kind_section(kind))
    return "\n".join(parts)


def _kind_section(kind: str) -> str:
    schema = crd(kind, KINDS[kind])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    scope = "cluster-scoped" if kind in CLUSTER_SCOPED else "namespaced"
    example = (REPO / EXAMPLES[kind]).read_text()
    rows = "".join(_row(path, node, required) for path, node, required in _fields(schema, ""))
    return (f"## {kind}\n\n{schema['description']} ({scope}; `kubectl get {NAMES[kind].plural}`, short names "
            f"{', '.join(f'`{n}`' for n in NAMES[kind].short_names)})\n\n"
            f"Example (`{EXAMPLES[kind]}`):\n\n```yaml\n{example.rstrip()}\n```\n\n"
            "| field | type | required / default | bounds | description |\n|---|---|---|---|---|\n" + rows)


def _fields(node: dict[str, Any], prefix: str) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(path, schema node, required) of every field under spec and status, depth first."""
    required = set(node.get("required", ()))
    for name, child in node.get("properties", {}).items():
        if not prefix and name not in ("spec", "status"):
            continue
        path = f"{prefix}{name}"
        yield path, child, name in required
        yield from _nested(child, path)


def _nested(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any], bool]]:
    if "properties" in node:
        yield from _fields(node, f"{path}.")
    elif isinstance(node.get("items"), dict):
        yield from _nested(node["items"], f"{path}[]")
    elif isinstance(node.get("additionalProperties"), dict):
        yield from _nested(node["additionalProperties"], f"{path}.<key>")


def _type(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return "any (free-form)"
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    if node.get("pattern") == DURATION_PATTERN:
        return "duration"
    if node.get("type") == "array":
        return f"list of {_type(node.get('items', {}))}"
    if node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map of {_type(node['additionalProperties'])}"
    return str(node.get("type", "any"))


def _bounds(node: dict[str, Any]) -> str:
    out = []
    for key, word in (("minimum", ">"), ("maximum", "<")):
        if key in node:
            exclusive = node.get(f"exclusive{key[0].upper()}{key[1:]}")
            out.append(f"{word}{'' if exclusive else '='} {node[key]:g}")
    for key, word in (("minLength", "length ≥"), ("maxLength", "length ≤"), ("minItems", "items ≥"),
                      ("maxItems", "items ≤")):
        if key in node:
            out.append(f"{word} {node[key]}")
    if "pattern" in node and node["pattern"] != DURATION_PATTERN:
        out.append(f"matches `{node['pattern']}`")
    return ", ".join(out)


def _row(path: str, node: dict[str, Any], required: bool) -> str:
    default = "required" if required else f"`{json.dumps(node['default'])}`" if "default" in node else ""
    cells = [f"`{path}`", _type(node), default, _bounds(node), node.get("description", "")]
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |\n"
