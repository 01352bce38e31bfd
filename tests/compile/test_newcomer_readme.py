"""The README's commands are tests: its files written where it says, its CLI examples run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
# A paragraph starting with `path.yaml` and ending in a colon, then the file's YAML block.
FILE_BLOCK = re.compile(r"^`(?P<path>[\w./-]+\.yaml)`(?:(?!```).)*?:\n\n```yaml\n(?P<body>.*?)```", re.S | re.M)
SH_BLOCK = re.compile(r"^```sh\n(?P<body>.*?)```", re.S | re.M)


def commands() -> list[str]:
    return [line for block in SH_BLOCK.finditer(README) for line in block["body"].splitlines()
            if line.startswith(("observatory ", ".venv/bin/observatory "))]


def test_the_readme_files_and_cli_examples_work_as_written(tmp_path: Path) -> None:
    files = {m["path"]: m["body"] for m in FILE_BLOCK.finditer(README)}
    assert set(files) >= {"policies/alerts.yaml", "policies/stack.yaml", "tests/alerts.test.yaml", "policies/class.yaml"}
    for path, body in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(body)
    # `observatory` and `.venv/bin/observatory` as the README names them, both this checkout's CLI.
    shim = tmp_path / ".venv" / "bin" / "observatory"
    shim.parent.mkdir(parents=True)
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m observatory "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(REPO / "operator"), os.environ.get("PYTHONPATH", "")])}
    ran = commands()
    assert len(ran) >= 6, ran
    outputs = {}
    for command in ran:
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        assert "warning" not in result.stderr, f"{command}\n{result.stderr}"
        outputs[command] = result.stdout
    assert "2 passed, 0 failed" in outputs[".venv/bin/observatory test -f policies/ tests/"]
