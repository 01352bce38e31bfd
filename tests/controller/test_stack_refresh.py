"""The readiness refresh reports only the generation its states were reconciled at: kopf's body is
live (replaced in place as events arrive) and may lag, or overtake, the reconcile that left them."""

from __future__ import annotations

import asyncio

import kopf
from observatory.compile import CompileOptions
from observatory.controller.metrics import Metrics
from observatory.controller.stack_reconcile import StackController
from observatory.controller.stack_status import ComponentState
from observatory.models import parse_resource


class FakeKube:
    """The calls refresh makes: workload readiness and the status write (recorded)."""

    def __init__(self) -> None:
        self.patches: list[dict] = []

    def as_installer(self, namespace: str) -> FakeKube:
        return self

    def workloads(self, namespace: str, release: str) -> list[dict]:
        return [{"kind": "Deployment", "name": release, "available": 1, "replicas": 1, "current": True}]

    def patch_status(self, plural: str, namespace: str, name: str, status: dict, *before: dict) -> None:
        self.patches.append(status)

    def post_event(self, *args: object) -> None:
        pass


class SignallingLock(asyncio.Lock):
    """A lock that tells when someone starts waiting for it (refresh has read what it reads first)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = asyncio.Event()

    async def acquire(self) -> bool:
        self.asked.set()
        return await super().acquire()


def stack_body(generation: int, observed: int) -> dict:
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStack",
            "metadata": {"name": "s1", "namespace": "team-a", "uid": "u1", "generation": generation},
            "spec": {"langfuse": {"enabled": False}, "phoenix": {"enabled": False}},
            "status": {"observedGeneration": observed}}


def controller_with(kube: FakeKube, generation: int, phase: str, message: str = "") -> StackController:
    controller = StackController(kube=kube, helm=None, options=CompileOptions(), metrics=Metrics())
    remember(controller, generation, phase, message)
    return controller


def remember(controller: StackController, generation: int, phase: str, message: str = "") -> None:
    """What a reconcile of `generation` leaves for the refresh."""
    stack = parse_resource({k: v for k, v in stack_body(generation, generation).items() if k != "status"})
    controller._last["u1"] = (generation, stack, [ComponentState("collector", "s1-collector", phase, message)], None)


async def test_refresh_does_not_report_states_of_another_generation() -> None:
    kube = FakeKube()
    # A reconcile of generation 3 (read from the API, e.g. after a class change) left its states;
    # kopf's body still says 2, observed 2.
    controller = controller_with(kube, 3, "Progressing")
    await controller.refresh(kopf.Body(stack_body(2, 2)))
    assert kube.patches == []
    await controller.refresh(kopf.Body(stack_body(3, 3)))
    assert [p["observedGeneration"] for p in kube.patches] == [3]


async def test_refresh_reads_the_body_after_waiting_for_the_reconcile() -> None:
    kube = FakeKube()
    controller = controller_with(kube, 1, "Progressing")
    body = kopf.Body(stack_body(1, 1))
    lock = controller._locks["u1"] = SignallingLock()
    await lock.acquire()  # a reconcile of generation 2 is running
    lock.asked.clear()
    refresh = asyncio.create_task(controller.refresh(body))
    await lock.asked.wait()  # the refresh waits for the reconcile
    body._replace_with(stack_body(2, 1))  # its event: the spec changed, its status not seen yet
    remember(controller, 2, "Failed", "Killed")
    lock.release()
    await refresh
    assert kube.patches == []  # neither generation 1 with generation 2's states, nor 2 unconfirmed
