"""One local stack (Phoenix, Prometheus, Alertmanager, receiver) for the whole tests/local session.

Phoenix takes 15-60 s to start, so it starts once; the teardown asserts that stopping it leaves no
process and no listening port behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from localhelpers import REPO, assert_stopped
from observatory.local.stack import LocalStack, Settings


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory, prometheus, alertmanager) -> LocalStack:
    settings = Settings(files=(str(REPO / "examples"),), data_dir=tmp_path_factory.mktemp("local-stack"), interval="2s")
    stack = LocalStack(settings, log=print)
    stack.start()
    try:
        yield stack
    finally:
        info = stack.info
        stack.stop()
    assert_stopped(info.pids, info.ports)
    assert not (Path(info.data_dir) / "stack.json").exists()
