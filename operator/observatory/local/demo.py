"""`make demo`: the local stack, a synthetic LLM app and a scripted incident, end to end.

The scenario uses the policies as written in examples/ (production windows), on a fresh Prometheus:
a burn-rate or budget window longer than the data there is collapses to the data there is, exactly
as on a freshly started Prometheus, so a one-minute error burst is a 1 h burn far above 14.4x and a
one-minute runaway loop is the hour's spend. Rule groups with long intervals are evaluated every
`interval` (see stack.Settings) so that the price catalogue is recorded within seconds.
"""

from __future__ import annotations

import datetime
import math
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from .. import promql
from ..compile import CompileOptions
from ..compile.defaults import catalogue_for
from ..compile.prices import price_of, request_cost
from ..compile.rules import Tenant
from ..compile.signals import Signals
from ..compile.slo_groups import slo_member
from ..conventions import Conventions
from ..models.alertrule import AlertRule
from ..models.redaction import RedactionPolicy
from ..models.stack import ObservabilityStack
from ..redaction.rules import HASH_PREFIX, MASK
from .app import SPANS_PER_REQUEST, Knobs, SyntheticApp
from .guide import print_places
from .net import prometheus_query
from .phoenix import PhoenixClient
from .receiver import Notification
from .stack import LocalError, LocalStack, Settings

REDACTION_MARKERS = ("[REDACTED:", "[DROPPED:", HASH_PREFIX, MASK)


@dataclass(frozen=True)
class Expected:
    what: str  # shown to the user
    alertname: str
    receivers: tuple[str, ...]
    severity: str = ""  # a budget step: the alert of this severity (the steps share the alert's name)

    @property
    def key(self) -> str:
        return f"{self.alertname}/{self.severity}" if self.severity else self.alertname


@dataclass(frozen=True)
class Scenario:
    namespace: str
    project: str
    page: Expected
    cost: Expected
    cost_model: str
    cost_multiplier: float
    redaction: RedactionPolicy
    healthy_seconds: float = 20.0
    phase_timeout: float = 90.0
    rps: float = 10.0
    spike_seconds: float = 20.0  # the spike is sized to reach twice the budget in this time
    cost_warning: Expected | None = None  # a budget's warning step, expected before the budget's own alert

    @property
    def expected(self) -> tuple[Expected, ...]:
        return (self.page, *([self.cost_warning] if self.cost_warning else []), self.cost)


@dataclass
class Result:
    arrived: dict[str, float] = field(default_factory=dict)  # Expected.key → seconds after its phase began
    notifications: list[Notification] = field(default_factory=list)
    requests: int = 0
    errors: int = 0
    pii_prompts: int = 0
    traces_stored: int = 0
    spans_stored: int = 0
    redactions: int = 0
    leaks: int = 0
    spend_usd: float = 0.0
    spend: dict[tuple[str, str], float] = field(default_factory=dict)  # (model, token type) → USD

    def ok(self, scenario: Scenario, with_traces: bool) -> bool:
        alerts = {e.key for e in scenario.expected} <= set(self.arrived)
        warned_first = scenario.cost_warning is None or (
            alerts and self.arrived[scenario.cost_warning.key] <= self.arrived[scenario.cost.key])
        return alerts and warned_first and self.leaks == 0 and (self.traces_stored > 0 or not with_traces)


def _alerts(objects: list[dict[str, Any]], **labels: str) -> list[str]:
    """Names of the generated alerts carrying all `labels`."""
    return [rule["alert"] for obj in objects if obj["kind"] == "PrometheusRule" for group in obj["spec"]["groups"]
            for rule in group["rules"] if "alert" in rule and labels.items() <= rule["labels"].items()]


def _receivers(destinations: list[dict[str, Any]], namespace: str, owner: str) -> tuple[str, ...]:
    return tuple(d["receiver"] for d in destinations if d["receiver"].startswith(f"{namespace}/{owner}/"))


