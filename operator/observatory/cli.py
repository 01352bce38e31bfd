"""`observatory`: render, validate and test policies offline; write CRDs; run the operator."""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import pydantic
import yaml

from . import loader, promtool
from .compile import CompileOptions
from .compile.prices import ModelPrice, from_spec
from .compile.routing import smarthost
from .compile.rules import count_rules
from .conventions import Conventions
from .local import cli as local_cli
from .models.stack import ModelPrice as StackModelPrice
from .yamlio import dump, dump_all


def _options(args: argparse.Namespace) -> CompileOptions:
    options = CompileOptions(allowed_email_smarthosts=tuple(sorted(set(args.allowed_email_smarthost or ()))))
    if args.conventions:
        options = replace(options, conventions=Conventions.from_mapping(yaml.safe_load(Path(args.conventions).read_text()) or {}))
    if args.prices:
        options = replace(options, catalogue=_catalogue(args.prices))
    return options


def _catalogue(path: str) -> tuple[ModelPrice, ...]:
    """A price catalogue file: a list of entries as an ObservabilityStack's spec.pricing takes them."""
    try:
        entries = pydantic.TypeAdapter(list[StackModelPrice]).validate_python(yaml.safe_load(Path(path).read_text()) or [])
    except (OSError, yaml.YAMLError) as err:
        raise SystemExit(f"error: --prices {path}: {err}") from None
    except pydantic.ValidationError as err:
        raise SystemExit("\n".join(f"error: --prices {path}: {'.'.join(map(str, e['loc']))}: {e['msg']}"
                                   for e in err.errors())) from None
    return tuple(from_spec(entry) for entry in entries)


def _smarthost(value: str) -> str:
    try:
        return smarthost(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _load(args: argparse.Namespace) -> tuple[loader.Input, list[dict]]:
    loaded = loader.read(args.file, args.namespace)
    if getattr(args, "strict", False):
        loaded.problems += loaded.warnings
        loaded.warnings = []
    objects = loader.compile_all(loaded, _options(args))
    return loaded, objects


def _report(loaded: loader.Input) -> int:
    for problem in loaded.problems:
        print(problem, file=sys.stderr)
    for warning in loaded.warnings:
        print(f"{warning.source}: warning: {warning.identity}: {warning.message}", file=sys.stderr)
    if loaded.skipped:
        print(f"note: skipped {len(loaded.skipped)} document(s) that are not Observatory resources", file=sys.stderr)
    return 1 if loaded.problems else 0


def cmd_render(args: argparse.Namespace) -> int:
    loaded, objects = _load(args)
    if _report(loaded):
        return 1
    sys.stdout.write(dump_all(objects))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    loaded, _ = _load(args)
    if _report(loaded):
        print(f"{len(loaded.problems)} error(s)", file=sys.stderr)
        return 1
    print(f"{len(loaded.resources)} resource(s) valid")
    return 0


def run_tests(args: argparse.Namespace, out=sys.stdout) -> int:
    """Render, check with promtool, run promtool test files; print a pass/fail summary."""
    loaded, objects = _load(args)
    if _report(loaded):
        return 1
    recording, alerting = count_rules(objects)
    print(f"rendered {len(loaded.resources)} resource(s) into {len(objects)} object(s): "
          f"{recording} recording and {alerting} alerting rule(s)", file=out)
    with tempfile.TemporaryDirectory(prefix="observatory-test-") as tmp:
        workdir = Path(tmp)
        rule_files = promtool.write_rule_files(objects, workdir)
        outcomes = [promtool.check_rules(rule_files)]
        outcomes += [promtool.run_test_file(test, rule_files, workdir, i) for i, test in enumerate(loaded.promtool_tests)]
    for outcome in outcomes:
        print(f"{'PASS' if outcome.ok else 'FAIL'}  {outcome.name}", file=out)
        if not outcome.ok:
            print("      " + outcome.output.strip().replace("\n", "\n      "), file=out)
    if not loaded.promtool_tests:  # the rules check alone is no test: `1 passed` read as a passing suite
        print("no promtool test files among the inputs (YAML with a top-level tests: list): nothing was tested; "
              "pass them too, e.g. observatory test -f policies/ tests/", file=out)
        return 1
    failed = sum(not o.ok for o in outcomes)
    print(f"{len(outcomes) - failed} passed, {failed} failed", file=out)
    return 1 if failed else 0


def cmd_test(args: argparse.Namespace) -> int:
    return run_tests(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from .local.cli import cmd_demo as run_local_demo

    return run_local_demo(args, _options(args))


def cmd_crds(args: argparse.Namespace) -> int:
    from .crdgen import all_crds

    stale = []
    for out_dir in map(Path, args.out):
        for file_name, obj in all_crds().items():
            path = out_dir / file_name
            text = dump(obj)
            if args.check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path))
            else:
                out_dir.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    for path in stale:
        print(f"stale: {path} (run `make crds`)", file=sys.stderr)
    return 1 if stale else 0


def cmd_reference(args: argparse.Namespace) -> int:
    from .refdoc import reference

    path, text = Path(args.out), reference()
    if args.check:
        if not path.exists() or path.read_text() != text:
            print(f"stale: {path} (run `make crds`)", file=sys.stderr)
            return 1
        return 0
    path.write_text(text)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .controller.app import run
    from .controller.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    run(settings)
    return 0


