"""Where alerts go: receivers that reference Secrets, never inline credentials."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from .common import CRModel, Duration, LabelName, SecretKeyRef, Severity

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
Email = Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254)]


class SlackReceiver(CRModel):
    """Slack incoming webhook."""

    api_url: SecretKeyRef = Field(alias="apiURL", description="Secret key holding the Slack webhook URL.")
    channel: str | None = Field(default=None, description="Channel to post to, e.g. #llm-alerts.", max_length=80)
    send_resolved: bool = Field(default=True, description="Also notify when the alert resolves.")


class EmailReceiver(CRModel):
    """Email through an SMTP smarthost."""

    to: list[Email] = Field(min_length=1, description="Recipient addresses.")
    from_: Email | None = Field(default=None, alias="from", description="Sender address; Alertmanager's global default when unset.")
    smarthost: str | None = Field(default=None, pattern=r"^[^:\s]+:[0-9]{1,5}$",
                                  description="SMTP host:port; Alertmanager's global default when unset.")
    auth_username: str | None = Field(default=None, description="SMTP user name.", max_length=254)
    auth_password: SecretKeyRef | None = Field(default=None, description="Secret key holding the SMTP password.")
    send_resolved: bool = Field(default=False, description="Also notify when the alert resolves.")


class PagerDutyReceiver(CRModel):
    """PagerDuty Events API v2."""

    routing_key: SecretKeyRef = Field(description="Secret key holding the PagerDuty integration (routing) key.")
    send_resolved: bool = Field(default=True, description="Also notify when the alert resolves.")


class WebhookReceiver(CRModel):
    """Generic webhook (Alertmanager webhook payload)."""

    url: SecretKeyRef = Field(description="Secret key holding the webhook URL (URLs often embed tokens).")
    max_alerts: int = Field(default=0, ge=0, description="Maximum alerts per message; 0 means all.")
    send_resolved: bool = Field(default=True, description="Also notify when the alert resolves.")


class Receiver(CRModel):
    """One notification target; set exactly one of slack, email, pagerduty, webhook."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63, description="Receiver name, unique in this resource.")
    severities: list[Severity] = Field(default_factory=list, description="Severities this receiver gets; empty means all.")
    slack: SlackReceiver | None = Field(default=None, description="Send to a Slack incoming webhook.")
    email: EmailReceiver | None = Field(default=None, description="Send email through an SMTP smarthost.")
    pagerduty: PagerDutyReceiver | None = Field(default=None, description="Page through the PagerDuty Events API v2.")
    webhook: WebhookReceiver | None = Field(default=None, description="Post the Alertmanager webhook payload to a URL.")

    @model_validator(mode="after")
    def _exactly_one_target(self) -> "Receiver":
        set_targets = [n for n in ("slack", "email", "pagerduty", "webhook") if getattr(self, n) is not None]
        if len(set_targets) != 1:
            raise ValueError(f"set exactly one of slack, email, pagerduty, webhook (got {set_targets or 'none'})")
        return self


class Routing(CRModel):
    """Alertmanager routing for the alerts of this resource."""

    receivers: list[Receiver] = Field(min_length=1, description="Notification targets; each sets exactly one of slack, email, pagerduty, webhook.")
    group_by: list[LabelName] = Field(default_factory=lambda: ["alertname", "severity"],
                                      description="Labels that group alerts into one notification.")
    group_wait: Duration | None = Field(default=None, description="Wait before the first notification of a group.")
    group_interval: Duration | None = Field(default=None, description="Wait before notifying about new alerts in a group.")
    repeat_interval: Duration | None = Field(default=None, description="Wait before repeating a notification.")

    @model_validator(mode="after")
    def _unique_names(self) -> "Routing":
        names = [r.name for r in self.receivers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"receiver names must be unique: {', '.join(duplicates)}")
        return self