def plan(stack: LocalStack, conventions: Conventions, options: CompileOptions) -> Scenario:
    """Pick the SLO page alert and the cost alert to provoke from what was loaded."""
    c = conventions
    objects = stack.objects
    destinations = stack.info.destinations
    for slo in (r for r in stack.resources if r.kind == "SLO" and r.spec.routing is not None):
        indicator = slo.spec.indicator.llm
        if indicator is None or indicator.preset != "availability" or not slo.spec.alerting.page.enabled:
            continue
        page = [a["alert"] for a in slo_member(slo, c).alerts if a["labels"][c.slo_tier_label] == "page"]
        if page:
            namespace = slo.namespace
            break
    else:
        raise LocalError("the demo needs an SLO with the LLM availability preset, page alerts and routing")
    budgets = sorted((r for r in stack.resources if isinstance(r, AlertRule) and r.namespace == namespace
                      and r.spec.cost is not None and r.spec.routing is not None),
                     key=lambda r: r.spec.cost.budget_usd)
    if not budgets:
        raise LocalError(f"the demo needs an AlertRule with a cost budget and routing in namespace {namespace}")
    budget = budgets[0]
    stacks = [r for r in stack.resources if isinstance(r, ObservabilityStack) and r.namespace == namespace]
    catalogue = catalogue_for(stacks[0], options.catalogue) if stacks else options.catalogue
    today = datetime.datetime.now(datetime.timezone.utc).date()
    knobs = Knobs(rps=10.0)
    model, price = next((m, p) for m in knobs.models if (p := price_of(catalogue, m.name, m.provider, today)))
    per_request = request_cost(price, model.input_tokens, model.output_tokens, round(model.input_tokens * model.cache_read_share),
                               round(model.input_tokens * model.cache_creation_share))
    block = budget.spec.cost
    what = f"AlertRule {budget.name} (${block.budget_usd:g} per {block.window})"
    cost_alert, cost_receivers = _alerts(objects, **{c.alertrule_label: budget.name})[0], \
        _receivers(destinations, namespace, f"alertrule-{budget.name}")
    # With warning steps: the first step below 100 % warns, the first at 100 % or more is the budget's alert.
    over = next((s for s in block.steps if s.percent >= 100), None)
    under = next((s for s in block.steps if s.percent < 100), None)
    cost = Expected(what + (f", its {over.percent:g}% step" if over else ""), cost_alert, cost_receivers,
                    over.severity if over else "")
    warning = Expected(f"{what}, its {under.percent:g}% step", cost_alert, cost_receivers, under.severity) \
        if over and under else None
    scenario = Scenario(
        namespace=namespace,
        project=stack.info.projects.get(namespace, namespace),
        page=Expected(f"SLO {slo.name} page", page[0], _receivers(destinations, namespace, f"slo-{slo.name}")),
        cost=cost, cost_warning=warning,
        cost_model=model.name, cost_multiplier=0.0,
        redaction=RedactionPolicy.model_validate(stack.info.redaction.get(namespace, {})),
        rps=knobs.rps)
    requests = scenario.rps * scenario.spike_seconds / len(knobs.models)
    return replace(scenario, cost_multiplier=math.ceil(2 * budget.spec.cost.budget_usd / (requests * per_request)))


class Display:
    """One status line (rewritten in place on a terminal) and the notifications as they arrive."""

    def __init__(self, out: TextIO):
        self.out = out
        self.tty = out.isatty()
        self.lock = threading.Lock()
        self.last_plain = 0.0
        self.started = time.monotonic()

    def line(self, text: str) -> None:
        with self.lock:
            self.out.write(("\r\033[K" if self.tty else "") + text + "\n")
            self.out.flush()

    def status(self, text: str) -> None:
        stamp = f"[{int(time.monotonic() - self.started) // 60}:{int(time.monotonic() - self.started) % 60:02d}] "
        with self.lock:
            if self.tty:
                self.out.write("\r\033[K" + stamp + text)
                self.out.flush()
            elif time.monotonic() - self.last_plain >= 5:
                self.out.write(stamp + text + "\n")
                self.out.flush()
                self.last_plain = time.monotonic()

    def notification(self, n: Notification) -> None:
        self.line(f"  <- {n.kind:<9} {n.receiver}: {n.title}")


def _spend(prometheus: str, c: Conventions, namespace: str) -> dict[tuple[str, str], float]:
    """The hour's spend per model and token type, as the price group records it (the 1h budgets' arithmetic)."""
    signals = Signals(Tenant(namespace, c), None, (c.model_label, c.token_type_label))
    per_type = promql.build(f"sum by ({signals.by()}) (__arg_s__)", {"s": signals.metric(c.spend_hour_metric)})
    try:
        result = prometheus_query(prometheus, Tenant(namespace, c).pinned_text(per_type))
    except (OSError, RuntimeError):
        return {}
    return {(r["metric"].get(c.model_label, ""), r["metric"].get(c.token_type_label, "")): float(r["value"][1]) for r in result}


