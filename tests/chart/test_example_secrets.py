"""mk/example_secrets.py creates every Secret key the examples' rendered AlertmanagerConfigs read:
prometheus-operator skips an AlertmanagerConfig whose Secret or key is missing."""

from __future__ import annotations

import importlib.util
import subprocess

import yaml
from chartlib import CHART_DIR

REPO = CHART_DIR.parents[1]
_spec = importlib.util.spec_from_file_location("example_secrets", REPO / "mk" / "example_secrets.py")
example_secrets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example_secrets)
SOURCES = [REPO / "examples" / "alertrules", REPO / "examples" / "slos", REPO / "mk" / "e2e"]


def _key_refs(node, found: set[tuple[str, str]]) -> set[tuple[str, str]]:
    if isinstance(node, dict):
        if set(node) == {"name", "key"}:
            found.add((node["name"], node["key"]))
        for value in node.values():
            _key_refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _key_refs(value, found)
    return found


def test_every_secret_key_a_rendered_alertmanagerconfig_reads_is_created():
    out = subprocess.run([str(REPO / ".venv" / "bin" / "observatory"), "render", "-f", *map(str, SOURCES)],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    needed = {(d["metadata"]["namespace"], name, key) for d in yaml.safe_load_all(out) if d["kind"] == "AlertmanagerConfig"
              for name, key in _key_refs(d["spec"], set())}
    created = {(s["metadata"]["namespace"], s["metadata"]["name"], key)
               for s in example_secrets.secrets(SOURCES) for key in s["stringData"]}
    assert needed and needed <= created, needed - created
