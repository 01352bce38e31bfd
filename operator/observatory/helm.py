"""The Helm adapter: the only module that drives helm (pyhelm3 over the real `helm` binary).

A release is installed or upgraded with one `helm upgrade --install`; values go through a
temporary file readable only by the operator (0600) that is deleted right after. What was
installed is recorded in the release itself: its description carries a digest of the chart
reference and values, so "does this release need an upgrade?" is answered by `helm status`, after
a restart too, and a release someone changed by hand is put back.

Helm's error output can quote values or rendered manifests, so every message that leaves this
module is scrubbed of the secret values the caller names (and their base64 forms) first.

With `impersonate`, every command on a namespace's releases runs as the identity it names for that
namespace (`--kube-as-user`, helm 3 and 4 alike: client-go's Impersonate-User on every request,
the charts' `lookup` included), never with the kubeconfig's own credentials.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import pyhelm3.command
import pyhelm3.errors
import yaml

from .compile.stack import DEFAULT_CHARTS, ChartRef, Component, ReleasePlan

DIGEST_PREFIX = "observatory:"
REDACTED = "[redacted]"
ENV_PREFIX = {"phoenix": "OBSERVATORY_PHOENIX_CHART", "langfuse": "OBSERVATORY_LANGFUSE_CHART",
              "collector": "OBSERVATORY_COLLECTOR_CHART"}
# Shorter values could also be ordinary words of helm's output; generated secrets are far longer.
MIN_SECRET_LENGTH = 6


class HelmError(Exception):
    """A helm command failed; `message` is already scrubbed of secrets."""

    def __init__(self, operation: str, release: str, message: str, *, not_found: bool = False):
        self.operation, self.release, self.message, self.not_found = operation, release, message, not_found
        super().__init__(f"helm {operation} {release}: {message}")


@dataclass(frozen=True)
class Release:
    """What helm reports about a release."""

    name: str
    namespace: str
    revision: int
    status: str  # deployed, failed, pending-install, pending-upgrade, ...
    chart: str  # name-version
    digest: str | None  # of chart reference and values, when installed by this adapter


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value (raw, base64 and URL-safe base64) replaced by a marker."""
    forms: set[str] = set()
    for value in secrets:
        if len(value) < MIN_SECRET_LENGTH:
            continue
        raw = value.encode()
        forms |= {value, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
                  base64.b64encode(raw).decode().rstrip("=")}
    for form in sorted(forms, key=len, reverse=True):  # longest first: a secret may contain another
        text = text.replace(form, REDACTED)
    return text


def release_digest(plan: ReleasePlan) -> str:
    """Digest of what a release is made of: chart reference, version and values."""
    document = {"chart": [plan.chart.reference, plan.chart.version, plan.chart.repo_url], "values": plan.values}
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def operator_charts(env: Mapping[str, str] = os.environ) -> dict[Component, ChartRef]:
    """Per-operator chart sources from the environment the chart's Deployment sets.

    OBSERVATORY_<COMPONENT>_CHART is an `oci://` chart reference (with the chart name), an
    `https://` repository URL (the chart keeps its upstream name) or a local path;
    OBSERVATORY_<COMPONENT>_CHART_VERSION overrides the pinned version.
    """
    charts: dict[Component, ChartRef] = {}
    for component, prefix in ENV_PREFIX.items():
        base = DEFAULT_CHARTS[component]
        source = (env.get(prefix) or "").strip()
        version = (env.get(f"{prefix}_VERSION") or "").strip() or base.version
        if source.startswith("oci://"):
            repository, _, name = source.rstrip("/").rpartition("/")
            if repository == "oci:/" or not name:
                raise ValueError(f"{prefix}: an oci:// reference needs a registry path and a chart name, got {source!r}")
            ref = ChartRef(name, version, repository)
        elif source.startswith(("https://", "http://")):
            ref = replace(base, repository=source, path=None, version=version)
        elif source:
            ref = replace(base, repository=None, path=source, version=version)
        else:
            ref = replace(base, version=version)
        charts[component] = ref
    return charts


