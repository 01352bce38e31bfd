"""Helpers shared by the tests/local modules (a unique name: rootdir-style imports collide on equal names)."""

from __future__ import annotations

import os
from pathlib import Path

from observatory.local.net import port_in_use

REPO = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes (its parent reaps it); /proc says which.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def assert_stopped(pids: dict[str, int], ports: dict[str, list[int]]) -> None:
    assert [name for name, pid in pids.items() if name != "observatory" and alive(pid)] == []
    assert [(name, p) for name, ps in ports.items() for p in ps if port_in_use(p)] == []
