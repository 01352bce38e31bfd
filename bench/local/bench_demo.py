"""How long `make demo` takes: `observatory demo` with a fresh and with a ready Phoenix virtualenv.

Each run deletes a scratch Phoenix venv (OBSERVATORY_PHOENIX_VENV), runs the demo (creating the venv
and starting Phoenix on cold bytecode), then runs it again (venv ready, bytecode cached). Prints a
markdown section with medians and every run's value.

    .venv/bin/python bench/local/bench_demo.py --runs 3
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def demo(venv: Path, data: Path) -> tuple[float, float, str]:
    """(wall seconds, seconds until the stack was ready, output) of one `observatory demo`."""
    env = {**os.environ, "OBSERVATORY_PHOENIX_VENV": str(venv)}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "observatory", "demo", "--data-dir", str(data)], cwd=REPO, env=env,
                            capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"demo failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    ready = re.search(r"ready after (\d+) s", result.stdout)
    return wall, float(ready.group(1)) if ready else float("nan"), result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {k: [] for k in ("fresh wall", "fresh ready", "warm wall", "warm ready")}
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        venv, data = Path(tmp) / "venv-phoenix", Path(tmp) / "data"
        for _ in range(args.runs):
            shutil.rmtree(venv, ignore_errors=True)
            for kind in ("fresh", "warm"):
                wall, ready, _ = demo(venv, data)
                rows[f"{kind} wall"].append(wall)
                rows[f"{kind} ready"].append(ready)
    print("## `make demo` wall time (bench/local)\n")
    print(f"`observatory demo` (examples/, scenario: 20 s healthy, error burst until the page, cost spike until the "
          f"budget alert), {args.runs} runs; fresh = Phoenix venv created first (uv), warm = venv and bytecode ready.\n")
    print("| measure | median | runs | goal |\n|---|---|---|---|")
    goals = {"fresh wall": "≤ 300 s (with make setup)", "warm wall": ""}
    for name, values in rows.items():
        print(f"| {name} | {statistics.median(values):.0f} s | {', '.join(f'{v:.0f}' for v in values)} | {goals.get(name, '')} |")
    print(f"\nMachine: {os.cpu_count()} cores, shared with other sessions' test runs.")


if __name__ == "__main__":
    main()
