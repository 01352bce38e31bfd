"""Phoenix on one machine: its own virtualenv (it pins libraries below what the operator needs),
the environment it runs with, and reading traces back over its REST API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .net import get_json

# Pinned so that every machine runs the Phoenix the tests were written against.
PHOENIX_REQUIREMENT = "arize-phoenix==20.26.1"
STAMP = ".observatory-phoenix"


def venv_path() -> Path:
    """`.venv-phoenix` beside the operator's virtualenv (the repository root under `make`)."""
    override = os.environ.get("OBSERVATORY_PHOENIX_VENV")
    return Path(override) if override else Path(sys.prefix).parent / ".venv-phoenix"


def phoenix_binary(venv: Path) -> Path:
    return venv / "bin" / "phoenix"


def is_ready(venv: Path) -> bool:
    stamp = venv / STAMP
    return phoenix_binary(venv).exists() and stamp.is_file() and stamp.read_text().strip() == PHOENIX_REQUIREMENT


def _uv() -> str | None:
    return shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


def ensure_venv(venv: Path, log: Callable[[str], None] = print) -> bool:
    """Create the Phoenix virtualenv unless it is already complete; True when it was (re)created.

    uv installs Phoenix's ~160 packages in seconds where pip takes minutes; without a uv on PATH it
    is bootstrapped into the new venv with pip first.
    """
    if is_ready(venv):
        return False
    if venv.exists():  # half-made (interrupted) or an older pin: start over
        shutil.rmtree(venv)
    run = _run_logged
    uv = _uv()
    if uv:
        run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
    else:
        run([sys.executable, "-m", "venv", str(venv)])
        run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "uv"])
        uv = str(venv / "bin" / "uv")
    log(f"installing {PHOENIX_REQUIREMENT} into {venv}")
    run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), PHOENIX_REQUIREMENT])
    (venv / STAMP).write_text(PHOENIX_REQUIREMENT + "\n")
    return True


def _run_logged(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr[-2000:]}")


def server_env(working_dir: Path, port: int, grpc_port: int) -> dict[str, str]:
    """Phoenix bound to 127.0.0.1, offline (no telemetry, downloads or external docs), data in `working_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOENIX_")}
    # Let Python cache bytecode: Phoenix imports ~14 s of modules, and later starts reuse the cache.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update({
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_WORKING_DIR": str(working_dir),
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        "PHOENIX_ALLOWED_SANDBOX_PROVIDERS": "NONE",
        "PHOENIX_LOG_SQL": "false",
    })
    return env


class PhoenixClient:
    """The parts of Phoenix's REST API the demo and notebooks read."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            body = get_json(f"{self.url}{path}", {**params, "limit": 1000, **({"cursor": cursor} if cursor else {})})
            yield from body["data"]
            cursor = body.get("next_cursor")
            if not cursor:
                return

    def projects(self) -> list[str]:
        return [p["name"] for p in self._pages("/v1/projects", {})]

    def spans(self, project: str) -> list[dict[str, Any]]:
        if project not in self.projects():
            return []
        return list(self._pages(f"/v1/projects/{project}/spans", {}))

    def trace_count(self, project: str) -> int:
        if project not in self.projects():
            return 0
        return sum(1 for _ in self._pages(f"/v1/projects/{project}/traces", {}))
