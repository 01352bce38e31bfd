"""Issue 13 items 2 and 7 through the operator loop: kopf and the handlers against the RBAC-enforcing
emulator, as `observatory run` builds them.

A hostile team-a applies alert templates that query the TSDB, labels that take over another
resource's identity and routing, a `__name__` label and an in-cluster email smarthost: each
resource gets Valid=False naming the field, nothing of team-a is written, team-b's resources are
reconciled as usual and the operator goes on reconciling.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "controller"))

from controller_harness import (
    ALERTRULES,
    AMCONFIGS,
    PROMETHEUSRULES,
    SLOS,
    condition,
    names,
    running_operator,
    settled,
)
from k8s.emulator import cluster_context
from labels_resources import alertrule, slo
from observatory.controller.settings import Settings

QUERY = '{{ with query "sum(secret_total)" }}{{ . | first | value }}{{ end }}'
PAGER = {"receivers": [{"name": "oncall", "pagerduty": {"routingKey": {"name": "pd", "key": "key"}}}]}


def email(smarthost: str) -> dict:
    return {"receivers": [{"name": "mail", "email": {"to": ["oncall@example.com"], "smarthost": smarthost}}]}


# (plural, resource, the field its Valid=False message starts with)
ATTACKS = [
    (ALERTRULES, alertrule("leaky", labels={"leak": QUERY}), "spec.labels.leak: `query` runs any PromQL"),
    (ALERTRULES, alertrule("leaky-summary", annotations={"summary": QUERY}), "spec.annotations.summary: `query`"),
    (SLOS, slo("leaky-slo", alerting={"ticket": {"annotations": {"summary": QUERY}}}),
     "spec.alerting.ticket.annotations.summary: `query`"),
    (ALERTRULES, alertrule("sneaky", labels={"slo": "chat"}, routing=PAGER), "spec.labels.slo: reserved"),
    (SLOS, slo("sneaky-slo", labels={"observatory_alertrule": "calls"}), "spec.labels.observatory_alertrule: reserved"),
    (ALERTRULES, alertrule("dunder", labels={"__name__": "up"}), "spec.labels.__name__: "),
    (ALERTRULES, alertrule("mailer", routing=email("smtp.team-b.svc:25")),
     "spec.routing.receivers.0.email.smarthost: smtp.team-b.svc:25 may be inside the cluster"),
]


async def test_attacks_are_refused_and_nothing_of_the_tenant_is_written():
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.seed(slo("chat", namespace="team-b", routing=PAGER))
        for plural, resource, _ in ATTACKS:
            cluster.seed(resource)
        for plural, resource, message in ATTACKS:
            name = resource["metadata"]["name"]
            live = await cluster.until(lambda: settled(cluster, plural, name, "team-a"))  # noqa: B023
            valid = condition(live, "Valid")
            assert (valid["status"], valid["reason"]) == ("False", "InvalidSpec"), (name, valid)
            assert valid["message"].startswith(message), (name, valid["message"])
            assert live["status"]["prometheusRules"] == [] and not live["status"].get("alertmanagerConfig"), name
        assert names(cluster, PROMETHEUSRULES, "team-a") == [] and names(cluster, AMCONFIGS, "team-a") == []
        # The other tenant is reconciled, and the operator goes on: a resource applied after the attacks.
        assert condition(await cluster.until(lambda: settled(cluster, SLOS, "chat", "team-b")), "Valid")["status"] == "True"
        cluster.seed(alertrule("calls", namespace="team-b", annotations={"summary": "{{ $value | humanize }} calls"}))
        live = await cluster.until(lambda: settled(cluster, ALERTRULES, "calls", "team-b"))
        assert condition(live, "Valid")["status"] == condition(live, "Ready")["status"] == "True"
        assert set(names(cluster, PROMETHEUSRULES, "team-b")) >= {"alertrule-calls"}
        assert names(cluster, AMCONFIGS, "team-b") == ["slo-chat"]


async def test_the_smarthost_allow_list_reaches_the_operator():
    settings = Settings.from_env({"OBSERVATORY_ALLOWED_EMAIL_SMARTHOSTS": "mail.infra.svc:25"})
    async with cluster_context() as cluster, running_operator(cluster, settings):
        cluster.seed(alertrule("allowed", routing=email("mail.infra.svc:25")))
        cluster.seed(alertrule("public", routing=email("smtp.sendgrid.net:587")))
        live = await cluster.until(lambda: settled(cluster, ALERTRULES, "public", "team-a"))
        assert condition(live, "Valid")["message"].startswith(
            "spec.routing.receivers.0.email.smarthost: smtp.sendgrid.net:587 is not one of the email smarthosts "
            "the platform allows: mail.infra.svc:25")
        live = await cluster.until(lambda: settled(cluster, ALERTRULES, "allowed", "team-a"))
        assert condition(live, "Valid")["status"] == "True"
        config = cluster.get(AMCONFIGS, "alertrule-allowed", "team-a")
        assert config["spec"]["receivers"][1]["emailConfigs"][0]["smarthost"] == "mail.infra.svc:25"
        assert names(cluster, AMCONFIGS, "team-a") == ["alertrule-allowed"]
