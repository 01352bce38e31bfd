"""Placeholder Secrets for every Secret the given resources reference, as YAML for `kubectl apply -f -`.

For the kind e2e only: prometheus-operator skips an AlertmanagerConfig whose referenced Secret or key
is missing, so the examples' routing needs them. Which fields reference a Secret, and which keys, comes
from the models (observatory.chartdocs.secret_fields, the same walk docs/install.md's table is made
from). Every value is an unreachable URL: valid wherever Alertmanager wants a URL, inert elsewhere.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from observatory.chartdocs import secret_fields
from observatory.models import KINDS

PLACEHOLDER = "http://127.0.0.1:9/observatory-e2e"


def _at(node: Any, parts: list[str]) -> Iterator[dict[str, Any]]:
    if not parts:
        if isinstance(node, dict):
            yield node
        return
    key, listed = parts[0].removesuffix("[]"), parts[0].endswith("[]")
    value = node.get(key) if isinstance(node, dict) else None
    for item in (value or []) if listed else ([value] if value is not None else []):
        yield from _at(item, parts[1:])


def referenced(document: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(namespace, Secret name, key) of every Secret reference in `document`."""
    model = KINDS.get(document.get("kind", ""))
    if model is None:
        return
    namespace = document["metadata"].get("namespace", "default")
    for path, reference, _ in secret_fields(model.model_fields["spec"].annotation):
        for ref in _at(document, path.split(".")):
            for name, info in reference.model_fields.items():
                if name != "name":
                    yield namespace, ref["name"], ref.get(info.alias or name, info.default)


def secrets(paths: list[Path]) -> list[dict[str, Any]]:
    keys: dict[tuple[str, str], set[str]] = {}
    for path in paths:
        for file in sorted(path.rglob("*.yaml")) if path.is_dir() else [path]:
            for document in yaml.safe_load_all(file.read_text()):
                for namespace, name, key in referenced(document or {}):
                    keys.setdefault((namespace, name), set()).add(key)
    return [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
             "stringData": {key: PLACEHOLDER for key in sorted(names)}} for (namespace, name), names in sorted(keys.items())]


if __name__ == "__main__":
    print(yaml.safe_dump_all(secrets([Path(p) for p in sys.argv[1:]]), sort_keys=False), end="")