def kubeconfig_for(server: str, *, token: str | None = None, ca_file: str | None = None,
                   insecure: bool = False, namespace: str = "default") -> str:
    """A kubeconfig for helm from the operator's own API connection."""
    cluster: dict[str, Any] = {"server": server}
    if ca_file:
        cluster["certificate-authority"] = ca_file
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    user = {"token": token} if token else {}
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "observatory",
        "clusters": [{"name": "observatory", "cluster": cluster}],
        "users": [{"name": "observatory", "user": user}],
        "contexts": [{"name": "observatory", "context": {"cluster": "observatory", "user": "observatory",
                                                         "namespace": namespace}}],
    })


def kubeconfig_from_client(configuration: Any) -> str:
    """A kubeconfig from a `kubernetes.client.Configuration` (the one the Kubernetes adapter uses)."""
    auth = (configuration.api_key or {}).get("authorization") or (configuration.api_key or {}).get("BearerToken")
    token = auth.removeprefix("Bearer ").strip() if auth else None
    return kubeconfig_for(configuration.host, token=token, ca_file=configuration.ssl_ca_cert,
                          insecure=not configuration.verify_ssl)


@contextlib.contextmanager
def private_file(content: str, suffix: str) -> Iterator[str]:
    """A temporary file only the operator can read (mkstemp creates it 0600), removed afterwards."""
    fd, path = tempfile.mkstemp(prefix="observatory-", suffix=suffix)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        yield path
    finally:
        os.unlink(path)


