"""The local stack tells the user where things are, and says what it waits for.

Every address `local up` and the demo print is fetched from the real processes (Debian's
Prometheus and Alertmanager, Phoenix), every path is checked on disk; the notes are checked too:
Debian's Prometheus answers `/alerts` with 404 and its Alertmanager serves no web application."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from localhelpers import REPO
from observatory.local.guide import places
from observatory.local.net import free_port
from observatory.local.stack import (
    STACK_FILE,
    LocalError,
    LocalStack,
    Process,
    Settings,
    StackInfo,
)


def status(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, ""


def test_every_address_and_file_printed_exists(local_stack) -> None:
    info = local_stack.info
    found = places(info)
    assert {p.what for p in found} >= {"Phoenix", "Prometheus", "alerts", "rules", "Alertmanager", "notifications",
                                       "phoenix log", "prometheus log", "alertmanager log", "dashboards"}
    for place in found:
        if place.where.startswith("http://"):
            assert status(place.where)[0] == 200, place
        else:
            assert Path(place.where).exists(), place
    # Why the notes say what they say.
    assert status(info.urls["prometheus"] + "/alerts")[0] == 404
    assert "does not include a web\n        application" in status(info.urls["alertmanager"] + "/")[1]
    # The dashboards a stack of the examples gets, as files any Grafana imports.
    dashboards = [json.loads(Path(path).read_text()) for path in info.dashboards]
    assert sorted(d["title"] for d in dashboards) == sorted(
        f"{kind} · {namespace}" for namespace in ("team-a", "team-b") for kind in ("SLOs", "LLM overview"))


def test_a_wait_for_a_slow_process_says_what_it_waits_for(tmp_path) -> None:
    lines: list[str] = []
    # The progress line is due after 5 s; a timeout well past it, so that a pause of a busy machine
    # cannot skip it.
    stack = LocalStack(Settings(files=(), data_dir=tmp_path, ready_timeout=15), log=lines.append)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        port = free_port()  # nothing listens: never ready
        stack.processes.append(Process("sleeper", sleeper, f"http://127.0.0.1:{port}/-/ready", [port], tmp_path / "x.log"))
        with pytest.raises(LocalError, match="not ready after 15 s: sleeper"):
            stack._wait_ready()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert lines and all(line.startswith("waiting for sleeper (") for line in lines)
    assert f"logs in {tmp_path / 'logs'}" in lines[0]


def test_load_reports_progress_while_it_runs(tmp_path) -> None:
    targets = tmp_path / "targets"
    targets.mkdir()
    info = StackInfo(data_dir=str(tmp_path), urls={}, pids={}, ports={}, targets_dir=str(targets), projects={}, redaction={})
    (tmp_path / STACK_FILE).write_text(json.dumps(vars(info)))
    result = subprocess.run([sys.executable, "-m", "observatory", "local", "load", "--data-dir", str(tmp_path),
                             "--duration", "4", "--progress", "1", "--rps", "20"],
                            capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stdout.splitlines() if " s: " in line and "requests" in line]
    assert progress, result.stdout
    assert result.stdout.splitlines()[-1].startswith("sent ")


def test_load_refuses_a_progress_interval_that_is_not_positive(tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "observatory", "local", "load", "--data-dir", str(tmp_path),
                             "--progress", "0"], capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert result.returncode == 2 and "--progress: '0': expected a positive number of seconds" in result.stderr
