"""The status stanza of an AlertRule or SLO, computed from what a reconcile found. Pure."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..models.common import Condition, RuleStatus

READY, VALID, RULES_LOADED = "Ready", "Valid", "RulesLoaded"
CONDITION_ORDER = (READY, VALID, RULES_LOADED)


@dataclass(frozen=True)
class Cond:
    type: str
    status: str
    reason: str
    message: str = ""


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(previous: Sequence[Mapping[str, Any]], current: Sequence[Cond], generation: int | None,
                     now: str) -> list[Condition]:
    """`current` as conditions; lastTransitionTime moves only when a condition's status changes."""
    before = {c.get("type"): c for c in previous}
    merged = []
    for cond in sorted(current, key=lambda c: CONDITION_ORDER.index(c.type)):
        old = before.get(cond.type)
        changed = old is None or old.get("status") != cond.status
        merged.append(Condition(type=cond.type, status=cond.status, reason=cond.reason, message=cond.message,
                                observed_generation=generation,
                                last_transition_time=now if changed or not old.get("lastTransitionTime") else old["lastTransitionTime"]))
    return merged


def build_status(previous: Mapping[str, Any] | None, conditions: Sequence[Cond], generation: int | None, *,
                 prometheus_rules: Sequence[str] | None = None, alertmanager_config: str | None = None,
                 counts: tuple[int, int] | None = None, now: str | None = None) -> dict[str, Any]:
    """The status to write. `prometheus_rules` None keeps what the previous status reported (the
    last good objects stay in place while the spec is invalid)."""
    previous = previous or {}
    if prometheus_rules is None:
        prometheus_rules = previous.get("prometheusRules") or []
        alertmanager_config = previous.get("alertmanagerConfig")
        counts = (previous.get("recordingRules", 0), previous.get("alertingRules", 0))
    recording, alerting = counts or (0, 0)
    status = RuleStatus(
        conditions=merge_conditions(previous.get("conditions") or [], conditions, generation, now or now_rfc3339()),
        observed_generation=generation,
        prometheus_rules=list(prometheus_rules),
        alertmanager_config=alertmanager_config,
        recording_rules=recording,
        alerting_rules=alerting,
    )
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def transitions(previous: Mapping[str, Any] | None, status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Conditions whose status or reason differ from before: what deserves a Kubernetes Event."""
    before = {c["type"]: c for c in (previous or {}).get("conditions") or []}
    return [c for c in status.get("conditions") or []
            if (before.get(c["type"]) or {}).get("status") != c["status"]
            or (before.get(c["type"]) or {}).get("reason") != c["reason"]]

