"""mk/check_alert_routed.py (the kind e2e's last step) against a real Prometheus and Alertmanager.

Prometheus evaluates the rule Observatory renders for mk/e2e/absent-routed.yaml and sends the alert to
Alertmanager, whose routing tree names receivers the way prometheus-operator writes them for an
AlertmanagerConfig (`<namespace>/<config>/<receiver>`, pkg/alertmanager/amcfg.go makeNamespacedString).
The check passes when the alert reaches that receiver and fails, naming where it went, when it does not.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time

import pytest
import yaml
from chartlib import CHART_DIR
from observatory.local.net import free_port, get_json, is_up

REPO = CHART_DIR.parents[1]
_spec = importlib.util.spec_from_file_location("check_alert_routed", REPO / "mk" / "check_alert_routed.py")
check_alert_routed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_alert_routed)


@pytest.fixture(scope="module")
def rendered():
    out = subprocess.run([str(REPO / ".venv" / "bin" / "observatory"), "render", "-f", str(REPO / "mk" / "e2e" / "absent-routed.yaml")],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    return {d["kind"]: d for d in yaml.safe_load_all(out)}


def _wait_up(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not is_up(url):
        assert process.poll() is None, f"{url}: the process exited with {process.returncode}"
        assert time.monotonic() < deadline, f"{url} did not come up in {timeout:.0f}s"
        time.sleep(0.2)


@pytest.fixture
def monitoring(tmp_path, prometheus, alertmanager, rendered):
    """Prometheus with the rendered rules, sending to Alertmanager; `route(receiver)` sets where the
    alert of the rendered AlertRule goes."""
    processes = []
    am_port, prom_port = free_port(), free_port()

    def start(receiver: str) -> tuple[str, str]:
        amc = rendered["AlertmanagerConfig"]
        (matcher,) = amc["spec"]["route"]["matchers"]
        (tmp_path / "am.yml").write_text(yaml.safe_dump({
            "route": {"receiver": "null", "group_wait": "1s", "routes": [
                {"receiver": receiver, "matchers": [f'{matcher["name"]}="{matcher["value"]}"']}]},
            "receivers": [{"name": "null"}, {"name": receiver, "webhook_configs": [{"url": "http://127.0.0.1:9/"}]}]}))
        processes.append(subprocess.Popen(
            [str(alertmanager), f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'am'}",
             f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        (tmp_path / "rules.yml").write_text(yaml.safe_dump(rendered["PrometheusRule"]["spec"]))
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"evaluation_interval": "1s"}, "rule_files": [str(tmp_path / "rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]}}))
        processes.append(subprocess.Popen(
            [str(prometheus), f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             # Its first evaluation precedes the discovery of Alertmanager: resend soon, not after 1m.
             f"--web.listen-address=127.0.0.1:{prom_port}", "--rules.alert.resend-delay=1s"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        prom_url, am_url = f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}"
        _wait_up(am_url + "/-/ready", processes[0])
        _wait_up(prom_url + "/-/ready", processes[1])
        return prom_url, am_url

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


def _configs_file(tmp_path, rendered):
    path = tmp_path / "alertmanagerconfigs.json"
    path.write_text(json.dumps({"items": [rendered["AlertmanagerConfig"]]}))
    return path


def _alert(rendered) -> str:
    (group,) = rendered["PrometheusRule"]["spec"]["groups"]
    (rule,) = group["rules"]
    return rule["alert"]


def test_an_alert_routed_to_the_configs_receiver_passes(tmp_path, monitoring, rendered, capsys):
    amc = rendered["AlertmanagerConfig"]["metadata"]
    prom_url, am_url = monitoring(f"{amc['namespace']}/{amc['name']}/e2e-webhook")
    code = check_alert_routed.main([str(_configs_file(tmp_path, rendered)), _alert(rendered), prom_url, am_url,
                                    "--timeout", "120", "--interval", "0.5"])
    assert code == 0, capsys.readouterr().err
    assert f"routes it to {amc['namespace']}/{amc['name']}/e2e-webhook" in capsys.readouterr().out


def test_an_alert_routed_elsewhere_fails_naming_where_it_went(tmp_path, monitoring, rendered, capsys):
    prom_url, am_url = monitoring("some-other-team")
    deadline = time.monotonic() + 120
    while not check_alert_routed.routed_to(get_json(am_url + "/api/v2/alerts"), _alert(rendered)):
        assert time.monotonic() < deadline, "the alert never reached Alertmanager"
        time.sleep(0.5)
    code = check_alert_routed.main([str(_configs_file(tmp_path, rendered)), _alert(rendered), prom_url, am_url,
                                    "--timeout", "1", "--interval", "0.5"])
    assert code == 1
    assert "routed to ['some-other-team']" in capsys.readouterr().err
