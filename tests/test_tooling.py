"""The external binaries that `make setup` installs run and are the versions the tests rely on."""

from __future__ import annotations

import re
import subprocess

import pytest


@pytest.mark.parametrize(
    ("tool", "args", "expected"),
    [
        ("helm", ["version", "--short"], r"^v3\.17\.3\+"),
        ("helm4", ["version", "--short"], r"^v4\.\d+\.\d+\+"),
        ("kubectl", ["version", "--client"], r"^Client Version: v1\.31\."),
        ("promtool", ["--version"], r"^promtool, version 2\."),
        ("prometheus", ["--version"], r"^prometheus, version 2\."),
        ("alertmanager", ["--version"], r"^alertmanager, version 0\."),
        ("amtool", ["--version"], r"^amtool, version 0\."),
    ],
)
def test_binary_reports_expected_version(request, repo_root, tool, args, expected):
    binary = request.getfixturevalue(tool)
    if tool in ("helm", "helm4", "kubectl"):
        assert binary.parent == repo_root / ".tools" / "bin", f"{tool} resolved to {binary}"
    result = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=True)
    # Prometheus tools print their version to stderr in some releases.
    output = (result.stdout + result.stderr).strip()
    assert re.search(expected, output, re.MULTILINE), f"{tool} {' '.join(args)} printed: {output}"
