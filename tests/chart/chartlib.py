"""Rendering charts/observatory with the real helm binary."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / "observatory"
ALL_VALUES = Path(__file__).resolve().parent / "all-values.yaml"
RELEASE_NAMESPACE = "observatory-system"


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=60, check=False)


def template(helm: Path, *args: str) -> list[dict]:
    """Manifests `helm template` renders for the chart with extra `args`; fails on a helm error."""
    result = run_helm(helm, "template", "observatory", str(CHART_DIR), "--namespace", RELEASE_NAMESPACE, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(manifests: list[dict], kind: str) -> list[dict]:
    return [m for m in manifests if m["kind"] == kind]


def render_notes(helm: Path, workdir: Path, *args: str) -> str:
    """NOTES.txt as `helm install` would print it, without a cluster.

    `helm install --dry-run` needs an API server; a copy of the chart renders the same template
    through `tpl` inside an ordinary manifest instead.
    """
    chart = workdir / "observatory"
    shutil.copytree(CHART_DIR, chart)
    (chart / "NOTES.render").write_text((chart / "templates" / "NOTES.txt").read_text())
    (chart / "templates" / "notes-render.yaml").write_text('notes: {{ tpl (.Files.Get "NOTES.render") . | toJson }}\n')
    result = run_helm(helm, "template", "observatory", str(chart), "--namespace", RELEASE_NAMESPACE,
                      "--show-only", "templates/notes-render.yaml", *args)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["notes"]
