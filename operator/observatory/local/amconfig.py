"""AlertmanagerConfig objects → one alertmanager.yml, as prometheus-operator assembles it.

prometheus-operator prefixes every receiver with `<namespace>/<object>/`, appends a
`namespace="<namespace>"` matcher to each object's top route (the OnNamespace matcher strategy) and
forces `continue: true` on it, so every object sees every alert of its namespace. Secret references
are resolved through a lookup; for the local stack, receivers whose Secrets are not provided go to a
local stand-in (`Sink`) instead of Slack, PagerDuty, e-mail or a webhook.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NULL_RECEIVER = "null"
STAND_IN_ROUTING_KEY = "local-stand-in"
STAND_IN_SENDER = "observatory@localhost"
RECEIVER_HEADER = "X-Observatory-Receiver"  # tells the local SMTP sink which receiver a mail is for

SecretLookup = Callable[[str, str, str], "str | None"]  # (namespace, name, key) → value, None if absent

# CRD field → alertmanager.yml field, per receiver type; `secret` marks SecretKeySelector fields.
_FIELDS: dict[str, tuple[str, dict[str, tuple[str, bool]]]] = {
    "slackConfigs": ("slack_configs", {"apiURL": ("api_url", True), "channel": ("channel", False),
                                       "sendResolved": ("send_resolved", False)}),
    "pagerdutyConfigs": ("pagerduty_configs", {"routingKey": ("routing_key", True), "url": ("url", False),
                                               "sendResolved": ("send_resolved", False)}),
    "emailConfigs": ("email_configs", {"to": ("to", False), "from": ("from", False), "smarthost": ("smarthost", False),
                                       "authUsername": ("auth_username", False), "authPassword": ("auth_password", True),
                                       "requireTLS": ("require_tls", False), "sendResolved": ("send_resolved", False)}),
    "webhookConfigs": ("webhook_configs", {"urlSecret": ("url", True), "url": ("url", False),
                                           "maxAlerts": ("max_alerts", False), "sendResolved": ("send_resolved", False)}),
}
_ROUTE_FIELDS = {"groupBy": "group_by", "groupWait": "group_wait", "groupInterval": "group_interval",
                 "repeatInterval": "repeat_interval"}
# Stand-in path segment per receiver type (the local receiver dispatches on it).
STAND_IN_KIND = {"slackConfigs": "slack", "pagerdutyConfigs": "pagerduty", "emailConfigs": "email",
                 "webhookConfigs": "webhook"}


class ConversionError(ValueError):
    pass


@dataclass(frozen=True)
class Sink:
    """The local receiver: HTTP base URL (Slack, PagerDuty, webhooks) and SMTP host:port (e-mail)."""

    http_url: str
    smtp_hostport: str


@dataclass(frozen=True)
class Destination:
    """Where one receiver's notifications go; `real` only when its Secrets were provided locally."""

    receiver: str  # namespace/object/name, as in alertmanager.yml
    kind: str  # slack | pagerduty | email | webhook
    real: bool


@dataclass(frozen=True)
class RootRoute:
    """The base configuration's root route (prometheus-operator takes it from the user's Secret)."""

    group_by: tuple[str, ...] = ("namespace", "alertname")
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"


def matcher_string(matcher: Mapping[str, Any]) -> str:
    # prometheus-operator's Matcher.String(): name, operator, Go-quoted value.
    return f"{matcher['name']}{matcher.get('matchType', '=')}{json.dumps(str(matcher['value']))}"


