"""Routing → prometheus-operator AlertmanagerConfig (monitoring.coreos.com/v1alpha1).

prometheus-operator confines an AlertmanagerConfig to alerts carrying its namespace label, which is
why every generated alert keeps the tenant label.
"""

from __future__ import annotations

import re
from typing import Any

from ..models.routing import Receiver, Routing
from .errors import CompileError, FieldError

NULL_RECEIVER = "observatory-null"  # catches what no severity route takes, and notifies nobody
_HOST = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*")
_TOP_LEVEL = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")  # a public TLD: never numeric, so no IP literal passes
# Kubernetes Service names (cluster.local is the default cluster domain), mDNS and private-use names.
IN_CLUSTER_SUFFIXES = (".svc", ".cluster.local", ".local", ".localhost", ".internal")
SMARTHOST_SETTING = "the operator setting alerting.allowedEmailSmarthosts"


def smarthost(value: str) -> str:
    """`value` (host:port) lowercased, without a trailing dot; ValueError if it is not a host name and port."""
    host, _, port = value.rpartition(":")
    host = host.lower().removesuffix(".")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port with a port of 1 to 65535")
    if not _HOST.fullmatch(host) or len(host) > 253:
        raise ValueError(f"{value!r} is not host:port with a DNS host name")
    return f"{host}:{int(port)}"


def smarthost_problem(value: str, allowed: tuple[str, ...]) -> str | None:
    """Why Alertmanager may not send email through `value`, or None.

    With `allowed` (normalised by `smarthost`) only those; without, any public DNS name, but nothing
    that resolves inside the cluster: Alertmanager runs there, so a tenant could point it at any
    Service's port. A name of two labels counts as inside: the pods' resolv.conf search path makes
    `smtp.team-b` the Service smtp of namespace team-b.
    """
    try:
        host_port = smarthost(value)
    except ValueError as err:
        return str(err)
    if allowed:
        if host_port in allowed:
            return None
        return f"{value} is not one of the email smarthosts the platform allows: {', '.join(allowed)}"
    host = host_port.rpartition(":")[0]
    labels = host.split(".")
    if len(labels) > 2 and not host.endswith(IN_CLUSTER_SUFFIXES) and _TOP_LEVEL.fullmatch(labels[-1]):
        return None
    return (f"{value} may be inside the cluster (a Service, a name the cluster's DNS search path completes, or an IP "
            f"address), where Alertmanager would connect for you; use a public mail server's full DNS name, or ask "
            f"the platform admin to allow this one ({SMARTHOST_SETTING})")


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
                        severity_label: str, labels: dict[str, str], allowed_smarthosts: tuple[str, ...]) -> dict[str, Any]:
    """An AlertmanagerConfig sending the alerts labelled `match_label=match_value` to the receivers."""
    errors = [FieldError(f"spec.routing.receivers.{i}.email.smarthost", problem)
              for i, receiver in enumerate(routing.receivers) if receiver.email and receiver.email.smarthost
              if (problem := smarthost_problem(receiver.email.smarthost, allowed_smarthosts))]
    if errors:
        raise CompileError(errors)
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