class Helm:
    """helm commands for the releases of stacks.

    `kubeconfig` is the text of a kubeconfig (None: helm's own discovery, in-cluster config in a
    pod); `impersonate` maps a release namespace to the user helm acts as there; `wait` makes
    upgrades wait for workloads (the operator watches readiness itself instead, so a reconcile does
    not block for minutes).
    """

    def __init__(self, *, executable: str = "helm", kubeconfig: str | None = None, timeout: str = "5m",
                 wait: bool = False, history_max: int = 10, impersonate: Callable[[str], str] | None = None):
        self._impersonate = impersonate
        self._kubeconfig_text = kubeconfig
        self._kubeconfig_path: str | None = None
        self._executable, self._timeout, self._wait, self._history_max = executable, timeout, wait, history_max
        self.upgrades = 0  # helm upgrade invocations, for tests and metrics

    def _command(self) -> pyhelm3.command.Command:
        if self._kubeconfig_text is not None and self._kubeconfig_path is None:
            fd, self._kubeconfig_path = tempfile.mkstemp(prefix="observatory-kubeconfig-", suffix=".yaml")
            with os.fdopen(fd, "w") as handle:
                handle.write(self._kubeconfig_text)
        return pyhelm3.command.Command(executable=self._executable, kubeconfig=self._kubeconfig_path,
                                       default_timeout=self._timeout, history_max_revisions=self._history_max)

    def close(self) -> None:
        if self._kubeconfig_path is not None:
            os.unlink(self._kubeconfig_path)
            self._kubeconfig_path = None

    async def _run(self, operation: str, release: str, namespace: str, args: list[Any], secrets: Iterable[str]) -> bytes:
        args = [*args, "--namespace", namespace]
        if self._impersonate is not None:
            args += ["--kube-as-user", self._impersonate(namespace)]
        try:
            return await self._command().run(args)
        except pyhelm3.errors.Error as e:
            message = scrub(e.stderr.decode(errors="replace").strip(), secrets)
            raise HelmError(operation, release, message or f"exit status {e.returncode}",
                            not_found=isinstance(e, pyhelm3.errors.ReleaseNotFoundError)) from None

    async def upgrade(self, plan: ReleasePlan, *, labels: Mapping[str, str] = {}, secrets: Iterable[str] = ()) -> Release:
        """`helm upgrade --install` of one release plan; the release description records its digest.

        `labels` go on the release record (`--labels`, helm 3.13+ and 4; kept by later upgrades and
        rollbacks, which merge or copy them: helm/helm pkg/action/upgrade.go mergeCustomLabels,
        rollback.go). The Secrets storage driver puts them on the record Secret's labels."""
        secrets = list(secrets)
        chart = plan.chart
        args: list[Any] = ["upgrade", plan.name, chart.reference, "--install",
                           "--history-max", self._history_max, "--timeout", self._timeout, "--output", "json",
                           "--description", DIGEST_PREFIX + release_digest(plan)]
        if labels:
            args += ["--labels", ",".join(f"{k}={v}" for k, v in sorted(labels.items()))]
        if chart.version:
            args += ["--version", chart.version]
        if chart.repo_url:
            args += ["--repo", chart.repo_url]
        if self._wait:
            args.append("--wait")
        self.upgrades += 1
        with private_file(json.dumps(plan.values, sort_keys=True), ".json") as values_file:
            out = await self._run("upgrade", plan.name, plan.namespace, [*args, "--values", values_file], secrets)
        # helm 4 prints OCI pull progress before the JSON document.
        return _release(json.loads(out[out.index(b"{"):]), plan.namespace)

    async def history(self, name: str, namespace: str, *, last: int | None = None) -> list[Release]:
        """The release's revisions (the `last` ones, default as many as helm keeps), oldest first;
        empty when there is no such release."""
        # `helm history` reports chart and description, which `helm status` leaves out.
        args = ["history", name, "--max", last or self._history_max, "--output", "json"]
        try:
            out = await self._run("history", name, namespace, args, ())
        except HelmError as e:
            if e.not_found:
                return []
            raise
        return sorted((Release(name=name, namespace=namespace, revision=int(r["revision"]), status=r["status"],
                               chart=r["chart"], digest=_digest(r.get("description") or ""))
                       for r in json.loads(out)), key=lambda r: r.revision)

    async def status(self, name: str, namespace: str) -> Release | None:
        """The release's latest revision, or None when there is no such release."""
        revisions = await self.history(name, namespace, last=1)
        return revisions[-1] if revisions else None

    async def rollback(self, name: str, namespace: str, revision: int, *, secrets: Iterable[str] = ()) -> None:
        """Roll a release back to `revision`. Unlike an upgrade, helm rolls back whatever state the
        latest revision is in, pending too (helm/helm pkg/action/rollback.go prepareRollback has
        no IsPending check; upgrade.go prepareUpgrade refuses with errPending)."""
        await self._run("rollback", name, namespace, ["rollback", name, revision, "--history-max", self._history_max,
                                                      "--timeout", self._timeout], secrets)

    async def get_values(self, name: str, namespace: str) -> dict[str, Any]:
        """The user-supplied values of the deployed revision."""
        out = await self._run("get values", name, namespace, ["get", "values", name, "--output", "json"], ())
        return json.loads(out) or {}

    async def uninstall(self, name: str, namespace: str, *, secrets: Iterable[str] = ()) -> bool:
        """Uninstall a release; False when it did not exist."""
        try:
            await self._run("uninstall", name, namespace, ["uninstall", name, "--timeout", self._timeout], secrets)
        except HelmError as e:
            if e.not_found:
                return False
            raise
        return True


def _digest(description: str) -> str | None:
    return description.removeprefix(DIGEST_PREFIX) if description.startswith(DIGEST_PREFIX) else None


def _release(data: Mapping[str, Any], namespace: str) -> Release:
    info = data.get("info") or {}
    meta = (data.get("chart") or {}).get("metadata") or {}
    return Release(name=data["name"], namespace=data.get("namespace") or namespace, revision=int(data.get("version") or 0),
                   status=info.get("status") or "unknown", chart=f"{meta.get('name')}-{meta.get('version')}",
                   digest=_digest(info.get("description") or ""))
