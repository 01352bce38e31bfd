"""Shared fixtures: repo paths, upstream reference data, and the external binaries tests run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"

# The pinned helm/kubectl from `make setup` must win over any system copy, also for a plain
# `pytest` run outside make and for every subprocess a test starts.
os.environ["PATH"] = os.pathsep.join([str(TOOLS_BIN), os.environ.get("PATH", "")])


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def upstream_dir() -> Path:
    path = Path(os.environ.get("OBSERVATORY_UPSTREAM_DIR") or REPO_ROOT.parent / "shared" / "upstream")
    if not path.is_dir():
        pytest.skip(f"upstream reference data not found at {path}; set OBSERVATORY_UPSTREAM_DIR")
    return path


def _binary_fixture(name: str, *candidates: str):
    # Missing binaries fail rather than skip: `make setup` installs all of them, so absence is a
    # broken setup that must not turn into a green run.
    @pytest.fixture(scope="session", name=name)
    def fixture() -> Path:
        for candidate in candidates or (name,):
            found = shutil.which(candidate)
            if found:
                return Path(found)
        pytest.fail(f"{' or '.join(candidates or (name,))} not found on PATH; run `make setup`",
                    pytrace=False)

    return fixture


promtool = _binary_fixture("promtool")
prometheus = _binary_fixture("prometheus")
# Debian names the Alertmanager binary prometheus-alertmanager.
alertmanager = _binary_fixture("alertmanager", "prometheus-alertmanager", "alertmanager")
amtool = _binary_fixture("amtool")
helm = _binary_fixture("helm")
helm4 = _binary_fixture("helm4")
kubectl = _binary_fixture("kubectl")


LOCAL_TESTS = REPO_ROOT / "tests" / "local"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """For `make test`'s two workers (pytest-xdist, `--dist loadgroup`): a file's tests share a
    worker (and its module fixtures), and every test of the local stack one worker, as the stack is
    session-scoped and takes ~20 s to start. Those go first: the longest group, mostly waiting on
    Prometheus' real time while the other worker computes."""
    for item in items:
        path = Path(item.fspath)
        local = LOCAL_TESTS in path.parents
        item.add_marker(pytest.mark.xdist_group("local-stack" if local else str(path.relative_to(REPO_ROOT))))
    items.sort(key=lambda item: LOCAL_TESTS not in Path(item.fspath).parents)
