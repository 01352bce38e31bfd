"""`observatory local up|load` and the body of `observatory demo`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .stack import (
    COMPONENTS,
    LocalError,
    LocalStack,
    Settings,
    read_info,
    run_until_interrupted,
)

DEFAULT_DATA_DIR = ".local"


def _models(text: str):
    from .app import DEFAULT_MODELS, Model

    known = {m.name: m for m in DEFAULT_MODELS}
    models = []
    for item in text.split(","):
        name, _, tokens = item.partition("=")
        base = known.get(name, Model(name, "openai", 1000, 250))
        if tokens:
            try:
                inp, out = (int(t) for t in tokens.split(":"))
            except ValueError:
                raise argparse.ArgumentTypeError(f"--models: {item!r}: expected MODEL=INPUT:OUTPUT tokens") from None
            base = Model(name, base.provider, inp, out)
        models.append(base)
    return tuple(models)


def _evaluations(text: str) -> dict[str, float]:
    out = {}
    for item in text.split(","):
        name, _, score = item.partition("=")
        try:
            out[name] = float(score)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--evaluations: {item!r}: expected NAME=MEAN_SCORE") from None
    return out


def cmd_up(args: argparse.Namespace, options) -> int:
    settings = Settings(files=tuple(args.file), data_dir=Path(args.data_dir), default_namespace=args.namespace,
                        options=options, interval=args.interval, fresh=args.fresh,
                        components=tuple(c for c in COMPONENTS if c not in (args.without or [])))
    stack = LocalStack(settings, on_notification=lambda n: print(f"<- {n.kind} {n.receiver}: {n.title}", flush=True))
    started = time.monotonic()
    try:
        info = stack.start()
        print(f"local stack ready in {time.monotonic() - started:.0f} s (data in {info.data_dir})")
        for name, url in sorted(info.urls.items()):
            print(f"  {name:<13} {url}")
        if info.otlp_traces_url:
            print(f"  OTLP/HTTP     {info.otlp_traces_url}")
        for d in info.destinations:
            print(f"  route         {d['receiver']} ({d['kind']}) -> {'the real service' if d['real'] else 'local receiver'}")
        print("send traffic with `observatory local load`; Ctrl-C stops everything", flush=True)
        run_until_interrupted(stack)
        return 0
    except LocalError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
        print("local stack stopped", flush=True)


def cmd_load(args: argparse.Namespace) -> int:
    from ..models.redaction import RedactionPolicy
    from .app import Knobs, SyntheticApp

    try:
        info = read_info(Path(args.data_dir))
    except LocalError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    knobs = Knobs(rps=args.rps, error_rate=args.error_rate, latency_seconds=args.latency, models=args.models,
                  evaluations=args.evaluations, pii_rate=args.pii_rate)
    app = SyntheticApp(args.namespace, info.otlp_traces_url, info.projects.get(args.namespace, args.namespace),
                       RedactionPolicy.model_validate(info.redaction.get(args.namespace, {})),
                       redact=not args.no_redaction, knobs=knobs)
    port = app.serve_metrics(Path(info.targets_dir))
    print(f"synthetic LLM app in namespace {args.namespace}: metrics on http://127.0.0.1:{port}/metrics, "
          f"traces to {info.otlp_traces_url or 'nowhere (no Phoenix)'}, redaction {'off' if args.no_redaction else 'on'}",
          flush=True)
    try:
        app.run(duration=args.duration or None)
    except KeyboardInterrupt:
        pass
    finally:
        app.flush()
        app.close()
    s = app.stats
    print(f"sent {s.requests} requests ({s.errors} failed, {s.pii_prompts} with PII)")
    return 0


def cmd_demo(args: argparse.Namespace, options) -> int:
    from .demo import run_demo

    return run_demo(list(args.file), options, Path(args.data_dir), keep_running=args.keep_running)


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=f"{DEFAULT_DATA_DIR}/demo", help="where the demo's stack keeps its data (wiped first)")
    parser.add_argument("--keep-running", action="store_true", help="keep the stack up after the summary until Ctrl-C")


def register(commands, add_input: Callable[..., None], options: Callable[[argparse.Namespace], object]) -> None:
    """Add `local up` and `local load` to the top-level subcommands."""
    local = commands.add_parser("local", help="the platform on this machine: Phoenix, Prometheus, Alertmanager")
    sub = local.add_subparsers(dest="local_command", required=True)
    up = sub.add_parser("up", help="compile the resources and run the stack until interrupted")
    add_input(up, ["examples"])
    up.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="folder for every config, database and log")
    up.add_argument("--interval", default="2s", help="scrape and rule evaluation interval (caps longer group intervals)")
    up.add_argument("--fresh", action="store_true", help="delete the data of earlier runs first")
    up.add_argument("--without", action="append", choices=COMPONENTS, help="leave a component out (repeatable)")
    up.set_defaults(handler=lambda a: cmd_up(a, options(a)))
    load = sub.add_parser("load", help="run the synthetic LLM app against the running stack")
    load.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="data folder of the running stack")
    load.add_argument("-n", "--namespace", default="team-a", help="namespace label of the app's metrics (default: team-a)")
    load.add_argument("--rps", type=float, default=5.0, help="requests per second")
    load.add_argument("--error-rate", type=float, default=0.01, help="fraction of calls that fail")
    load.add_argument("--latency", type=float, default=0.8, help="median latency in seconds (log-normal)")
    load.add_argument("--models", type=_models, default=_models("gpt-4o,gpt-4o-mini,claude-sonnet-4"),
                      help="MODEL[=INPUT:OUTPUT] tokens per call, comma-separated; calls rotate over them")
    load.add_argument("--evaluations", type=_evaluations, default=_evaluations("answer_relevance=0.85,hallucination=0.05"),
                      help="NAME=MEAN_SCORE evaluation scores, comma-separated")
    load.add_argument("--pii-rate", type=float, default=0.2, help="fraction of prompts that contain PII")
    load.add_argument("--duration", type=float, default=0, help="seconds to run; 0 runs until Ctrl-C")
    load.add_argument("--no-redaction", action="store_true", help="export spans without the RedactingSpanProcessor")
    load.set_defaults(handler=cmd_load)
