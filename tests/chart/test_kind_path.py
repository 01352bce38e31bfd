"""The kind path (mk/kind.mk): fails fast without Docker; its Prometheus check works against HTTP."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from chartlib import CHART_DIR

REPO = CHART_DIR.parents[1]
TARGETS = ["kind-up", "deploy", "apply-examples", "e2e", "kind-down"]
NO_DOCKER = "needs a Docker engine; not available on this machine"

_spec = importlib.util.spec_from_file_location("check_rules_loaded", REPO / "mk" / "check_rules_loaded.py")
check_rules_loaded = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_rules_loaded)


def make(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    result = subprocess.run(["make", "--no-print-directory", "-f", "mk/kind.mk", *args], cwd=REPO, check=False,
                            capture_output=True, text=True, timeout=30)
    return result, time.monotonic() - start


@pytest.mark.parametrize("target", TARGETS)
def test_targets_fail_fast_without_docker(target):
    result, seconds = make(target, "DOCKER=/nonexistent/docker")
    assert result.returncode != 0
    assert seconds < 5
    assert NO_DOCKER in result.stderr
    assert "Traceback" not in result.stderr


def _docker_engine_available() -> bool:
    docker = shutil.which("docker")
    return bool(docker) and subprocess.run([docker, "info"], capture_output=True, timeout=20, check=False).returncode == 0


@pytest.mark.skipif(_docker_engine_available(), reason="this machine has a Docker engine")
def test_kind_up_fails_fast_on_this_machine():
    result, seconds = make("kind-up")
    assert result.returncode != 0 and seconds < 5
    assert NO_DOCKER in result.stderr


def test_missing_kind_is_named():
    # `true info` stands in for a working Docker engine.
    result, _ = make("kind-up", "DOCKER=true", "KIND=/nonexistent/kind")
    assert result.returncode != 0
    assert "needs kind" in result.stderr


def test_targets_use_pinned_tools():
    result, _ = make("-n", *TARGETS[:-1])
    assert result.returncode == 0, result.stderr
    commands = result.stdout
    assert ".tools/bin/helm --kube-context kind-observatory upgrade --install kube-prometheus-stack" in commands
    assert ".tools/bin/helm --kube-context kind-observatory upgrade --install observatory charts/observatory" in commands
    assert "docker build -t observatory:dev ." in commands
    assert "kind load docker-image observatory:dev --name observatory" in commands
    assert ".tools/bin/kubectl --context kind-observatory wait --for=condition=Ready alertrules,slos" in commands
    assert "mk/check_rules_loaded.py" in commands
    # Custom resources only: examples/tests holds promtool tests, not Kubernetes objects.
    (apply_line,) = [line for line in commands.splitlines() if " apply -f examples/" in line]
    applied = set(apply_line.split(" -f ")[1:])
    assert {"examples/alertrules", "examples/slos"} <= applied
    assert "examples/tests" not in applied
    assert "for ns in observatory-e2e team-a" in commands  # namespaces the examples live in are created first


def test_kind_up_deploy_e2e_is_one_sequence():
    """As the docs write it: e2e applies the examples (and their Secrets) before it waits on them, then
    checks that an alert fires and its AlertmanagerConfig routes it."""
    result, _ = make("-n", "kind-up", "deploy", "e2e")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    secrets = next(i for i, line in enumerate(lines) if "mk/example_secrets.py" in line and "apply -f -" in line)
    applied = next(i for i, line in enumerate(lines) if " apply -f examples/" in line and "-f mk/e2e" in line)
    waited = next(i for i, line in enumerate(lines) if "wait --for=condition=Ready" in line)
    assert secrets < applied < waited
    assert "mk/check_alert_routed.py .tools/e2e-alertmanagerconfigs.json E2eNoTraffic" in result.stdout
    # kube-prometheus-stack selects AlertmanagerConfigs of its own namespace only unless told otherwise.
    assert "alertmanagerConfigNamespaceSelector={}" in result.stdout
    assert '"app.kubernetes.io/managed-by":"observatory"' in result.stdout


def test_image_builds_both_platforms():
    result, _ = make("-n", "image", "DOCKER=true", "IMAGE_PUSH=1", "IMAGE_REPOSITORY=registry.example.com/observatory")
    assert result.returncode == 0, result.stderr
    assert "true buildx build --platform linux/amd64,linux/arm64 -t registry.example.com/observatory:dev --push ." in result.stdout


class _Prometheus:
    """A stand-in for Prometheus's /api/v1/rules that loads groups after a number of requests."""

    def __init__(self, groups_by_request: list[list[str]]):
        self.responses = groups_by_request
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                assert self.path == "/api/v1/rules"
                groups = outer.responses[min(outer.requests, len(outer.responses) - 1)]
                outer.requests += 1
                body = json.dumps({"status": "success", "data": {"groups": [
                    {"name": g, "file": f"/etc/prometheus/rules/{g}.yaml", "rules": []} for g in groups]}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "prometheusrules.json"
    path.write_text(json.dumps({"items": [
        {"spec": {"groups": [{"name": "observatory.team-a.latency"}, {"name": "observatory.team-a.slo"}]}},
        {"spec": {"groups": [{"name": "observatory.team-b.cost"}]}},
    ]}))
    return path


def test_rules_check_waits_until_loaded(rules_file, capsys):
    prometheus = _Prometheus([["other"], ["observatory.team-a.latency", "observatory.team-b.cost"],
                              ["other", "observatory.team-a.latency", "observatory.team-a.slo", "observatory.team-b.cost"]])
    try:
        code = check_rules_loaded.main([str(rules_file), prometheus.url, "--timeout", "10", "--interval", "0.01"])
    finally:
        prometheus.close()
    assert code == 0
    assert prometheus.requests == 3
    assert "all 3 rule group(s) are loaded" in capsys.readouterr().out


def test_rules_check_names_missing_groups(rules_file, capsys):
    prometheus = _Prometheus([["observatory.team-a.latency"]])
    try:
        code = check_rules_loaded.main([str(rules_file), prometheus.url, "--timeout", "0.05", "--interval", "0.01"])
    finally:
        prometheus.close()
    assert code == 1
    err = capsys.readouterr().err
    assert "observatory.team-a.slo, observatory.team-b.cost" in err and "ruleSelector" in err


def test_rules_check_needs_generated_rules(tmp_path, capsys):
    empty = tmp_path / "none.json"
    empty.write_text('{"items": []}')
    assert check_rules_loaded.main([str(empty), "http://127.0.0.1:9"]) == 1
    assert "no PrometheusRule managed by observatory" in capsys.readouterr().err