def _route(route: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {"receiver": prefix + route["receiver"]}
    for crd_key, am_key in _ROUTE_FIELDS.items():
        if route.get(crd_key):
            out[am_key] = list(route[crd_key]) if crd_key == "groupBy" else route[crd_key]
    matchers = [matcher_string(m) for m in route.get("matchers", [])]
    if matchers:
        out["matchers"] = matchers
    if route.get("continue"):
        out["continue"] = True
    children = [_route(child, prefix) for child in route.get("routes", [])]
    if children:
        out["routes"] = children
    return out


def _secret_refs(receiver: Mapping[str, Any]) -> list[Mapping[str, str]]:
    return [config[crd_key] for kind, (_, fields) in _FIELDS.items() for config in receiver.get(kind, [])
            for crd_key, (_, secret) in fields.items() if secret and crd_key in config]


def _stand_in(kind: str, config: Mapping[str, Any], sink: Sink, receiver: str) -> dict[str, Any]:
    url = f"{sink.http_url.rstrip('/')}/{STAND_IN_KIND[kind]}/{receiver}"
    resolved = {"send_resolved": config.get("sendResolved", kind != "emailConfigs")}
    if kind == "slackConfigs":
        return {"api_url": url, **({"channel": config["channel"]} if config.get("channel") else {}), **resolved}
    if kind == "pagerdutyConfigs":
        return {"routing_key": STAND_IN_ROUTING_KEY, "url": url, **resolved}
    if kind == "webhookConfigs":
        return {"url": url, "max_alerts": config.get("maxAlerts", 0), **resolved}
    return {"to": config["to"], "from": config.get("from") or STAND_IN_SENDER, "smarthost": sink.smtp_hostport,
            "require_tls": False, "headers": {RECEIVER_HEADER: receiver}, **resolved}


def _real(kind: str, config: Mapping[str, Any], namespace: str, secrets: SecretLookup, where: str) -> dict[str, Any]:
    fields = _FIELDS[kind][1]
    out: dict[str, Any] = {}
    for crd_key, value in config.items():
        if crd_key not in fields:
            raise ConversionError(f"{where}: {kind}.{crd_key} is not supported by the local converter")
        am_key, secret = fields[crd_key]
        if secret:
            value = secrets(namespace, value["name"], value["key"])
            if value is None:
                raise ConversionError(f"{where}: {kind}.{crd_key}: Secret {namespace}/{config[crd_key]['name']} "
                                      f"has no key {config[crd_key]['key']!r}")
            value = value.strip()
        out[am_key] = value
    return out


def _receiver(receiver: Mapping[str, Any], namespace: str, prefix: str, secrets: SecretLookup,
              sink: Sink | None, where: str) -> tuple[dict[str, Any], list[Destination]]:
    name = prefix + receiver["name"]
    out: dict[str, Any] = {"name": name}
    refs = _secret_refs(receiver)
    provided = bool(refs) and all(secrets(namespace, r["name"], r["key"]) is not None for r in refs)
    # E-mail without a smarthost in the resource needs a global one, which the local stack has not.
    has_host = all(c.get("smarthost") for c in receiver.get("emailConfigs", []))
    real = sink is None or (provided and has_host)
    destinations = []
    for kind, (am_kind, _) in _FIELDS.items():
        configs = receiver.get(kind, [])
        if not configs:
            continue
        out[am_kind] = [_real(kind, c, namespace, secrets, f"{where}: receiver {receiver['name']}") if real
                        else _stand_in(kind, c, sink, name) for c in configs]
        destinations.append(Destination(name, STAND_IN_KIND[kind], real))
    return out, destinations


def alertmanager_yaml(objects: Iterable[Mapping[str, Any]], secrets: SecretLookup, sink: Sink | None = None,
                      root: RootRoute | None = None) -> tuple[dict[str, Any], list[Destination]]:
    """The alertmanager.yml for every AlertmanagerConfig in `objects`, and where each receiver sends.

    Without a sink every Secret must resolve (ConversionError names the missing one), as in a cluster.
    """
    root = root or RootRoute()
    configs = sorted((o for o in objects if o.get("kind") == "AlertmanagerConfig"),
                     key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))
    routes: list[dict[str, Any]] = []
    receivers: list[dict[str, Any]] = [{"name": NULL_RECEIVER}]
    destinations: list[Destination] = []
    for obj in configs:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        prefix = f"{namespace}/{name}/"
        where = f"AlertmanagerConfig/{namespace}/{name}"
        spec = obj["spec"]
        if spec.get("route"):
            route = _route(spec["route"], prefix)
            route["matchers"] = route.get("matchers", []) + [matcher_string({"name": "namespace", "value": namespace})]
            route["continue"] = True
            routes.append(route)
        for receiver in spec.get("receivers", []):
            converted, where_to = _receiver(receiver, namespace, prefix, secrets, sink, where)
            receivers.append(converted)
            destinations.extend(where_to)
    config = {
        "route": {"receiver": NULL_RECEIVER, "group_by": list(root.group_by), "group_wait": root.group_wait,
                  "group_interval": root.group_interval, "repeat_interval": root.repeat_interval, "routes": routes},
        "receivers": receivers,
    }
    return config, destinations


def _env_name(namespace: str, name: str, key: str) -> str:
    return "OBSERVATORY_SECRET_" + "_".join(re.sub(r"[^A-Za-z0-9]", "_", part).upper() for part in (namespace, name, key))


class LocalSecrets:
    """Secret keys from `OBSERVATORY_SECRET_<NAMESPACE>_<NAME>_<KEY>` or `<directory>/<namespace>/<name>/<key>`."""

    def __init__(self, directory: Path, environ: Mapping[str, str] = os.environ):
        self.directory = directory
        self.environ = environ

    def __call__(self, namespace: str, name: str, key: str) -> str | None:
        env = _env_name(namespace, name, key)
        if env in self.environ:
            return self.environ[env]
        path = self.directory / namespace / name / key
        return path.read_text() if path.is_file() else None
