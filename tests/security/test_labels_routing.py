"""Issue 13 item 7, labels and routing: labels that route or identify, label names Prometheus
rejects, and email smarthosts inside the cluster.

- Observatory routes an SLO's alerts to its receivers by the `slo` label and an AlertRule's by
  `observatory_alertrule` (its AlertmanagerConfig matchers; prometheus-operator adds `namespace`):
  a resource setting another's identity label gets its alerts delivered to that resource's
  receivers (amtool judges the routing). Such labels are reserved: an error, never overwritten.
- A label name starting with `__` is reserved by Prometheus: promtool refuses such a rule.
- An email smarthost is a host:port Alertmanager connects to from inside the cluster: by default
  in-cluster names and IP literals are refused, public DNS names allowed; a platform admin may
  instead list the allowed smarthosts (operator setting, CLI flag).
"""

from __future__ import annotations

import subprocess

import pytest
import yaml
from labels_resources import Batch, alertrule, observatory, promtool_alerts, slo
from observatory.compile import CompileOptions, compile_bundle
from observatory.controller.settings import Settings, SettingsError
from observatory.local.amconfig import Sink, alertmanager_yaml
from observatory.models import parse_resource
from observatory.promtool import check_rules, write_rule_files

RECEIVER = "spec.routing.receivers.0.email.smarthost"


def email(smarthost: str) -> dict:
    return {"receivers": [{"name": "mail", "email": {"to": ["oncall@example.com"], "smarthost": smarthost}}]}


def refusals(document: dict, *flags: str) -> list[str]:
    result = observatory("validate", "-f", "-", *flags, stdin=yaml.safe_dump(document))
    assert "Traceback" not in result.stderr
    return [line.split(": ", 2)[2] for line in result.stderr.splitlines() if line.startswith("-: ")]


def test_an_alert_carrying_another_resources_identity_label_reaches_its_receivers(amtool, tmp_path):
    """The hole, judged by amtool: labels are all Alertmanager routes on."""
    pager = {"receivers": [{"name": "oncall", "pagerduty": {"routingKey": {"name": "pd", "key": "key"}}}]}
    objects = compile_bundle([parse_resource(slo(routing=pager)), parse_resource(alertrule("sneaky"))])
    config, _ = alertmanager_yaml(objects, lambda *_: None, Sink("http://127.0.0.1:9", "127.0.0.1:25"))
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    sneaky = {"alertname": "Sneaky", "namespace": "team-a", "observatory_alertrule": "sneaky", "severity": "critical"}
    routes = subprocess.run([str(amtool), "config", "routes", "test", f"--config.file={path}",
                             *(f"{k}={v}" for k, v in {**sneaky, "slo": "chat"}.items())], capture_output=True, text=True, check=False)
    assert routes.stdout.strip() == "team-a/slo-chat/oncall", routes.stdout + routes.stderr


def test_an_alertrules_alert_drops_an_slo_label_of_its_series(promtool, tmp_path):
    """Prometheus gives an alert its series' labels, then the rule's (prometheus rules/alerting.go):
    a series of the tenant's own carrying `slo=chat` would route an AlertRule's alert to SLO chat's
    receivers. The rule sets the label empty, which Prometheus treats as absent (model/labels, Builder.Set)."""
    objects = compile_bundle([parse_resource(alertrule("sneaky", threshold={"expr": "llm_calls_total", "value": 0}))])
    series = {'llm_calls_total{namespace="team-a", slo="chat", observatory_alertrule="other", job="app"}': "1+1x10"}
    failure = promtool_alerts(objects, tmp_path, series, "Sneaky", "5m", [{"exp_labels": {
        "alertname": "Sneaky", "namespace": "team-a", "observatory_alertrule": "sneaky", "severity": "warning",
        "job": "app"}, "exp_annotations": {"summary": "6 > 0"}}])
    assert failure == "", failure


def test_an_slos_alert_drops_an_alertrule_label_it_groups_by(promtool, tmp_path):
    """An SLO grouped by `observatory_alertrule` of its series would route its alerts to AlertRule calls'
    receivers."""
    objects = compile_bundle([parse_resource(slo("chat", groupBy=["observatory_alertrule"]))])
    series = {'llm_calls_total{namespace="team-a", observatory_alertrule="calls"}': "0+60x30",
              'llm_errors_total{namespace="team-a", observatory_alertrule="calls"}': "0+60x30"}
    failure = promtool_alerts(objects, tmp_path, series, "SLOErrorBudgetBurnPage", "20m", [{"exp_labels": {
        "alertname": "SLOErrorBudgetBurnPage", "namespace": "team-a", "slo": "chat", "slo_tier": "page",
        "window": "30d", "severity": "critical"},
        "exp_annotations": {"summary": "SLO chat (99% over 30d) is burning its error budget fast"}}])
    assert failure == "", failure


RESERVED = ["namespace", "slo", "observatory_alertrule", "severity", "slo_tier", "window", "observatory_shard", "alertname"]
BATCH = Batch()


