"""bench/slo_eval refuses to measure while a recorded series' history stops short of now, and
catches it up into the server's head.

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

import pytest

# bench/ is not an installed package; the benchmark runs from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.slo_eval import backfill, data, measure
from bench.slo_eval.__main__ import median_row
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


def test_the_catch_up_appends_a_rules_history_to_the_head_up_to_now_and_refuses_to_rewrite_it(
        tmp_path: Path, prometheus: Path) -> None:
    # The cost bench catches a set's recorded history up into the running server's head (remote write),
    # where a production server holds its last hours, not in a block overlapping the head.
    tsdb, work = tmp_path / "tsdb", tmp_path / "work"
    work.mkdir()
    now = int(time.time()) // STEP * STEP
    config = work / "prometheus.yml"
    write_config(str(config), None, "30s", None, "60s")
    with Prometheus(str(tsdb), str(config), str(work / "prometheus.log"), data.BLOCK_FLAG) as prom:
        prom.remote_write([({"__name__": "q", "pod": pod}, [(t, float(t % 7)) for t in range(now - 1200, now + 1, STEP)])
                           for pod in ("a", "b")])
        groups = [{"name": "g", "rules": [{"record": "r", "expr": "sum(q) * 2", "labels": {"kind": "x"}}]},
                  {"name": "slow", "interval": "2m", "rules": [{"record": "s", "expr": "max(q)"}]}]
        assert measure.history_gaps(prom, ["r", "s"], now, 180) == ["r", "s"], "nothing recorded yet passed for caught up"

        written = backfill.append_history(prom, groups, now - 600 + 1, now, STEP)

        assert written == 20 + 5, "r at every 30 s step of the last 10 minutes, s at every 2 minutes"
        got = prom.get("/api/v1/query_range", query="r", start=str(now - 600), end=str(now), step=f"{STEP}s")["result"]
        assert [s["metric"] for s in got] == [{"__name__": "r", "kind": "x"}]
        assert [(int(t), float(v)) for t, v in got[0]["values"]] == \
            [(t, 2.0 * 2 * (t % 7)) for t in range(now - 570, now + 1, STEP)]
        assert measure.history_gaps(prom, ["r", "s"], now, 180) == []
        # Once more over the same minutes: the head refuses samples at or before a series' last one.
        with pytest.raises(RuntimeError, match="out of order|duplicate"):
            backfill.append_history(prom, groups, now - 300, now, STEP)
        # A rule whose labels merge two result series: the head would keep one sample per step
        # without a word, so the catch-up refuses to send them.
        merging = [{"name": "g", "rules": [{"record": "m", "expr": "q", "labels": {"pod": "z"}}]}]
        with pytest.raises(RuntimeError, match="several results per step"):
            backfill.append_history(prom, merging, now - 300, now, STEP)
    assert not [d for d in tsdb.iterdir() if (d / "meta.json").exists()], "the catch-up wrote a block"


def test_the_ratio_of_several_rounds_is_the_median_of_each_rounds_ratio() -> None:
    def sets(baseline: float, observatory: float) -> dict[str, dict]:
        return {which: {"amortised_s": cost, "median_s": cost * 2, "cpu_per_cycle_s": cost / 2, "median_metrics_s": None,
                        "rules": 17} for which, cost in (("baseline", baseline), ("observatory", observatory))}

    # The second round's machine ran slow for both sets: its ratio is as good as the others'.
    row = median_row([sets(5.0, 0.25), sets(9.0, 0.54), sets(4.0, 0.22)])

    assert row["ratio_amortised"] == pytest.approx(0.055)  # of 0.05, 0.06, 0.055; not 0.25 / 5.0
    assert row["baseline"]["amortised_s"] == 5.0 and row["observatory"]["amortised_s"] == 0.25
    assert row["baseline"]["median_metrics_s"] is None and row["baseline"]["rules"] == 17
    assert [r["ratio_amortised"] for r in row["rounds"]] == pytest.approx([0.05, 0.06, 0.055])
