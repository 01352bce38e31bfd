"""AlertmanagerConfig → alertmanager.yml, judged by the real amtool (config check and route tests)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from localhelpers import REPO
from observatory import loader
from observatory.compile import CompileOptions
from observatory.local.amconfig import (
    ConversionError,
    LocalSecrets,
    Sink,
    alertmanager_yaml,
)

SINK = Sink("http://127.0.0.1:9", "127.0.0.1:25")


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    loaded = loader.read([str(REPO / "examples")], "default")
    objects = loader.compile_all(loaded, CompileOptions())
    assert not loaded.problems
    return objects


def write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def check(amtool: Path, path: Path) -> None:
    result = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def routes_to(amtool: Path, path: Path, **labels: str) -> set[str]:
    result = subprocess.run([amtool, "config", "routes", "test", f"--config.file={path}",
                             *(f"{k}={v}" for k, v in labels.items())], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.strip().split(","))


def test_stand_in_config_is_valid_and_routes_like_prometheus_operator(objects, amtool, tmp_path) -> None:
    config, destinations = alertmanager_yaml(objects, lambda *_: None, SINK)
    path = write(tmp_path, config)
    check(amtool, path)
    page = {"alertname": "SLOErrorBudgetBurnPage", "slo": "llm-availability", "severity": "critical"}
    assert routes_to(amtool, path, namespace="team-a", **page) == {"team-a/slo-llm-availability/oncall"}
    assert routes_to(amtool, path, namespace="team-a", **{**page, "severity": "warning"}) == {"team-a/slo-llm-availability/team-slack"}
    # The namespace matcher confines each object to its own namespace's alerts.
    assert routes_to(amtool, path, namespace="team-b", **page) == {"null"}
    assert routes_to(amtool, path, namespace="team-a", alertname="LlmErrorRate", observatory_alertrule="llm-error-rate",
                     severity="critical") == {"team-a/alertrule-llm-error-rate/oncall", "team-a/alertrule-llm-error-rate/team-slack"}
    assert routes_to(amtool, path, namespace="team-a", alertname="LlmErrorRate", observatory_alertrule="llm-error-rate",
                     severity="warning") == {"team-a/alertrule-llm-error-rate/team-slack"}
    assert all(not d.real for d in destinations)
    assert {d.kind for d in destinations} == {"slack", "pagerduty", "email", "webhook"}
    receivers = {r["name"]: r for r in config["receivers"]}
    slack = receivers["team-a/alertrule-llm-hourly-budget/team-slack"]["slack_configs"][0]
    assert slack == {"api_url": "http://127.0.0.1:9/slack/team-a/alertrule-llm-hourly-budget/team-slack",
                     "channel": "#llm-alerts", "send_resolved": True}
    email = receivers["team-a/alertrule-llm-daily-budget/finops"]["email_configs"][0]
    assert email["smarthost"] == "127.0.0.1:25" and "auth_password" not in email


def test_provided_secrets_make_receivers_real(objects, amtool, tmp_path) -> None:
    secret_dir = tmp_path / "secrets"
    (secret_dir / "team-a" / "slack-team-a").mkdir(parents=True)
    (secret_dir / "team-a" / "slack-team-a" / "webhookURL").write_text("https://hooks.slack.example/T000/B000/XXXX\n")
    secrets = LocalSecrets(secret_dir, {"OBSERVATORY_SECRET_TEAM_A_PAGERDUTY_TEAM_A_ROUTINGKEY": "pd-key-123",
                                        "OBSERVATORY_SECRET_TEAM_A_SMTP_PASSWORD": "smtp-pass"})
    config, destinations = alertmanager_yaml(objects, secrets, SINK)
    check(amtool, write(tmp_path, config))
    real = {d.receiver for d in destinations if d.real}
    assert real == {"team-a/alertrule-llm-error-rate/team-slack", "team-a/alertrule-llm-hourly-budget/team-slack",
                    "team-a/slo-llm-availability/team-slack", "team-a/alertrule-llm-error-rate/oncall",
                    "team-a/alertrule-llm-daily-budget/oncall", "team-a/slo-llm-availability/oncall"}
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["team-a/slo-llm-availability/team-slack"]["slack_configs"][0]["api_url"] == \
        "https://hooks.slack.example/T000/B000/XXXX"
    assert receivers["team-a/slo-llm-availability/oncall"]["pagerduty_configs"][0] == \
        {"routing_key": "pd-key-123", "send_resolved": True}
    # finops has its password but no smarthost, and the local stack has no global one: stand-in.
    assert "team-a/alertrule-llm-daily-budget/finops" not in real


def test_without_a_sink_every_secret_must_resolve(objects) -> None:
    with pytest.raises(ConversionError, match=r"AlertmanagerConfig/team-a/alertrule-hallucination-rate: .*"
                                              r"Secret team-a/quality-webhook has no key 'url'"):
        alertmanager_yaml(objects, lambda *_: None, sink=None)
