"""`observatory local up` as a user runs it: a real process tree, stopped by a signal."""

from __future__ import annotations

import json
import signal
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

from localhelpers import REPO, alive, assert_stopped
from observatory.local.amconfig import RECEIVER_HEADER
from observatory.local.net import get_json
from observatory.local.receiver import LocalReceiver, read_notifications


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 300) -> dict:  # the stack itself waits up to 300 s
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, f"{path} not written within {timeout} s"
        time.sleep(0.2)
    return json.loads(path.read_text())


def test_up_serves_the_compiled_objects_and_stops_cleanly_on_sigint(tmp_path, prometheus, alertmanager) -> None:
    data = tmp_path / "data"
    process = subprocess.Popen([sys.executable, "-m", "observatory", "local", "up", "-f", str(REPO / "examples"),
                                "--data-dir", str(data), "--without", "phoenix"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        info = _wait_for(data / "stack.json", process)
        assert set(info["pids"]) == {"observatory", "prometheus", "alertmanager"}
        assert all(alive(pid) for pid in info["pids"].values())
        prometheus_url, alertmanager_url = info["urls"]["prometheus"], info["urls"]["alertmanager"]
        assert prometheus_url.startswith("http://127.0.0.1:") and alertmanager_url.startswith("http://127.0.0.1:")
        # Prometheus loaded every generated rule file and points at the local Alertmanager.
        groups = get_json(f"{prometheus_url}/api/v1/rules")["data"]["groups"]
        assert {g["file"] for g in groups} == set(info["rule_files"])
        assert any(r["name"] == "SLOErrorBudgetBurnPage" for g in groups for r in g["rules"])
        assert max(g["interval"] for g in groups) == 2  # long group intervals capped to --interval
        # Alertmanager runs the converted routes.
        status = get_json(f"{alertmanager_url}/api/v2/status")
        assert "team-a/slo-llm-availability/oncall" in status["config"]["original"]
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "local stack stopped" in output
    # Where things are: the classic UI's pages, the Alertmanager API (no web UI), the logs.
    assert f"{prometheus_url}/classic/alerts" in output and f"{alertmanager_url}/api/v2/alerts" in output
    assert str(data.resolve() / "logs" / "prometheus.log") in output
    assert_stopped(info["pids"], info["ports"])
    assert not alive(info["pids"]["observatory"])
    assert not (data / "stack.json").exists()


def test_receiver_takes_alertmanager_email_over_smtp(tmp_path) -> None:
    receiver = LocalReceiver(tmp_path / "notifications.jsonl")
    receiver.start()
    try:
        message = EmailMessage()
        message["Subject"] = "[FIRING:1] LlmDailyBudget critical (team-a llm-daily-budget)"
        message["From"], message["To"] = "observatory@localhost", "finops@example.com"
        message[RECEIVER_HEADER] = "team-a/alertrule-llm-daily-budget/finops"
        message.set_content("spend above budget\n.\nwith a dot line")
        host, port = receiver.smtp_hostport.split(":")
        with smtplib.SMTP(host, int(port), timeout=10) as smtp:
            smtp.send_message(message)
        [notification] = read_notifications(receiver.url)
    finally:
        receiver.stop()
    assert (notification.kind, notification.receiver, notification.status) == \
        ("email", "team-a/alertrule-llm-daily-budget/finops", "firing")
    assert notification.mentions("LlmDailyBudget") and not notification.mentions("LlmDaily")
    assert json.loads((tmp_path / "notifications.jsonl").read_text())["receiver"] == notification.receiver


def test_up_refuses_resources_that_do_not_compile_and_load_needs_a_running_stack(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: observatory.dev/v1alpha1\nkind: AlertRule\nmetadata: {name: x, namespace: a}\n"
                   "spec: {severity: loud, errorRate: {threshold: 0.05}}\n")
    up = subprocess.run([sys.executable, "-m", "observatory", "local", "up", "-f", str(bad), "--data-dir", str(tmp_path)],
                        capture_output=True, text=True, timeout=60, check=False)
    assert up.returncode == 1
    assert "the resources do not compile" in up.stderr and "AlertRule/a/x: spec.severity" in up.stderr
    assert not (tmp_path / "logs").exists()  # nothing was started
    load = subprocess.run([sys.executable, "-m", "observatory", "local", "load", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert load.returncode == 1 and "no local stack is running" in load.stderr
