"""`observatory local up|load` and the body of `observatory demo`."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .guide import print_places
from .stack import (
    COMPONENTS,
    LocalError,
    LocalStack,
    Settings,
    read_info,
    run_until_interrupted,
    running,
)

DEFAULT_DATA_DIR = ".local"


def _say(text: str) -> None:
    print(text, flush=True)  # progress must show while a pipe or a log file buffers the rest


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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number of seconds")
    return value


def cmd_up(args: argparse.Namespace, options) -> int:
    settings = Settings(files=tuple(args.file), data_dir=Path(args.data_dir), default_namespace=args.namespace,
                        options=options, interval=args.interval, fresh=args.fresh,
                        components=tuple(c for c in COMPONENTS if c not in (args.without or [])))
    stack = LocalStack(settings, log=_say, on_notification=lambda n: _say(f"<- {n.kind} {n.receiver}: {n.title}"))
    started = time.monotonic()
    try:
        _say(f"starting {', '.join(settings.components)} and the local receiver (data in {settings.data_dir}) ...")
        info = stack.start()
        print(f"local stack ready in {time.monotonic() - started:.0f} s (data in {info.data_dir})")
        print_places(info, print)
        if info.otlp_traces_url:
            print(f"  {'OTLP/HTTP':<17} {info.otlp_traces_url}  (where apps send traces)")
        for d in info.destinations:
            print(f"  {'route':<17} {d['receiver']} ({d['kind']}) -> {'the real service' if d['real'] else 'local receiver'}")
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
    stop = threading.Event()
    worker = threading.Thread(target=app.run, kwargs={"duration": args.duration or None, "stop": stop},
                              name="synthetic-app", daemon=True)
    started = time.monotonic()
    worker.start()
    try:
        while worker.is_alive():
            worker.join(args.progress)
            if worker.is_alive():
                _say(f"  {time.monotonic() - started:.0f} s: {_sent(app.stats)}")
    except KeyboardInterrupt:
        stop.set()
        worker.join()
    finally:
        app.flush()
        app.close()
    print(f"sent {_sent(app.stats)}")
    return 0


def _sent(stats) -> str:
    return f"{stats.requests} requests ({stats.errors} failed, {stats.pii_prompts} with PII)"


def cmd_notebooks(args: argparse.Namespace, options) -> int:
    from .notebooks import run_all

    notebooks = sorted(Path(args.dir).glob("*.ipynb"))
    if not notebooks:
        print(f"error: no notebooks (*.ipynb) in {args.dir}", file=sys.stderr)
        return 1
    data = Path(args.data_dir)
    out = Path(args.out) if args.out else data / "notebooks"
    try:
        info = read_info(data)
    except LocalError:
        info = None
    if info is not None and running(info):
        _say(f"using the local stack running in {info.data_dir}")
        outcomes = run_all(notebooks, data, out, _say)
    else:
        settings = Settings(files=tuple(args.file), data_dir=data / "notebooks-stack", default_namespace=args.namespace,
                            options=options, fresh=True)
        _say(f"no local stack runs in {data}: starting one in {settings.data_dir} for the run ...")
        stack = LocalStack(settings, log=_say)
        try:
            stack.start()
            outcomes = run_all(notebooks, settings.data_dir, out, _say)
        except LocalError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        finally:
            stack.stop()
    failed = sum(not o.ok for o in outcomes)
    print(f"{len(outcomes) - failed} passed, {failed} failed")
    return 1 if failed else 0


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
    load.add_argument("--progress", type=_seconds, default=10.0, help="seconds between progress lines (default: 10)")
    load.add_argument("--no-redaction", action="store_true", help="export spans without the RedactingSpanProcessor")
    load.set_defaults(handler=cmd_load)
    notebooks = sub.add_parser("notebooks", help="execute the notebooks headless with this venv's kernel against the local "
                               "stack (started for the run when none is up); executed copies go to <data-dir>/notebooks")
    add_input(notebooks, ["examples"])
    notebooks.add_argument("--dir", default="notebooks", help="folder of the notebooks (default: notebooks)")
    notebooks.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                           help=f"data folder of a running stack (default: {DEFAULT_DATA_DIR}); with none running there, "
                                "a stack of the -f resources is started in <data-dir>/notebooks-stack and stopped after")
    notebooks.add_argument("--out", help="folder for the executed copies (default: <data-dir>/notebooks)")
    notebooks.set_defaults(handler=lambda a: cmd_notebooks(a, options(a)))
