"""The values schemas of a chart on the operator's filesystem (a directory or a packaged .tgz).

The compile core checks a tenant's allowed values against them (compile/stackclass.py) for a clear
error naming the field; a chart only reachable through a repository is not read here, and helm still
checks the merged values against its schemas at install.
"""

from __future__ import annotations

import functools
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import yaml

SCHEMA, CHART = "values.schema.json", "Chart.yaml"


def chart_schemas(path: str | None) -> dict[str, dict[str, Any]]:
    """"" → the chart's values schema, alias → each bundled subchart's that has one; {} when there are none
    or `path` is not a readable local chart."""
    if not path:
        return {}
    try:
        return _read(os.path.abspath(path), os.stat(path).st_mtime_ns)
    except (OSError, ValueError, tarfile.TarError, yaml.YAMLError):
        return {}


@functools.lru_cache(maxsize=32)
def _read(path: str, _mtime: int) -> dict[str, dict[str, Any]]:
    files = _tgz_files(path) if path.endswith((".tgz", ".tar.gz")) else _dir_files(Path(path))
    chart = yaml.safe_load(files.get(CHART) or "{}") or {}
    aliases = {d.get("name"): d.get("alias") or d.get("name") for d in chart.get("dependencies") or []}
    out = {"": json.loads(files[SCHEMA])} if SCHEMA in files else {}
    for name, alias in aliases.items():
        text = files.get(f"charts/{name}/{SCHEMA}")
        if text:
            out[alias] = json.loads(text)
    return out


def _tgz_files(path: str) -> dict[str, str]:
    """The chart's own and its subcharts' Chart.yaml and schema files, paths relative to the chart."""
    out = {}
    with tarfile.open(path, "r:gz") as archive:
        for member in archive.getmembers():
            relative = member.name.partition("/")[2]
            if member.isfile() and relative.rpartition("/")[2] in (SCHEMA, CHART) and relative.count("/") in (0, 2):
                out[relative] = archive.extractfile(member).read().decode()
    return out


def _dir_files(root: Path) -> dict[str, str]:
    candidates = [root / CHART, root / SCHEMA, *root.glob(f"charts/*/{SCHEMA}")]
    return {str(p.relative_to(root)): p.read_text() for p in candidates if p.is_file()}
