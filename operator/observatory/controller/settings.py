"""Operator configuration from environment variables (the names the Helm chart's Deployment sets)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..compile import CompileOptions
from ..compile.routing import smarthost
from ..conventions import DEFAULT, Conventions

LogFormat = Literal["json", "plain"]


class SettingsError(ValueError):
    """An environment variable holds a value the operator cannot use; the message names it."""


@dataclass(frozen=True)
class Settings:
    watch_namespaces: tuple[str, ...] = ()  # empty: every namespace
    rule_selector_labels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT.rule_selector_labels))
    tenant_label: str = DEFAULT.tenant_label
    log_format: LogFormat = "json"
    health_port: int = 8080
    metrics_port: int = 9090
    peering_name: str | None = None  # None: standalone (a single replica, no peering objects)
    # Periodic re-reconcile of every resource: repairs drift and refreshes RulesLoaded.
    resync_seconds: float = 300.0
    allowed_email_smarthosts: tuple[str, ...] = ()  # empty: public DNS names, nothing inside the cluster
    # Labels on the stacks' dashboard ConfigMaps, so that Grafana's sidecar loads them.
    dashboard_labels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT.dashboard_labels))

    @property
    def clusterwide(self) -> bool:
        return not self.watch_namespaces

    def conventions(self) -> Conventions:
        return Conventions.from_mapping({"rule_selector_labels": dict(self.rule_selector_labels),
                                         "tenant_label": self.tenant_label,
                                         "dashboard_labels": dict(self.dashboard_labels)})

    def compile_options(self) -> CompileOptions:
        return CompileOptions(conventions=self.conventions(), allowed_email_smarthosts=self.allowed_email_smarthosts)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        values: dict = {}
        if (raw := get("OBSERVATORY_WATCH_NAMESPACES")) is not None:
            values["watch_namespaces"] = tuple(sorted({n.strip() for n in raw.split(",") if n.strip()}))
        for name, key in (("OBSERVATORY_RULE_SELECTOR_LABELS", "rule_selector_labels"),
                          ("OBSERVATORY_DASHBOARD_LABELS", "dashboard_labels")):
            if (raw := get(name)) is not None:
                values[key] = _labels(name, raw)
        if (raw := get("OBSERVATORY_TENANT_LABEL")) is not None:
            values["tenant_label"] = raw
        if (raw := get("OBSERVATORY_LOG_FORMAT")) is not None:
            if raw not in ("json", "plain"):
                raise SettingsError(f"OBSERVATORY_LOG_FORMAT: must be json or plain, got {raw!r}")
            values["log_format"] = raw
        for name, key in (("OBSERVATORY_HEALTH_PORT", "health_port"), ("OBSERVATORY_METRICS_PORT", "metrics_port")):
            if (raw := get(name)) is not None:
                if not raw.isdigit() or not 0 < int(raw) < 65536:
                    raise SettingsError(f"{name}: must be a port number, got {raw!r}")
                values[key] = int(raw)
        values["peering_name"] = get("OBSERVATORY_PEERING_NAME")
        if (raw := get("OBSERVATORY_RESYNC_SECONDS")) is not None:
            try:
                values["resync_seconds"] = float(raw)
            except ValueError:
                raise SettingsError(f"OBSERVATORY_RESYNC_SECONDS: must be a number, got {raw!r}") from None
            if values["resync_seconds"] <= 0:
                raise SettingsError("OBSERVATORY_RESYNC_SECONDS: must be positive")
        if (raw := get("OBSERVATORY_ALLOWED_EMAIL_SMARTHOSTS")) is not None:
            try:
                values["allowed_email_smarthosts"] = tuple(sorted({smarthost(h.strip()) for h in raw.split(",") if h.strip()}))
            except ValueError as err:
                raise SettingsError(f"OBSERVATORY_ALLOWED_EMAIL_SMARTHOSTS: {err}") from None
        return cls(**values)


def _labels(name: str, raw: str) -> dict[str, str]:
    try:
        labels = json.loads(raw)
    except ValueError as e:
        raise SettingsError(f"{name}: not JSON: {e}") from None
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise SettingsError(f"{name}: must be a JSON object of strings")
    return labels
