"""`observatory local up`: the compiled objects realised as processes on 127.0.0.1.

Prometheus loads the generated rule files and scrapes the apps that announce themselves in
`<data>/targets/` (file-based discovery standing in for ServiceMonitors; the `namespace` label
comes from there, as it would from the pod). Alertmanager gets the routes of every generated
AlertmanagerConfig; its receivers deliver to the local receiver unless their Secrets are provided
(see amconfig). Phoenix runs from its own virtualenv. Everything lives in one data folder.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self

from .. import loader, promtool
from ..compile import CompileOptions
from ..models.common import duration_seconds
from ..models.stack import ObservabilityStack
from ..yamlio import dump
from . import phoenix
from .amconfig import LocalSecrets, RootRoute, Sink, alertmanager_yaml
from .guide import DASHBOARDS_DIR, NOTIFICATIONS_FILE
from .net import free_port, is_up
from .receiver import LocalReceiver, Notification

COMPONENTS = ("phoenix", "prometheus", "alertmanager")
STACK_FILE = "stack.json"
# The base Alertmanager config's root route (a platform choice, not from the CRs): notify quickly.
LOCAL_ROOT_ROUTE = RootRoute(group_wait="1s", group_interval="10s", repeat_interval="1h")
TERMINATE_GRACE_SECONDS = 15
PROGRESS_SECONDS = 5  # how often a wait says what it is still waiting for


class LocalError(RuntimeError):
    pass


@dataclass(frozen=True)
class Settings:
    files: tuple[str, ...]
    data_dir: Path
    default_namespace: str = "default"
    options: CompileOptions = field(default_factory=CompileOptions)
    # Scrape and rule evaluation interval; rule groups with a longer `interval` are capped to it, so
    # that slow groups (prices: 1m, SLO budget: 5m) produce their first sample within seconds.
    interval: str = "2s"
    components: tuple[str, ...] = COMPONENTS
    fresh: bool = False
    ready_timeout: float = 300.0


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    ready_url: str
    ports: list[int]
    log: Path


@dataclass
class StackInfo:
    data_dir: str
    urls: dict[str, str]
    pids: dict[str, int]
    ports: dict[str, list[int]]
    targets_dir: str
    projects: dict[str, str]  # namespace → Phoenix project
    redaction: dict[str, Any]  # namespace → RedactionPolicy (by alias) from its ObservabilityStack
    destinations: list[dict[str, Any]] = field(default_factory=list)
    rule_files: list[str] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)  # process → its log file
    dashboards: list[str] = field(default_factory=list)  # Grafana dashboard files for import

    @property
    def otlp_traces_url(self) -> str | None:
        return self.urls["phoenix"] + "/v1/traces" if "phoenix" in self.urls else None


def read_info(data_dir: Path) -> StackInfo:
    """The running stack's addresses, as `local up` wrote them."""
    path = data_dir / STACK_FILE
    if not path.is_file():
        raise LocalError(f"no local stack is running in {data_dir} (start one with `observatory local up`)")
    return StackInfo(**json.loads(path.read_text()))


def _die_with_parent() -> None:
    # Children must not outlive a `local up` that is killed outright (SIGKILL skips our cleanup).
    PR_SET_PDEATHSIG = 1
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
    _PREEXEC: Callable[[], None] | None = _die_with_parent if hasattr(_LIBC, "prctl") else None
except OSError:  # not Linux
    _PREEXEC = None


def project_name(stack: ObservabilityStack) -> str:
    # One Phoenix serves every namespace here, so the namespace prefixes the stack's project.
    return f"{stack.namespace}-{stack.spec.phoenix.project_name or stack.name}"


