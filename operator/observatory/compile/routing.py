"""Routing → prometheus-operator AlertmanagerConfig (monitoring.coreos.com/v1alpha1).

prometheus-operator confines an AlertmanagerConfig to alerts carrying its namespace label, which is
why every generated alert keeps the tenant label.
"""

from __future__ import annotations

from typing import Any

from ..models.routing import Receiver, Routing

NULL_RECEIVER = "observatory-null"  # catches what no severity route takes, and notifies nobody


def _secret(ref) -> dict[str, str]:
    return {"name": ref.name, "key": ref.key}


def _receiver(receiver: Receiver) -> dict[str, Any]:
    out: dict[str, Any] = {"name": receiver.name}
    if receiver.slack:
        config: dict[str, Any] = {"apiURL": _secret(receiver.slack.api_url), "sendResolved": receiver.slack.send_resolved}
        if receiver.slack.channel:
            config["channel"] = receiver.slack.channel
        out["slackConfigs"] = [config]
    elif receiver.email:
        email = receiver.email
        config = {"to": ", ".join(email.to), "sendResolved": email.send_resolved}
        if email.from_:
            config["from"] = email.from_
        if email.smarthost:
            config["smarthost"] = email.smarthost
        if email.auth_username:
            config["authUsername"] = email.auth_username
        if email.auth_password:
            config["authPassword"] = _secret(email.auth_password)
        out["emailConfigs"] = [config]
    elif receiver.pagerduty:
        out["pagerdutyConfigs"] = [{"routingKey": _secret(receiver.pagerduty.routing_key),
                                    "sendResolved": receiver.pagerduty.send_resolved}]
    else:
        webhook = receiver.webhook
        out["webhookConfigs"] = [{"urlSecret": _secret(webhook.url), "maxAlerts": webhook.max_alerts,
                                  "sendResolved": webhook.send_resolved}]
    return out


def alertmanager_config(name: str, namespace: str, routing: Routing, match_label: str, match_value: str,
                        severity_label: str, labels: dict[str, str]) -> dict[str, Any]:
    """An AlertmanagerConfig sending the alerts labelled `match_label=match_value` to the receivers."""
    routes = []
    for receiver in routing.receivers:
        route: dict[str, Any] = {"receiver": receiver.name, "continue": True}
        if receiver.severities:
            route["matchers"] = [{"name": severity_label, "matchType": "=~", "value": "|".join(receiver.severities)}]
        routes.append(route)
    top: dict[str, Any] = {
        "receiver": NULL_RECEIVER,
        "groupBy": list(routing.group_by),
        "matchers": [{"name": match_label, "matchType": "=", "value": match_value}],
    }
    for key, value in (("groupWait", routing.group_wait), ("groupInterval", routing.group_interval),
                       ("repeatInterval", routing.repeat_interval)):
        if value:
            top[key] = value
    top["routes"] = routes
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(sorted(labels.items()))},
        "spec": {"route": top, "receivers": [{"name": NULL_RECEIVER}] + [_receiver(r) for r in routing.receivers]},
    }
