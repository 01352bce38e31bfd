"""P5: compile time of the worst PromQL the bounds accept, per kind of bulk, at 1 to 16 KiB.

Run: PYTHONPATH=operator .venv/bin/python bench/compile/bench_compile.py [--runs 7]
Prints a Markdown section for bench/RESULTS.md. Each input is a threshold AlertRule (the rule type
that builds the most around user PromQL: parse, check, build, pin, render) whose expression has
the kind of bulk at its bound (observatory.promql: nesting, unary signs, binary operators) and is
padded with longer names to the size. Times are medians over runs of the CPU time of this process
(time.process_time: the machine is shared, and wall time counts the others' work), compile only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from observatory import promql
from observatory.compile import compile_resource
from observatory.models import parse_resource

SIZES_KIB = (1, 2, 4, 8, 16)
GOAL_MS = 50.0
N, U, B = promql.MAX_NESTING, promql.MAX_UNARY_SIGNS, promql.MAX_BINARY_OPERATORS


def name(length: int) -> str:
    return "m" * max(1, length)


def chain(size: int, terms: int = B + 1) -> str:
    return " + ".join([name(size // terms - 3)] * terms)


# Each builds an expression of about `size` characters with its kind of bulk at the bound.
KINDS: dict[str, Callable[[int], str]] = {
    f"parentheses nested {N}": lambda size: "(" * N + name(size - 2 * N) + ")" * N,
    f"abs() nested {N}": lambda size: "abs(" * N + name(size - 5 * N) + ")" * N,
    f"{U} signs in {N} nested -( )": lambda size: "-(" * N + name(size - 3 * N) + ")" * N,
    f"{B} binary operators": lambda size: chain(size),
    "one selector of many matchers": lambda size: "m{" + ",".join(f'l{i:04d}="v"' for i in range(size // 11)) + "}",
    f"all: {B} operators in {N} nested -( )": lambda size: "-(" * N + chain(size - 3 * N) + ")" * N,
}


def resource(expr: str):
    return parse_resource({"apiVersion": "observatory.dev/v1alpha1", "kind": "AlertRule",
                           "metadata": {"name": "bench", "namespace": "team-a"},
                           "spec": {"severity": "warning", "threshold": {"expr": expr, "value": 1}}})


def median_ms(expr: str, runs: int) -> float:
    rule = resource(expr)
    compile_resource(rule)  # warm: imports, caches
    samples = []
    for _ in range(runs):
        started = time.process_time()
        compile_resource(rule)
        samples.append((time.process_time() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    header = " | ".join(f"{k} KiB" for k in SIZES_KIB)
    lines = [
        "## Compile time of the worst accepted PromQL (bench/compile)",
        "",
        (f"`bench/compile/bench_compile.py --runs {args.runs}`: a threshold AlertRule per input, CPU ms of the "
         f"compile (median of {args.runs}); bounds: {promql.MAX_LENGTH} characters, nesting {N}, {U} unary signs, "
         f"{B} binary operators. Goal: linear in size (time(16 KiB) / time(1 KiB) near 16 or below) and at most "
         f"{GOAL_MS:.0f} ms at 16 KiB."),
        "",
        f"| kind | {header} | 16 KiB / 1 KiB | ≤ {GOAL_MS:.0f} ms |",
        "|---|" + "---|" * (len(SIZES_KIB) + 2),
    ]
    worst = 0.0
    for kind, make in KINDS.items():
        times = []
        for kib in SIZES_KIB:
            expr = make(kib * 1024 - 64)  # the rest of 16 KiB is left for padding errors
            assert len(expr) <= promql.MAX_LENGTH, (kind, len(expr))
            promql.scan(expr)  # accepted: the bounds hold
            times.append(median_ms(expr, args.runs))
        worst = max(worst, times[-1])
        cells = " | ".join(f"{t:.1f}" for t in times)
        lines.append(f"| {kind} | {cells} | {times[-1] / times[0]:.1f} | {'yes' if times[-1] <= GOAL_MS else 'NO'} |")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines += ["", f"Slowest at 16 KiB: {worst:.1f} ms. Load average of the machine at the end: {load}."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