class LocalStack:
    def __init__(self, settings: Settings, log: Callable[[str], None] = print,
                 on_notification: Callable[[Notification], None] | None = None):
        self.settings = settings
        self.log = log
        self.on_notification = on_notification
        self.processes: list[Process] = []
        self.receiver: LocalReceiver | None = None
        self.info: StackInfo | None = None
        self.objects: list[dict[str, Any]] = []
        self.resources: list[Any] = []

    # --- configuration -------------------------------------------------------------------

    def _compile(self) -> None:
        loaded = loader.read(self.settings.files, self.settings.default_namespace)
        # The prices group runs at the local interval (capped below): budgets must know its sample spacing.
        options = self.settings.options
        options = replace(options, conventions=replace(options.conventions, prices_interval=self.settings.interval))
        self.objects = loader.compile_all(loaded, options)
        if loaded.problems:
            raise LocalError("the resources do not compile:\n" + "\n".join(f"  {p}" for p in loaded.problems))
        self.resources = [r for _, r in loaded.resources]

    def _rule_files(self, directory: Path) -> list[Path]:
        cap = duration_seconds(self.settings.interval)
        objects = []
        for obj in self.objects:
            if obj["kind"] == "PrometheusRule":
                groups = [{**g, "interval": self.settings.interval} if "interval" in g and duration_seconds(g["interval"]) > cap
                          else g for g in obj["spec"]["groups"]]
                obj = {**obj, "spec": {**obj["spec"], "groups": groups}}
            objects.append(obj)
        directory.mkdir(parents=True, exist_ok=True)
        return promtool.write_rule_files(objects, directory)

    def _prometheus_config(self, rule_files: list[Path], alertmanager_port: int | None, targets: Path) -> dict[str, Any]:
        interval = self.settings.interval
        config: dict[str, Any] = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": "llm-apps", "file_sd_configs": [{"files": [str(targets / "*.json")],
                                                                             "refresh_interval": interval}]}],
        }
        if alertmanager_port:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]}
        return config

    # --- lifecycle -----------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], ready_url: str, ports: list[int], env: dict[str, str] | None = None) -> None:
        logs = self.settings.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}.log"
        with log_path.open("ab") as out:
            popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True, preexec_fn=_PREEXEC)  # noqa: PLW1509 (no threads yet, see start)
        self.processes.append(Process(name, popen, ready_url, ports, log_path))

    def start(self) -> StackInfo:
        s = self.settings
        unknown = set(s.components) - set(COMPONENTS)
        if unknown:
            raise LocalError(f"unknown component(s): {', '.join(sorted(unknown))} (known: {', '.join(COMPONENTS)})")
        self._compile()
        data = s.data_dir.resolve()
        if (data / STACK_FILE).exists() and running(read_info(data)):
            raise LocalError(f"a local stack (pid {read_info(data).pids['observatory']}) already runs in {data}; stop it first")
        if s.fresh:
            for sub in ("prometheus", "alertmanager", "phoenix", "receiver", "targets", "logs"):
                shutil.rmtree(data / sub, ignore_errors=True)
        targets = data / "targets"
        targets.mkdir(parents=True, exist_ok=True)
        for stale in targets.glob("*.json"):  # left by apps of an earlier run
            stale.unlink()
        try:
            self._start_processes(data, targets)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self.info

    def _start_processes(self, data: Path, targets: Path) -> None:
        s = self.settings
        urls: dict[str, str] = {}
        am_port = None
        destinations = []
        self.receiver = LocalReceiver(data / NOTIFICATIONS_FILE, self.on_notification)
        urls["receiver"] = self.receiver.url
        if "phoenix" in s.components:
            venv = phoenix.venv_path()
            try:
                if phoenix.ensure_venv(venv, self.log):
                    self.log(f"created {venv}")
            except (OSError, RuntimeError) as err:
                raise LocalError(f"cannot create the Phoenix virtualenv {venv}: {err}") from err
            port, grpc_port = free_port(), free_port()
            work = data / "phoenix"
            work.mkdir(parents=True, exist_ok=True)
            urls["phoenix"] = f"http://127.0.0.1:{port}"
            self._spawn("phoenix", [str(phoenix.phoenix_binary(venv)), "serve"], urls["phoenix"] + "/healthz",
                        [port, grpc_port], phoenix.server_env(work, port, grpc_port))
        if "alertmanager" in s.components:
            am_port = free_port()
            config, where = alertmanager_yaml(self.objects, LocalSecrets(data / "secrets"),
                                              Sink(self.receiver.url, self.receiver.smtp_hostport), LOCAL_ROOT_ROUTE)
            destinations = [vars(d) for d in where]
            am_dir = data / "alertmanager"
            (am_dir / "data").mkdir(parents=True, exist_ok=True)
            am_file = am_dir / "alertmanager.yml"
            am_file.touch(mode=0o600)  # may hold Secret values when receivers are real
            am_file.chmod(0o600)  # also when an earlier run left it
            am_file.write_text(dump(config))
            urls["alertmanager"] = f"http://127.0.0.1:{am_port}"
            self._spawn("alertmanager", [_binary("prometheus-alertmanager", "alertmanager"), f"--config.file={am_file}",
                                         f"--storage.path={am_dir / 'data'}", f"--web.listen-address=127.0.0.1:{am_port}",
                                         "--cluster.listen-address="], urls["alertmanager"] + "/-/ready", [am_port])
        rule_files: list[Path] = []
        if "prometheus" in s.components:
            port = free_port()
            prom_dir = data / "prometheus"
            for old in (prom_dir / "rules").glob("*.yaml"):
                old.unlink()
            rule_files = self._rule_files(prom_dir / "rules")
            (prom_dir / "prometheus.yml").write_text(dump(self._prometheus_config(rule_files, am_port, targets)))
            urls["prometheus"] = f"http://127.0.0.1:{port}"
            self._spawn("prometheus", [_binary("prometheus"), f"--config.file={prom_dir / 'prometheus.yml'}",
                                       f"--storage.tsdb.path={prom_dir / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                        urls["prometheus"] + "/-/ready", [port])
        # Threads only after every fork: a fork while another thread holds a lock can deadlock the child.
        self.receiver.start()
        stacks = [r for r in self.resources if isinstance(r, ObservabilityStack)]
        self.info = StackInfo(
            data_dir=str(data), urls=urls,
            pids={"observatory": os.getpid(), **{p.name: p.popen.pid for p in self.processes}},
            ports={"receiver": self.receiver.ports, **{p.name: p.ports for p in self.processes}},
            targets_dir=str(targets),
            projects={st.namespace: project_name(st) for st in stacks},
            redaction={st.namespace: st.spec.collector.redaction.model_dump(by_alias=True, mode="json") for st in stacks},
            destinations=destinations, rule_files=[str(p) for p in rule_files],
            logs={p.name: str(p.log) for p in self.processes}, dashboards=self._write_dashboards(data / DASHBOARDS_DIR))

    def _write_dashboards(self, directory: Path) -> list[str]:
        """The stacks' Grafana dashboards as JSON files: no Grafana runs here, any Grafana can import them."""
        shutil.rmtree(directory, ignore_errors=True)
        written = []
        labels = self.settings.options.conventions.dashboard_labels.items()
        for obj in self.objects:
            meta = obj["metadata"]
            if obj["kind"] == "ConfigMap" and labels <= (meta.get("labels") or {}).items():
                directory.mkdir(parents=True, exist_ok=True)
                for key, text in sorted(obj["data"].items()):
                    path = directory / f"{meta['namespace']}-{meta['name']}-{key}"
                    path.write_text(text)
                    written.append(str(path))
        return written

    def _wait_ready(self) -> None:
        started = time.monotonic()
        deadline, report_at = started + self.settings.ready_timeout, started + PROGRESS_SECONDS
        pending = list(self.processes)
        while pending:
            for process in list(pending):
                if process.popen.poll() is not None:
                    tail = process.log.read_text(errors="replace")[-3000:]
                    raise LocalError(f"{process.name} exited with {process.popen.returncode}; "
                                     f"end of {process.log}:\n{tail}")
                if is_up(process.ready_url):
                    pending.remove(process)
            now = time.monotonic()
            if pending and now > deadline:
                raise LocalError(f"not ready after {self.settings.ready_timeout:.0f} s: "
                                 f"{', '.join(p.name for p in pending)} (logs in {self.settings.data_dir / 'logs'})")
            if pending and now >= report_at:
                report_at = now + PROGRESS_SECONDS
                self.log(f"waiting for {', '.join(p.name for p in pending)} ({now - started:.0f} s so far; "
                         f"logs in {self.settings.data_dir / 'logs'})")
            time.sleep(0.25)
        (Path(self.info.data_dir) / STACK_FILE).write_text(json.dumps(vars(self.info), indent=2, sort_keys=True))

    def stop(self) -> None:
        """Terminate every process group (SIGTERM, then SIGKILL after a grace period) and the receiver."""
        if self.info:
            (Path(self.info.data_dir) / STACK_FILE).unlink(missing_ok=True)
        for process in reversed(self.processes):
            _signal_group(process.popen, signal.SIGTERM)
        deadline = time.monotonic() + TERMINATE_GRACE_SECONDS
        for process in reversed(self.processes):
            try:
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:  # the leader still lives, so the group is still ours
                _signal_group(process.popen, signal.SIGKILL)
                process.popen.wait()
        self.processes.clear()
        if self.receiver:
            self.receiver.stop()
            self.receiver = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def running(info: StackInfo) -> bool:
    """Whether the `local up` (or test session) that wrote `info` still runs: a killed one leaves its stack.json."""
    pid = info.pids.get("observatory")
    return bool(pid) and _alive(pid)


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise LocalError(f"{' or '.join(names)} not found on PATH (make setup installs it)")


def _signal_group(popen: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(popen.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_until_interrupted(stack: LocalStack) -> None:
    """Block until SIGINT or SIGTERM; the caller stops the stack."""
    stop = []
    # Explicit handlers: a shell starts background jobs with SIGINT ignored, so Python's default
    # KeyboardInterrupt handler would not be installed there.
    previous = {sig: signal.signal(sig, lambda *_: stop.append(True)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop:
            for process in stack.processes:
                if process.popen.poll() is not None:
                    raise LocalError(f"{process.name} exited with {process.popen.returncode} (see {process.log})")
            time.sleep(0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