IMPORT_HELP = """Print Observatory SLOs (multi-document YAML) for SLOs written for another tool; report on stderr,
per field (FILE: document N: path: what and why), whatever has no Observatory equivalent.
Exit 0: everything mapped. Exit 2: something was reported (the SLOs that mapped are printed).
Exit 1: an input could not be read, or no namespace: nothing printed. Every selector of an imported
SLO reads its namespace only (namespace="<namespace>"), as every Observatory SLO does."""


def cmd_import(args: argparse.Namespace) -> int:
    from .importers import IMPORTERS, Source
    from .importers.common import MAX_FILE_BYTES

    sources = []
    for name in args.files:
        try:
            with (sys.stdin.buffer if name == "-" else open(name, "rb")) as stream:
                sources.append(Source(name, stream.read(MAX_FILE_BYTES + 1)))  # one byte more tells it is too large
        except OSError as err:
            print(f"{name}: cannot read: {err.strerror or err}", file=sys.stderr)
            return 1
    options = {"window": args.window} if args.format == "sloth" else {}
    result = IMPORTERS[args.format](sources, args.namespace, **options)
    for problem in result.problems:
        print(problem, file=sys.stderr)
    if result.fatal:
        return 1
    sys.stdout.write(dump_all(result.documents))
    return 2 if result.problems else 0


def _add_import(commands: argparse._SubParsersAction) -> None:
    top = commands.add_parser("import", help="print Observatory SLOs for Sloth or OpenSLO SLO files", description=IMPORT_HELP)
    formats = top.add_subparsers(dest="format", required=True)
    for name, text in (("sloth", "Sloth prometheus/v1 specs and sloth.slok.dev/v1 PrometheusServiceLevels"),
                       ("openslo", "OpenSLO v1 SLO documents with their SLI and DataSource documents")):
        sub = formats.add_parser(name, help=text, description=f"{text}.\n\n{IMPORT_HELP}",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("files", nargs="+", metavar="FILE", help="YAML files (multi-document); - for stdin")
        sub.add_argument("-n", "--namespace", help="namespace of the SLOs (default: a PrometheusServiceLevel's own; "
                                                    "required otherwise)")
        sub.set_defaults(handler=cmd_import)
    formats.choices["sloth"].add_argument("--window", default="30d",
                                          help="SLO window, as Sloth's --default-slo-period (default: 30d)")


def _add_input(parser: argparse.ArgumentParser, default_files: list[str] | None = None) -> None:
    parser.add_argument("-f", "--file", action="extend", nargs="+", required=default_files is None,
                        help="files or folders of YAML (multi-document); - for stdin")
    parser.set_defaults(default_files=default_files)
    parser.add_argument("-n", "--namespace", help="namespace for documents without one (default: default, with a warning)")
    parser.add_argument("--prices", help="YAML list of prices as an ObservabilityStack's spec.pricing takes them: {model, "
                                         "inputUSDPerMillionTokens, outputUSDPerMillionTokens, cacheReadUSDPerMillionTokens, "
                                         "cacheCreationUSDPerMillionTokens, effectiveFrom}")
    parser.add_argument("--conventions", help="YAML mapping overriding metric and label names (see observatory.conventions)")
    parser.add_argument("--allowed-email-smarthost", action="append", type=_smarthost, metavar="HOST:PORT",
                        help="an email smarthost receivers may use (repeatable), as the operator's "
                             "alerting.allowedEmailSmarthosts; none: public DNS names only")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="observatory", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    for name, handler, text, default_files in (
        ("render", cmd_render, "print the generated objects as multi-document YAML", None),
        ("validate", cmd_validate, "check every resource; report FILE: Kind/namespace/name: field: reason", None),
        ("test", cmd_test, "render, run promtool check rules and the promtool test files given", None),
        ("demo", cmd_demo, "run the examples on a local stack through a scripted incident", ["examples"]),
    ):
        sub = commands.add_parser(name, help=text)
        _add_input(sub, default_files)
        sub.set_defaults(handler=handler)
    commands.choices["validate"].add_argument("--strict", action="store_true",
                                              help="treat warnings (e.g. a document without a namespace) as errors")
    local_cli.add_demo_arguments(commands.choices["demo"])
    local_cli.register(commands, _add_input, _options)
    crds = commands.add_parser("crds", help="write the CustomResourceDefinitions generated from the models")
    crds.add_argument("--out", action="append", required=True, help="output folder (repeatable)")
    crds.add_argument("--check", action="store_true", help="only report stale files, exit 1 if any")
    crds.set_defaults(handler=cmd_crds)
    ref = commands.add_parser("reference", help="write the field reference (docs/reference.md) generated from the models")
    ref.add_argument("--out", required=True, help="output file, e.g. docs/reference.md")
    ref.add_argument("--check", action="store_true", help="only report a stale file, exit 1 if it is")
    ref.set_defaults(handler=cmd_reference)
    _add_import(commands)
    run = commands.add_parser("run", help="run the operator (kopf); configured by OBSERVATORY_* environment variables")
    run.set_defaults(handler=cmd_run)
    _describe(top)
    return top


class _DefaultsFormatter(argparse.HelpFormatter):
    """Help that names each option's default, where it has one worth naming."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


def _describe(parser: argparse.ArgumentParser) -> None:
    """Every subcommand's help page opens with its one-line summary and names the defaults."""
    parser.formatter_class = _DefaultsFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                sub = action.choices[choice.dest]
                sub.description = sub.description or choice.help
                _describe(sub)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "file", "unset") is None:
        args.file = args.default_files
    try:
        return args.handler(args)
    except promtool.PromtoolMissing as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