def run_scenario(stack: LocalStack, scenario: Scenario, conventions: Conventions, display: Display) -> Result:
    """Healthy traffic, an error burst until the page arrives, a cost spike until the cost alert arrives."""
    info = stack.info
    result = Result()
    app = SyntheticApp(scenario.namespace, info.otlp_traces_url, scenario.project, scenario.redaction,
                       knobs=Knobs(rps=scenario.rps))
    app.serve_metrics(Path(info.targets_dir))
    stop = threading.Event()
    worker = threading.Thread(target=app.run, kwargs={"stop": stop}, name="synthetic-app", daemon=True)
    worker.start()
    healthy = app.knobs
    phases: list[tuple[str, Knobs, float, Expected | None]] = [
        ("healthy traffic (1% errors)", healthy, scenario.healthy_seconds, None),
        ("error burst (50% of calls fail)", replace(healthy, error_rate=0.5), scenario.phase_timeout, scenario.page),
        (f"cost spike ({scenario.cost_model} uses {scenario.cost_multiplier:g}x the tokens: a runaway loop)",
         replace(healthy, token_multiplier={scenario.cost_model: scenario.cost_multiplier}), scenario.phase_timeout, scenario.cost),
    ]
    try:
        for title, knobs, limit, expected in phases:
            display.line(f"phase: {title}" + (f" -> waiting for {expected.key}" if expected else ""))
            app.knobs = knobs
            began, began_wall = time.monotonic(), time.time()
            base_requests, base_errors = app.stats.requests, app.stats.errors
            while time.monotonic() - began < limit:
                result.notifications = stack.receiver.notifications()
                for n in result.notifications:
                    for e in scenario.expected:
                        if n.status == "firing" and n.mentions(e.alertname, e.severity) and e.key not in result.arrived:
                            result.arrived[e.key] = max(0.0, n.received_at - began_wall)
                if expected and expected.key in result.arrived:
                    break
                stats = app.stats
                requests, errors = stats.requests - base_requests, stats.errors - base_errors
                result.spend = _spend(info.urls["prometheus"], conventions, scenario.namespace)
                result.spend_usd = sum(result.spend.values())
                display.status(f"{requests} requests in this phase, {errors / max(requests, 1):.0%} failed; "
                               f"spend this hour ${result.spend_usd:.2f}; {len(result.notifications)} notification(s) received")
                time.sleep(1)
            if expected and expected.key not in result.arrived:
                display.line(f"  !! {expected.key} did not arrive within {limit:.0f} s")
                break
    finally:
        stop.set()
        worker.join()
        app.flush()
        stats = app.stats
        result.requests, result.errors, result.pii_prompts = stats.requests, stats.errors, stats.pii_prompts
        result.notifications = stack.receiver.notifications()
        if "phoenix" in info.urls:
            _read_back(PhoenixClient(info.urls["phoenix"]), scenario.project, stats.requests, stats.pii_values, result)
        app.close()
    # The spend as recorded at the end: read in the loop, it was the reading before the budget's alert
    # arrived, which the recorded hour (its own group, evaluated apart) may trail by a few seconds.
    result.spend = _spend(info.urls["prometheus"], conventions, scenario.namespace)
    result.spend_usd = sum(result.spend.values())
    return result


def _read_back(phoenix: PhoenixClient, project: str, requests: int, pii_values: list[str], result: Result,
               wait: float = 30.0) -> None:
    """Traces and spans as Phoenix stored them; redaction markers and raw PII values in them."""
    deadline = time.monotonic() + wait
    while (count := phoenix.trace_count(project)) < requests and time.monotonic() < deadline:
        time.sleep(1)
    result.traces_stored = count
    # A trace is listed once its first span is stored; the exporter may have sent its other one in a
    # later batch, and Phoenix stores batches in the background.
    while len(spans := phoenix.spans(project)) < SPANS_PER_REQUEST * requests and time.monotonic() < deadline:
        time.sleep(1)
    result.spans_stored = len(spans)
    texts = [str(v) for s in spans for v in list(s["attributes"].values())
             + [v for e in s.get("events", []) for v in (e.get("attributes") or {}).values()]]
    result.redactions = sum(t.count(marker) for t in texts for marker in REDACTION_MARKERS)
    blob = "\n".join(texts)
    result.leaks = sum(1 for value in set(pii_values) if value in blob)


