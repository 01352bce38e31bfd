"""One idempotent reconcile for ObservabilityStacks: secrets, prerequisites, Helm releases, the
apps' ConfigMap, the Grafana dashboards' ConfigMap, the default rule pack and status.

Everything inside the stack's namespace — helm (and so the charts' templates and `lookup`), the
generated Secret, the apps' and the dashboards' ConfigMaps, readiness reads — runs as the namespace's
installer ServiceAccount (`StackKube.ensure_installer`), impersonated: a chart sees only that namespace.

Secrets are generated once with `secrets` into a Secret the operator labels as its own, and only
ever read afterwards, so a restart (or another replica) sees the same values. Their values never
reach status, logs or events: helm's error output is scrubbed of them first.

A release is upgraded only when its chart reference or values changed (the digest helm records
in the release description) or its last revision did not deploy. Workload readiness is refreshed
by a cheap timer (`refresh`) that reads Deployments/StatefulSets and never calls helm.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import secrets
import string
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from ..compile import CompileError, CompileOptions, compile_resource
from ..compile.dashboards import dashboard_objects
from ..compile.rules import owner_labels
from ..chartschema import chart_schemas
from ..compile.stack import (
    INSTRUMENTATION_API_VERSION,
    INSTRUMENTATION_CRD,
    ChartRef,
    Component,
    ReleasePlan,
    SecretSpec,
    chart_ref,
    configmap_name,
    endpoints,
    instrumentation_name,
    instrumentation_object,
    langfuse_login,
    otel_configmap_data,
    release_name,
    release_plans,
    required_secrets,
    secret_name,
)
from ..helm import Helm, HelmError, Release, operator_charts, release_digest
from ..models import parse_resource
from ..models.common import ObjectMeta
from ..compile.stackclass import component_class, resolve_class
from ..models.stack import ObservabilityStack
from ..models.stackclass import ObservabilityStackClass
from .kube import ApiProblem, Owner, StatusWrites
from .metrics import Metrics
from .reconcile import REFUSED_RETRY_SECONDS, backoff
from .stack_kube import InstallerConflict, StackKube, installer_user
from .stack_status import ComponentState, build_status, conditions, readiness
from .status import now_rfc3339, transitions

log = logging.getLogger(__name__)

KIND, PLURAL = "ObservabilityStack", "observabilitystacks"
CLASS_PLURAL = "observabilitystackclasses"
COMPONENTS: tuple[Component, ...] = ("phoenix", "langfuse", "collector")
# The Langfuse chart 2.x deploys ClickHouse through the ClickHouse operator; without its CRDs the
# install fails half-way. (cert-manager is needed only by the SeaweedFS subchart's TLS,
# global.seaweedfs.enableSecurity, which Observatory leaves off.)
LANGFUSE_PREREQUISITES = ("clickhouseclusters.clickhouse.com", "keeperclusters.clickhouse.com")
PASSWORD_ALPHABET = string.ascii_letters + string.digits
# On every release Observatory installs: the uid of the stack it belongs to. A release of the same
# name without it (someone's own, or a former stack's of that name) is never upgraded or uninstalled.
OWNER_UID_LABEL = "observatory.dev/owner-uid"
# The apiserver's refusal of a create in a Terminating namespace
# (kubernetes plugin/pkg/admission/namespace/lifecycle/admission.go).
NAMESPACE_TERMINATING = "because it is being terminated"


def generate(spec: SecretSpec) -> str:
    """A fresh value for one generated key (see SecretSpec for the kinds)."""
    if spec.kind == "token":
        return secrets.token_urlsafe(32)
    if spec.kind == "hex32":
        return secrets.token_hex(32)
    if spec.kind == "password":
        return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(24))
    prefix = {"langfuse-public-key": "pk-lf-", "langfuse-secret-key": "sk-lf-"}[spec.kind]
    return prefix + str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))


def build_stack_controller(kube: StackKube, options: CompileOptions, metrics: Metrics, *, kubeconfig: str | None = None,
                           helm_executable: str = "helm", env: Mapping[str, str] | None = None) -> StackController:
    """The stack controller as the operator runs it: chart sources from the operator's environment.

    `kubeconfig` None lets helm use the pod's in-cluster credentials (it re-reads the rotating
    service-account token itself); tests pass one for the emulator. helm acts as each namespace's
    installer."""
    helm = Helm(executable=helm_executable, kubeconfig=kubeconfig, impersonate=installer_user)
    return StackController(kube=kube, helm=helm, options=options,
                           metrics=metrics, charts=operator_charts(os.environ if env is None else env))


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


@dataclass
class StackController:
    kube: StackKube
    helm: Helm
    options: CompileOptions
    metrics: Metrics
    charts: Mapping[Component, ChartRef] = field(default_factory=dict)  # the operator's (env) chart sources
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    # Last reconciled generation, stack and component states by uid, for the readiness refresh.
    _last: dict[str, tuple[int | None, ObservabilityStack, list[ComponentState], ObservabilityStackClass | None]] = field(default_factory=dict)
    _statuses: StatusWrites = field(default_factory=StatusWrites)  # a body kopf hands can predate the last status write

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    async def _api(self, fn: Any, *args: Any) -> Any:
        """The Kubernetes adapter blocks; keep kopf's event loop free."""
        return await asyncio.to_thread(fn, *args)

    def _tenant(self, namespace: str) -> StackKube:
        """The adapter acting as the installer of `namespace`, for every call inside it."""
        return self.kube.as_installer(namespace)

    # --- reconcile --------------------------------------------------------------------------------

    async def reconcile(self, body: Mapping[str, Any], retry: int = 0, classes: Mapping[str, Mapping[str, Any]] = {}) -> None:
        """`classes`: the ObservabilityStackClasses by name, as read (kopf's index of them)."""
        started = time.perf_counter()
        result = "error"
        try:
            async with self._lock(body["metadata"]["uid"]):
                result = await self._reconcile(body, retry, classes)
        except ApiProblem as e:
            self.metrics.errors.labels(KIND, "transient" if e.transient else "rejected").inc()
            raise kopf.TemporaryError(f"API: {e}", delay=backoff(retry) if e.transient else REFUSED_RETRY_SECONDS) from None
        finally:
            self.metrics.reconciles.labels(KIND, result).inc()
            self.metrics.duration.labels(KIND).observe(time.perf_counter() - started)

    async def reconcile_current(self, namespace: str, name: str, classes: Mapping[str, Mapping[str, Any]],
                                when: Callable[[Mapping[str, Any]], bool] = lambda body: True) -> None:
        """Reconcile a stack as it is now (read again: the caller holds no body of it), if `when` it is so;
        one being deleted is left to its deletion handler, which a reconcile would race with reinstalls."""
        body = await self._api(self.kube.get_resource, PLURAL, namespace, name)
        if body is not None and not body["metadata"].get("deletionTimestamp") and when(body):
            await self.reconcile(body, classes=classes)

    async def _reconcile(self, body: Mapping[str, Any], retry: int, classes: Mapping[str, Mapping[str, Any]]) -> str:
        meta = body["metadata"]
        owner = Owner(body["apiVersion"], KIND, meta["namespace"], meta["name"], meta["uid"])
        generation, previous = meta.get("generation"), self._statuses.held(meta["uid"], body)
        try:
            stack = parse_resource({k: v for k, v in body.items() if k != "status"})
            stack_class = resolve_class(stack, classes)
            plans = release_plans(stack, self.options.conventions, self.charts, stack_class, self._schemas(stack_class))
            rules = compile_resource(stack, self.options)
        except CompileError as err:
            message = "; ".join(str(e) for e in err.errors)
            await self._report(owner, generation, previous, conditions([], invalid=message))
            return "invalid"  # nothing installed or changed; a fixed spec triggers the next reconcile

        try:
            await self._api(self.kube.ensure_installer, owner)
        except InstallerConflict as e:
            # Nothing can be installed without the installer's identity; nothing else was changed.
            states = [ComponentState(p.component, p.name, "Blocked", e.message) for p in plans]
            await self._report(owner, generation, previous, conditions(states), states=states, stack=stack)
            raise kopf.TemporaryError(e.message, delay=REFUSED_RETRY_SECONDS) from None
        secret_values = await self._api(self._ensure_secrets, stack)
        if any(p.component == "langfuse" for p in plans) and stack.spec.langfuse.dedicated.clickhouse is None:
            missing = await self._api(self.kube.missing_crds, list(LANGFUSE_PREREQUISITES))
            if missing:
                message = ("the Langfuse chart needs the ClickHouse operator; missing CRDs: "
                           + ", ".join(missing) + " (or set spec.langfuse.dedicated.clickhouse to an external ClickHouse)")
                states = [ComponentState(p.component, p.name, "Blocked" if p.component == "langfuse" else "Progressing",
                                         message if p.component == "langfuse" else "waiting for the Langfuse prerequisites")
                          for p in plans]
                await self._report(owner, generation, previous, conditions(states), states=states, stack=stack,
                                   stack_class=stack_class)
                raise kopf.TemporaryError(message, delay=REFUSED_RETRY_SECONDS)

        await self._api(self.kube.sync_owned, owner, rules)
        labels = owner_labels(self.options.conventions, KIND, stack.name)
        await self._api(self._tenant(stack.namespace).apply_configmap, owner, configmap_name(stack), labels,
                        otel_configmap_data(stack))
        for board in dashboard_objects(stack, self.options.conventions):
            meta = board["metadata"]
            await self._api(self._tenant(stack.namespace).apply_configmap, owner, meta["name"], meta["labels"], board["data"])

        states = [await self._release(plan, owner.uid, secret_values) for plan in plans]
        await self._uninstall_stale(stack, owner.uid, plans, previous, secret_values)
        instrumentation = await self._instrumentation(owner, stack, labels, stack_class)
        await self._report(owner, generation, previous, conditions(states), states=states, stack=stack,
                           stack_class=stack_class, instrumentation=instrumentation)
        self._last[owner.uid] = (generation, stack, states, stack_class)
        self.metrics.owned(KIND, owner.uid, len(rules))
        broken = [s for s in states if s.phase in ("Failed", "Conflict")]
        if broken:
            # A conflict lasts until someone removes the other release: no helm error to back off from.
            raise kopf.TemporaryError("; ".join(f"{s.component}: {s.message}" for s in broken),
                                      delay=backoff(retry) if any(s.phase == "Failed" for s in broken) else REFUSED_RETRY_SECONDS)
        return "applied"

    async def _instrumentation(self, owner: Owner, stack: ObservabilityStack, labels: Mapping[str, str],
                               stack_class: ObservabilityStackClass | None) -> dict[str, Any]:
        """The stack's OpenTelemetry Operator Instrumentation where its CRD is installed (written as the
        installer); what status.instrumentation says about it. The CRD appearing later re-reconciles the
        stacks waiting for it (handlers/stack.py)."""
        name, tenant = instrumentation_name(stack), self._tenant(stack.namespace)
        if not stack.spec.instrumentation.enabled:
            await self._api(tenant.delete_instrumentation, owner, INSTRUMENTATION_API_VERSION, name)
            return {"created": False, "reason": "spec.instrumentation.enabled is false"}
        if await self._api(self.kube.missing_crds, [INSTRUMENTATION_CRD]):
            return {"created": False, "reason": (
                f"the OpenTelemetry Operator is not installed (no CRD {INSTRUMENTATION_CRD}); the Instrumentation "
                f"{name} is created when it is, or set spec.instrumentation.enabled to false")}
        try:
            await self._api(tenant.apply_instrumentation, owner, instrumentation_object(stack, labels, stack_class))
        except ApiProblem as e:
            if e.transient:
                raise
            # 404: the CRD exists but does not serve v1alpha1 (yet: a new CRD is served once Established);
            # anything else (a 403 from RBAC changed by hand) needs a human, and must not hold up the releases.
            return {"created": False, "reason": f"the Instrumentation {name} could not be written: {e}"}
        return {"created": True, "name": name}

    def _schemas(self, stack_class: ObservabilityStackClass | None) -> dict[str, dict[str, Any]]:
        """Values schemas of the charts the stack installs, where they are local files (read, not pulled)."""
        return {c: chart_schemas(chart_ref(c, component_class(stack_class, c).chart, self.charts).path) for c in COMPONENTS}

    def _ensure_secrets(self, stack: ObservabilityStack) -> list[str]:
        """Create the generated Secret(s) or add missing keys; existing values are never changed.
        Returns every value, for scrubbing helm's output."""
        values: list[str] = []
        labels = owner_labels(self.options.conventions, KIND, stack.name)
        kube = self._tenant(stack.namespace)
        for name, specs in required_secrets(stack).items():
            for _attempt in range(3):  # a concurrent writer (another replica) makes us re-read
                current = kube.read_secret_data(stack.namespace, name)
                data, version = current if current is not None else ({}, None)
                new = {spec.key: _b64(generate(spec)) for spec in specs if spec.key not in data}
                try:
                    if current is None:
                        kube.create_secret(stack.namespace, name, labels, new)
                    elif new:
                        kube.add_secret_keys(stack.namespace, name, version, new)
                except ApiProblem as e:
                    if e.code == 409:
                        continue
                    raise
                values += [base64.b64decode(v).decode() for v in {**data, **new}.values()]
                break
            else:
                raise ApiProblem(409, f"Secret {name} kept changing while its keys were added")
        return values

    async def _release(self, plan: ReleasePlan, uid: str, secret_values: list[str]) -> ComponentState:
        digest = release_digest(plan)
        try:
            release = await self.helm.status(plan.name, plan.namespace)
            if release is not None and not await self._owns(plan.namespace, plan.name, uid):
                return ComponentState(plan.component, plan.name, "Conflict", (
                    f"a Helm release {plan.name} exists that was not installed by Observatory for this stack; it is "
                    f"left alone: uninstall it (helm uninstall {plan.name} -n {plan.namespace}) or give the stack another name"))
            if release is not None and release.status.startswith("pending-"):
                release = await self._recover(release, secret_values)
            if release is None or release.digest != digest or release.status != "deployed":
                log.info("helm upgrade of %s/%s (%s)", plan.namespace, plan.name,
                         "install" if release is None else f"was revision {release.revision}, {release.status}")
                release = await self.helm.upgrade(plan, labels={OWNER_UID_LABEL: uid}, secrets=secret_values)
        except HelmError as e:
            return ComponentState(plan.component, plan.name, "Failed", e.message)
        workloads = await self._api(self._tenant(plan.namespace).workloads, plan.namespace, plan.name)
        ready, message = readiness(workloads)
        return ComponentState(plan.component, plan.name, "Ready" if ready else "Progressing", message,
                              chart=release.chart, revision=release.revision)

    async def _recover(self, pending: Release, secret_values: list[str]) -> Release | None:
        """Unlock a release whose latest revision is pending-install/-upgrade/-rollback.

        helm marks a revision pending before it touches any object and settles it at the end; a
        helm killed in between (the operator's pod replaced mid-upgrade) leaves it pending, and
        helm refuses every later upgrade with "another operation (install/upgrade/rollback) is in
        progress" (helm/helm pkg/action/upgrade.go, errPending). Here no operation of ours can be
        running: every helm command on a stack's releases runs under the stack's lock, which the
        caller holds, and only the peering leader reconciles. So roll back to the last deployed
        revision, or uninstall a release that never deployed; the caller then upgrades as usual.
        """
        deployed = [r for r in await self.helm.history(pending.name, pending.namespace) if r.status == "deployed"]
        log.warning("helm release %s/%s is stuck at revision %d (%s); %s", pending.namespace, pending.name,
                    pending.revision, pending.status,
                    f"rolling back to revision {deployed[-1].revision}" if deployed else "uninstalling it (never deployed)")
        if deployed:
            await self.helm.rollback(pending.name, pending.namespace, deployed[-1].revision, secrets=secret_values)
            return await self.helm.status(pending.name, pending.namespace)
        await self.helm.uninstall(pending.name, pending.namespace, secrets=secret_values)
        return None

    async def _owns(self, namespace: str, release: str, uid: str) -> bool:
        return await self._api(self._tenant(namespace).release_label, namespace, release, OWNER_UID_LABEL) == uid

    async def _uninstall_stale(self, stack: ObservabilityStack, uid: str, plans: list[ReleasePlan],
                               previous: Mapping[str, Any], secret_values: list[str]) -> None:
        """Releases of components the spec no longer has (e.g. Langfuse switched to external)."""
        wanted = {p.name for p in plans}
        for component, reported in sorted(((previous.get("components") or {})).items()):
            name = (reported or {}).get("release")
            if (name and name not in wanted and name == release_name(stack, component)
                    and await self._owns(stack.namespace, name, uid)):
                await self.helm.uninstall(name, stack.namespace, secrets=secret_values)

    # --- readiness refresh ------------------------------------------------------------------------

    async def refresh(self, body: Mapping[str, Any]) -> None:
        """Re-read workload readiness of the last reconciled releases; writes status only on change."""
        async with self._lock(body["metadata"]["uid"]):
            # kopf's body is live (replaced as events arrive): metadata and status are read together,
            # after waiting for a reconcile, and only the generation the states belong to is reported.
            meta = body["metadata"]
            previous = self._statuses.held(meta["uid"], body)
            last = self._last.get(meta["uid"])
            if last is None or not last[0] == meta.get("generation") == previous.get("observedGeneration"):
                return  # not reconciled by this process yet, or a reconcile is due anyway
            generation, stack, states, stack_class = last
            fresh = []
            for state in states:
                if state.phase in ("Ready", "Progressing"):
                    ready, message = readiness(await self._api(self._tenant(stack.namespace).workloads, stack.namespace,
                                                               state.release))
                    state = ComponentState(state.component, state.release, "Ready" if ready else "Progressing", message,
                                           chart=state.chart, revision=state.revision)
                fresh.append(state)
            self._last[meta["uid"]] = (generation, stack, fresh, stack_class)
            owner = Owner(body["apiVersion"], KIND, meta["namespace"], meta["name"], meta["uid"])
            await self._report(owner, generation, previous, conditions(fresh),
                               states=fresh, stack=stack, stack_class=stack_class)

    # --- deletion -----------------------------------------------------------------------------------

    async def delete(self, body: Mapping[str, Any]) -> None:
        """Uninstall every release of the stack; with deletionPolicy Delete also the PVCs and Secrets
        helm keeps, and the generated Secret."""
        meta = body["metadata"]
        # Names depend on the stack's name only, so a stack with an invalid spec, or a name too long
        # to install, is cleaned up too: built unvalidated.
        stack = ObservabilityStack.model_construct(
            metadata=ObjectMeta.model_construct(name=meta["name"], namespace=meta["namespace"]))
        remove_data = (body.get("spec") or {}).get("deletionPolicy") == "Delete"
        owner = Owner(body["apiVersion"], KIND, meta["namespace"], meta["name"], meta["uid"])
        tenant = self._tenant(stack.namespace)
        async with self._lock(meta["uid"]):
            # A stack reconciled by an operator version without installers has none yet.
            try:
                await self._api(self.kube.ensure_installer, owner)
            except InstallerConflict as e:
                raise kopf.TemporaryError(e.message, delay=REFUSED_RETRY_SECONDS) from None
            except ApiProblem as e:
                if e.code != 403 or NAMESPACE_TERMINATING not in e.message:
                    raise
                # The namespace controller deletes the releases' objects and records itself, and the
                # installer's binding may be gone already: nothing is left to uninstall as it.
                log.info("namespace %s is being deleted: the releases of stack %s go with it", stack.namespace, stack.name)
                self.forget(meta["uid"])
                return
            current = await self._api(tenant.read_secret_data, stack.namespace, secret_name(stack))
            secret_values = [base64.b64decode(v).decode() for v in (current[0] if current else {}).values()]
            try:
                for component in COMPONENTS:
                    name = release_name(stack, component)
                    if not await self._owns(stack.namespace, name, meta["uid"]):
                        continue  # none, or not installed for this stack
                    # Data first: a retry after a failed uninstall still finds the release, hence its data.
                    if remove_data:
                        await self._api(tenant.delete_release_data, stack.namespace, name)
                    await self.helm.uninstall(name, stack.namespace, secrets=secret_values)
            except HelmError as e:
                raise kopf.TemporaryError(str(e), delay=REFUSED_RETRY_SECONDS) from None
            if remove_data:
                await self._api(tenant.delete_secret, stack.namespace, secret_name(stack))
        self.forget(meta["uid"])

    def forget(self, uid: str) -> None:
        """Drop what this process remembers of a stack deleted."""
        self._last.pop(uid, None)
        self._statuses.forget(uid)
        self._locks.pop(uid, None)
        self.metrics.owned(KIND, uid, None)

    # --- status -------------------------------------------------------------------------------------

    async def _report(self, owner: Owner, generation: int | None, previous: Mapping[str, Any], conds: list,
                      *, states: list[ComponentState] = (), stack: ObservabilityStack | None = None,
                      stack_class: ObservabilityStackClass | None = None,
                      instrumentation: Mapping[str, Any] | None = None) -> None:
        """`instrumentation` None: as last reported (a reconcile that stops early changed nothing of it)."""
        status = build_status(previous, conds, generation, now_rfc3339(), states=states,
                              instrumentation=instrumentation or previous.get("instrumentation"),
                              class_name=stack_class.name if stack_class else None,
                              endpoints=endpoints(stack) if stack else None,
                              config_map=configmap_name(stack) if stack and states else None,
                              langfuse_login=langfuse_login(stack) if stack and states else None)
        if not await self._api(self._statuses.write, self.kube, PLURAL, owner, status, previous):
            return
        for cond in transitions(previous, status):
            bad = cond["status"] == ("True" if cond["type"] == "Degraded" else "False") and cond["type"] != "Progressing"
            note = f"{cond['type']}={cond['status']}" + (f": {cond['message']}" if cond["message"] else "")
            await self._api(self.kube.post_event, owner, "Warning" if bad else "Normal", cond["reason"], note)
