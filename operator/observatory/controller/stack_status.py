"""The status stanza of an ObservabilityStack from what a reconcile found. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..models.common import Condition
from ..models.stack import (
    ComponentsStatus,
    ComponentStatus,
    Endpoints,
    InstrumentationStatus,
    LangfuseLogin,
    ObservabilityStackStatus,
)
from .status import Cond

READY, PROGRESSING, DEGRADED = "Ready", "Progressing", "Degraded"
COMPONENT_CONDITIONS = {"phoenix": "PhoenixReady", "langfuse": "LangfuseReady", "collector": "CollectorReady"}
ORDER = (READY, PROGRESSING, DEGRADED, *COMPONENT_CONDITIONS.values())
# Each phase's condition reason.
Phase = Literal["Ready", "Progressing", "Failed", "Blocked", "Conflict"]
REASONS: dict[Phase, str] = {"Ready": "Ready", "Progressing": "WorkloadsNotReady", "Failed": "HelmFailed",
                             "Blocked": "PrerequisiteMissing", "Conflict": "ReleaseConflict"}
BROKEN: tuple[Phase, ...] = ("Failed", "Blocked", "Conflict")


@dataclass(frozen=True)
class ComponentState:
    component: str
    release: str
    phase: Phase
    message: str = ""
    chart: str | None = None
    revision: int | None = None


def readiness(workloads: Sequence[Mapping[str, Any]]) -> tuple[bool, str]:
    """Whether every workload of a release is available, and a message naming those that are not."""
    if not workloads:
        return False, "no workloads found yet"
    waiting = [f"{w['kind']} {w['name']} {w['available']}/{w['replicas']} available"
               for w in workloads if not (w["current"] and w["available"] >= w["replicas"])]
    if waiting:
        return False, "waiting for " + ", ".join(waiting)
    return True, f"{len(workloads)} workload(s) available"


def conditions(states: Sequence[ComponentState], invalid: str | None = None) -> list[Cond]:
    """Overall Ready/Progressing/Degraded and one condition per component."""
    if invalid is not None:
        return [Cond(READY, "False", "InvalidSpec", invalid), Cond(PROGRESSING, "False", "InvalidSpec"),
                Cond(DEGRADED, "True", "InvalidSpec", invalid)]
    out = [Cond(COMPONENT_CONDITIONS[s.component], "True" if s.phase == "Ready" else "False", REASONS[s.phase], s.message)
           for s in states]
    broken = [s for s in states if s.phase in BROKEN]
    waiting = [s for s in states if s.phase == "Progressing"]
    if broken:
        reason = REASONS[broken[0].phase]
        summary = "; ".join(f"{s.component}: {s.message}" for s in broken)
        out += [Cond(READY, "False", reason, summary), Cond(DEGRADED, "True", reason, summary)]
    else:
        out.append(Cond(DEGRADED, "False", "AsExpected"))
        out.append(Cond(READY, "False", "WorkloadsNotReady", ", ".join(s.component for s in waiting) + " not ready yet")
                   if waiting else Cond(READY, "True", "Ready", "all components ready"))
    out.append(Cond(PROGRESSING, "True", "WorkloadsNotReady", ", ".join(s.component for s in waiting))
               if waiting else Cond(PROGRESSING, "False", "Settled"))
    return out


def build_status(previous: Mapping[str, Any] | None, conds: Sequence[Cond], generation: int | None, now: str, *,
                 states: Sequence[ComponentState] = (), endpoints: Mapping[str, str] | None = None,
                 config_map: str | None = None, langfuse_login: Mapping[str, str] | None = None,
                 class_name: str | None = None, instrumentation: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The status to write; lastTransitionTime moves only when a condition's status changes."""
    before = {c.get("type"): c for c in (previous or {}).get("conditions") or []}
    merged = []
    for cond in sorted(conds, key=lambda c: ORDER.index(c.type)):
        old = before.get(cond.type) or {}
        keep = old.get("status") == cond.status and old.get("lastTransitionTime")
        merged.append(Condition(type=cond.type, status=cond.status, reason=cond.reason, message=cond.message,
                                observed_generation=generation, last_transition_time=old["lastTransitionTime"] if keep else now))
    components = ComponentsStatus(**{s.component: ComponentStatus(release=s.release, chart=s.chart, revision=s.revision,
                                                                  ready=s.phase == "Ready", message=s.message)
                                     for s in states})
    status = ObservabilityStackStatus(conditions=merged, observed_generation=generation, components=components, class_name=class_name,
                                      endpoints=Endpoints.model_validate(dict(endpoints or {})), config_map=config_map,
                                      langfuse_login=LangfuseLogin.model_validate(langfuse_login) if langfuse_login else None,
                                      instrumentation=InstrumentationStatus.model_validate(instrumentation) if instrumentation else None)
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)