@pytest.mark.parametrize("key, field", [
    (BATCH.add(document), f"{field}.{label}") for label in RESERVED for document, field in (
        (alertrule("sneaky", labels={label: "chat"}), "spec.labels"),
        (slo(labels={label: "x"}), "spec.labels"),
        (slo(alerting={"ticket": {"labels": {label: "x"}}}), "spec.alerting.ticket.labels"),
    )])
def test_routing_and_identity_labels_are_reserved(key, field):
    [message] = [m for m in BATCH.refusals(key) if m.startswith(f"{field}: ")]
    assert "reserved" in message and "use another label name" in message, message


def test_the_configured_tenant_label_is_reserved(tmp_path):
    conventions = tmp_path / "conventions.yaml"
    conventions.write_text("tenant_label: tenant\n")
    [message] = refusals(alertrule("sneaky", labels={"tenant": "team-b"}), "--conventions", str(conventions))
    assert message.startswith("spec.labels.tenant: ") and "reserved" in message


def test_a_double_underscore_label_name_gives_a_rule_prometheus_rejects(promtool, tmp_path):
    objects = compile_bundle([parse_resource(alertrule("sneaky"))])
    [rule] = [r for o in objects for g in o["spec"]["groups"] for r in g["rules"] if r.get("alert")]
    rule["labels"]["__name__"] = "x"
    outcome = check_rules(write_rule_files(objects, tmp_path))
    assert not outcome.ok and "__name__" in outcome.output, outcome.output


@pytest.mark.parametrize("key, field", [
    (BATCH.add(document), f"{field}.{label}") for label in ("__name__", "__tmp", "__") for document, field in (
        (alertrule("sneaky", labels={label: "x"}), "spec.labels"),
        (slo(labels={label: "x"}), "spec.labels"),
        (slo(alerting={"page": {"labels": {label: "x"}}}), "spec.alerting.page.labels"),
    )])
def test_double_underscore_label_names_are_refused(key, field):
    [message] = BATCH.refusals(key)
    assert message.startswith(f"{field}: ") and "reserved for Prometheus" in message, message


def test_single_underscore_label_names_stay_valid():
    assert refusals(alertrule("sneaky", labels={"_team": "x", "_": "y", "a__b": "z"})) == []


@pytest.mark.parametrize("key", [BATCH.add(alertrule("sneaky", routing=email(smarthost))) for smarthost in (
    "smtp.team-b.svc:25", "smtp.team-b.svc.cluster.local:25", "SMTP.Team-B.SVC:25", "smtp.team-b.svc.:25",
    "mail.cluster.local:25", "mailhog:1025", "localhost:25", "10.0.0.1:25", "127.0.0.1:25", "0x7f.1:25",
    "2130706433:25", "169.254.169.254:80", "kubernetes.default:443", "smtp.corp.internal:25", "mail.local:25",
)])
def test_in_cluster_email_smarthosts_are_refused_by_default(key):
    [message] = BATCH.refusals(key)
    assert message.startswith(f"{RECEIVER}: ") and "inside the cluster" in message, message
    assert "allowedEmailSmarthosts" in message


@pytest.mark.parametrize("key", [BATCH.add(alertrule("sneaky", routing=email(smarthost))) for smarthost in (
    "smtp.example.com:0", "smtp.example.com:65536", "smtp..example.com:25", "-smtp.example.com:25",
    "smtp_x.example.com:25")])
def test_malformed_email_smarthosts_are_refused(key):
    [message] = BATCH.refusals(key)
    assert message.startswith(f"{RECEIVER}: ") and "is not host:port" in message, message


def test_public_email_smarthosts_are_allowed_by_default():
    assert refusals(alertrule("sneaky", routing=email("smtp.sendgrid.net:587"))) == []
    assert refusals(slo(routing=email("email-smtp.eu-west-1.amazonaws.com:465"))) == []


def test_an_allow_list_admits_only_its_smarthosts():
    flags = ("--allowed-email-smarthost", "mail.infra.svc:25", "--allowed-email-smarthost", "smtp.example.com:587")
    assert refusals(alertrule("sneaky", routing=email("mail.infra.svc:25")), *flags) == []
    assert refusals(alertrule("sneaky", routing=email("SMTP.example.com:587")), *flags) == []
    [message] = refusals(alertrule("sneaky", routing=email("smtp.sendgrid.net:587")), *flags)
    assert message.startswith(f"{RECEIVER}: ") and "mail.infra.svc:25, smtp.example.com:587" in message, message


def test_the_allow_list_is_an_operator_setting():
    settings = Settings.from_env({"OBSERVATORY_ALLOWED_EMAIL_SMARTHOSTS": " smtp.example.com:587, mail.infra.svc:25 "})
    assert settings.allowed_email_smarthosts == ("mail.infra.svc:25", "smtp.example.com:587")
    assert settings.compile_options().allowed_email_smarthosts == ("mail.infra.svc:25", "smtp.example.com:587")
    assert Settings.from_env({}).compile_options() == CompileOptions()
    with pytest.raises(SettingsError, match="OBSERVATORY_ALLOWED_EMAIL_SMARTHOSTS: .*host:port"):
        Settings.from_env({"OBSERVATORY_ALLOWED_EMAIL_SMARTHOSTS": "smtp.example.com"})
