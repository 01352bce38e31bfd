"""bench/slo_eval refuses to measure while a recorded series' history stops short of now.

The history is backfilled up to the moment the data was generated and the rule sets are measured up
to half an hour later: a rule reading a recorded series at an offset into that stretch finds nothing,
which is cheaper than production (where the series has been recorded all along), so the bench must
catch the history up first and check that it did. Against a real Prometheus on a TSDB built by promtool.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

# bench/ is not an installed package; the benchmark runs from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.slo_eval import data, measure
from bench.slo_eval.prom import Prometheus, write_config

STEP = 30


def _import(promtool: Path, tsdb: Path, work: Path, points: dict[tuple[str, str], range]) -> None:
    """Samples of `<name>{pod=...}` at the given unix times, as blocks in `tsdb`."""
    path = work / f"history-{time.monotonic_ns()}.om"
    with open(path, "w") as f:
        for name in sorted({name for name, _ in points}):
            f.write(f"# TYPE {name} gauge\n")
            for (of, pod), times in points.items():
                if of == name:
                    f.writelines(f'{name}{{pod="{pod}"}} 1 {t}\n' for t in times)
        f.write("# EOF\n")
    subprocess.run([str(promtool), "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                    f"--max-block-duration={data.BLOCK_FLAG}", str(path), str(tsdb)], check=True)


def _gaps(tsdb: Path, work: Path, at: int, within: int) -> list[str]:
    config = work / "prometheus.yml"
    write_config(str(config), None, "30s", None, "60s")
    with Prometheus(str(tsdb), str(config), str(work / "prometheus.log"), data.BLOCK_FLAG) as prom:
        return measure.history_gaps(prom, ["q", "r", "s"], at, within)


def test_a_history_that_ends_before_now_is_a_gap_until_every_series_reaches_now(
        tmp_path: Path, prometheus: Path, promtool: Path) -> None:
    # `prometheus`: the fixture fails the test when the server is missing; Prometheus() runs it from PATH.
    tsdb, work = tmp_path / "tsdb", tmp_path / "work"
    tsdb.mkdir()
    work.mkdir()
    now = int(time.time()) // STEP * STEP
    generated = now - 20 * 60  # the history as generated, 20 minutes before the measurement
    # q reaches now at 30 s steps, s at 150 s steps (a slower group's), ending 120 s before now: no gap.
    _import(promtool, tsdb, work, {("q", "a"): range(now - 3 * 3600, now + 1, STEP),
                                   ("s", "a"): range(now - 3 * 3600, now - 119, 150),
                                   **{("r", p): range(now - 3 * 3600, generated, STEP) for p in ("a", "b")}})
    assert _gaps(tsdb, work, now, 150 + 60) == ["r"], "a history ending 20 minutes ago passed for one that reaches now"
    # The window must hold a slower group's interval: one of 60 s finds s 120 s old, a gap.
    assert _gaps(tsdb, work, now, 60) == ["r", "s"]

    # One series caught up, the other not: still a gap (the check is per series, not per name).
    _import(promtool, tsdb, work, {("r", "a"): range(generated, now + 1, STEP)})
    assert _gaps(tsdb, work, now, 150 + 60) == ["r"], "a series still ending 20 minutes ago was hidden by a fresh one"

    _import(promtool, tsdb, work, {("r", "b"): range(generated, now + 1, STEP)})
    assert _gaps(tsdb, work, now, 150 + 60) == []