def summary(stack: LocalStack, scenario: Scenario, result: Result, elapsed: float, display: Display,
            keeps_running: bool = False) -> None:
    info = stack.info
    ok = result.ok(scenario, "phoenix" in info.urls)
    out = display.line
    out("")
    out("Summary")
    out(f"  the stack     {'keeps running until Ctrl-C' if keeps_running else 'stops now (--keep-running keeps it up)'}; "
        f"its addresses and files:")
    print_places(info, out, indent="    ")
    out(f"  traffic       {result.requests} requests in namespace {scenario.namespace}, {result.errors} failed, "
        f"spend ${result.spend_usd:.2f} (Prometheus, priced by the rules)")
    # Input tokens include the cached ones; each cached type's line is what caching changed on the bill.
    for model in sorted({m for m, _ in result.spend}):
        parts = ", ".join(f"{token_type} ${usd:.2f}" for (m, token_type), usd in sorted(result.spend.items()) if m == model)
        out(f"    {model:<20} {parts}")
    out("  alerts        expected at the local receiver:")
    for expected in scenario.expected:
        seconds = result.arrived.get(expected.key)
        mark = f"arrived {seconds:.0f} s into its phase" if seconds is not None else "DID NOT ARRIVE"
        out(f"    {'ok ' if seconds is not None else 'XX '} {expected.key:<38} {expected.what}: {mark}")
    received: dict[str, set[str]] = {}
    for n in result.notifications:
        received.setdefault(n.title.split("] ", 1)[-1].split(" ")[0], set()).add(f"{n.kind} {n.receiver}")
    for alertname, where in sorted(received.items()):
        out(f"      {alertname}: {', '.join(sorted(where))}")
    if "phoenix" in info.urls:
        out(f"  traces        {result.traces_stored} traces, {result.spans_stored} spans stored in Phoenix "
            f"project {scenario.project} (read back over its REST API)")
        out(f"  PII           {result.pii_prompts} prompts carried PII; {result.redactions} redactions in the stored spans; "
            f"{result.leaks} raw values found")
    out(f"  result        {'PASS' if ok else 'FAIL'} in {elapsed:.0f} s")


def run_demo(files: list[str], options: CompileOptions, data_dir: Path, keep_running: bool = False,
             out: TextIO = sys.stdout, healthy_seconds: float = 20.0, phase_timeout: float = 90.0) -> int:
    started = time.monotonic()
    display = Display(out)
    display.line(f"Observatory demo: the policies in {', '.join(files)} on one machine\n")
    settings = Settings(files=tuple(files), data_dir=data_dir, options=options, interval="2s", fresh=True)
    stack = LocalStack(settings, log=lambda m: display.line(f"  {m}"), on_notification=display.notification)
    display.line("starting Phoenix, Prometheus, Alertmanager and the local receiver ...")
    try:
        stack.start()
    except LocalError as err:
        display.line(f"error: {err}")
        return 1
    try:
        info = stack.info
        display.line(f"  ready after {time.monotonic() - started:.0f} s: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(info.urls.items())))
        try:
            scenario = replace(plan(stack, options.conventions, options), healthy_seconds=healthy_seconds,
                               phase_timeout=phase_timeout)
        except LocalError as err:
            display.line(f"error: {err}")
            return 1
        display.line(f"  {len(info.rule_files)} rule files loaded; expecting {scenario.page.alertname} "
                     f"and {scenario.cost.alertname} from namespace {scenario.namespace}\n")
        result = run_scenario(stack, scenario, options.conventions, display)
        summary(stack, scenario, result, time.monotonic() - started, display, keeps_running=keep_running)
        if keep_running:
            from .stack import run_until_interrupted

            display.line("\nthe stack keeps running; Ctrl-C stops it")
            run_until_interrupted(stack)
        return 0 if result.ok(scenario, "phoenix" in info.urls) else 1
    finally:
        stack.stop()

