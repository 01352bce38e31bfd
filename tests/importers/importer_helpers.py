"""Running `observatory import` and `observatory render` as users do, and reading selectors back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import promql_parser as pp
import yaml

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def observatory(*args: str, stdin: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "observatory", *args], input=stdin, capture_output=True, cwd=REPO, check=False,
                          timeout=timeout)


def selectors(expr: str) -> set[tuple[str, frozenset]]:
    """Every vector selector of `expr` as (metric, matchers)."""
    found: set[tuple[str, frozenset]] = set()

    def visit(node):
        if isinstance(node, pp.VectorSelector):
            found.add((node.name, frozenset((m.name, str(m.op), m.value) for m in node.matchers.matchers)))

    pp.walk(pp.parse(expr), visit)
    return found


def pinned(found: set[tuple[str, frozenset]], namespace: str) -> set[tuple[str, frozenset]]:
    """`found` with the tenant matcher every Observatory selector carries."""
    return {(name, matchers | {("namespace", "MatchOp.Equal", namespace)}) for name, matchers in found}


def run_import(fmt: str, *args: str) -> tuple[subprocess.CompletedProcess, list, list[str]]:
    """`observatory import FMT ARGS`: the process, the documents printed, the lines reported."""
    result = observatory("import", fmt, *args)
    return result, list(yaml.safe_load_all(result.stdout)), result.stderr.decode().splitlines()
