"""SLO rule evaluation cost, Observatory vs a Sloth-structured baseline, on a real Prometheus.

    python -m bench.slo_eval            # from the repository root; see bench/slo_eval/README.md
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from observatory.models.common import duration_seconds

from . import backfill, data, equivalence, measure, report, rulesets, synth
from .prom import Prometheus, overlapping_blocks, write_config

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.slo_eval", description=__doc__.splitlines()[0])
    p.add_argument("--ks", default="10,100,500", help="numbers of SLOs to measure")
    p.add_argument("--pods", type=int, default=1, help="pods per service (series per service = 2 routes x pods x 3 codes)")
    p.add_argument("--days", type=float, default=4, help="days of history")
    p.add_argument("--scrape", type=int, default=60, help="scrape interval of the history, seconds")
    p.add_argument("--rule-interval", default="30s", help="production evaluation interval (history of recorded series)")
    # Intervals long enough that the baseline keeps the server far from saturation: beyond it,
    # groups queue for the query engine and wall-clock evaluation times balloon.
    p.add_argument("--schedule", default="10:3s:8,100:10s:6,500:40s:4",
                   help="K:interval:cycles - evaluation interval while measuring (every group is evaluated at it) "
                        "and complete cycles measured, per K; the last entry serves larger K")
    p.add_argument("--rounds", type=int, default=3,
                   help="times both sets are measured per K, back to back; the ratios reported are the rounds' medians")
    p.add_argument("--max-age", type=float, default=30, help="minutes after which cached data is rebuilt")
    p.add_argument("--data", default=os.path.join(HERE, ".data"), help="cache and work directory (gitignored)")
    p.add_argument("--results", default=os.path.join(ROOT, "bench", "RESULTS.md"), help="results file to update")
    p.add_argument("--skip-cost", action="store_true", help="only run the alerting equivalence")
    p.add_argument("--skip-equivalence", action="store_true", help="only measure evaluation cost")
    p.add_argument("--phases", type=int, default=None,
                   help="equivalence: phases of the slowest group an alert depends on (default: every step of its interval)")
    return p.parse_args(argv)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _ratio(measured: dict[str, dict], field: str) -> float | None:
    baseline = measured["baseline"][field]
    return measured["observatory"][field] / baseline if baseline else None


RATIOS = {"ratio": "median_s", "ratio_amortised": "amortised_s", "ratio_cpu": "cpu_per_cycle_s"}


def median_row(rounds: list[dict[str, dict]]) -> dict:
    """Each set's measurements as the median over the rounds, and each ratio as the median of the
    rounds' ratios (each round's two sets measured back to back, under the same conditions)."""
    def median(values: list) -> object:
        numbers = [v for v in values if isinstance(v, (int, float))]
        return statistics.median(numbers) if numbers else values[0]

    row: dict = {which: {field: median([r[which][field] for r in rounds]) for field in rounds[0][which]}
                 for which in rulesets.SETS}
    for name, field in RATIOS.items():
        ratios = [x for x in (_ratio(r, field) for r in rounds) if x is not None]
        row[name] = statistics.median(ratios) if ratios else None
    row["rounds"] = [{name: _ratio(r, field) for name, field in RATIOS.items()} |
                     {f"{which}_amortised_s": r[which]["amortised_s"] for which in rulesets.SETS} for r in rounds]
    return row


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ks = sorted(int(k) for k in args.ks.split(","))
        schedule = {int(k): (interval, int(cycles)) for k, interval, cycles in
                    (item.split(":") for item in args.schedule.split(","))}
        self.plan = {k: schedule.get(k, schedule[max(schedule)]) for k in self.ks}
        self.tsdb = os.path.join(args.data, "tsdb")
        self.work = os.path.join(args.data, "work")
        os.makedirs(self.work, exist_ok=True)
        self.rule_seconds = int(duration_seconds(args.rule_interval))
        self.exporter: synth.Exporter | None = None
        self.rendered: dict[tuple[str, int], list[dict]] = {}

    # --- rule sets -------------------------------------------------------------------------
    def groups(self, which: str, k: int) -> list[dict]:
        if (which, k) not in self.rendered:
            folder = os.path.join(self.work, f"slos-{k}")
            rulesets.write_slos(folder, k)
            self.rendered[which, k] = rulesets.rule_groups(which, folder)
        return self.rendered[which, k]

    def history(self, k: int) -> list[list[dict]]:
        """The recording rules of both sets for K SLOs that need history, level n of both together:
        each level is one pass over the history."""
        return backfill.merged_levels([self.groups(which, k) for which in rulesets.SETS])

    # --- the server ------------------------------------------------------------------------
    @contextlib.contextmanager
    def server(self, rule_file: str | None, interval: str) -> Iterator[Prometheus]:
        config = os.path.join(self.work, "prometheus.yml")
        write_config(config, rule_file, interval, self.exporter.port, f"{self.args.scrape}s")
        with Prometheus(self.tsdb, config, os.path.join(self.work, "prometheus.log"), data.BLOCK_FLAG) as prom:
            yield prom

    # --- data ------------------------------------------------------------------------------
    def prepare(self, history: list[list[dict]]) -> dict:
        a = self.args
        key = {"services": max(self.ks), "pods": a.pods, "scrape": a.scrape, "days": a.days,
               "rule_interval": a.rule_interval,
               "history": hashlib.sha256(json.dumps(history, sort_keys=True).encode()).hexdigest()[:16]}
        info_path = os.path.join(a.data, "dataset.json")
        info = None
        if os.path.exists(info_path) and os.path.isdir(self.tsdb):
            with open(info_path) as f:
                info = json.load(f)
        # Older, or written before each set kept its own history's end: the head refuses samples
        # over an hour older than its newest, so such a history could not be caught up.
        if info and info["key"] == key and info["end"] >= time.time() - 60 * a.max_age \
                and isinstance(info.get("history_end"), dict):
            _log(f"reusing data generated {(time.time() - info['end']) / 60:.0f} min ago")
            self.exporter = synth.Exporter(key["services"], a.pods, info["origin"], a.scrape)
            self.dataset = info
            return info
        if os.path.exists(info_path):
            os.remove(info_path)
        end = int(time.time()) // a.scrape * a.scrape
        ds = data.Dataset(services=key["services"], pods=a.pods, step=a.scrape,
                          origin=end - int(a.days * 86400), end=end)
        _log(f"generating {ds.series} series x {(ds.end - ds.origin) // ds.step} samples ({ds.samples / 1e6:.1f} M)")
        built = data.build(ds, self.tsdb, self.work)
        _log(f"raw history imported in {built['build_seconds']} s")
        self.exporter = synth.Exporter(ds.services, ds.pods, ds.origin, ds.step)
        began = time.monotonic()
        self.exporter.render()  # accumulate the counters up to now before the first scrape
        done = self.backfill(history, ds)
        info = {"key": key, **built, "history": done, "history_seconds": round(time.monotonic() - began, 1),
                "history_end": dict.fromkeys(rulesets.SETS, ds.end)}
        with open(info_path, "w") as f:
            json.dump(info, f, indent=1)
        self.dataset = info
        return info

    def set_history(self, which: str, k: int) -> list[list[dict]]:
        """The levels of one set's recording rules that need history (the sets share no record)."""
        return backfill.levels(self.groups(which, k))

    def catch_up(self, prom: Prometheus, which: str, k: int) -> None:
        """Append one set's recorded history from where it ends to now, into the head of `prom`.

        The history ends when the data was generated, or where this set was last measured, and the
        set is measured up to half an hour later: without this, every read at an offset into that
        stretch (the 30m window's 5m tiles at 5 to 25 minutes, say) would find nothing, which costs
        less than a read in production and lets a sum that needs all its tiles skip the work
        (measured: a rule set whose windows needed every tile looked a third cheaper than it is,
        0.055x against 0.081x the baseline). In the head, not in blocks: a production server holds
        its last hours there, and a block overlapping the head makes each recent offset read merge
        two (measured at K=500: Observatory's 30m window 80 ms per cycle against 55 ms)."""
        ends = self.dataset["history_end"]
        now = int(time.time()) // self.rule_seconds * self.rule_seconds
        if now - ends[which] < self.rule_seconds:
            return
        began = time.monotonic()
        # After the last sample: one at the same time would be a duplicate, an older one out of order.
        samples = sum(backfill.append_history(prom, level, ends[which] + 1, now, self.rule_seconds)
                      for level in self.set_history(which, k))
        ends[which] = now
        self.save_dataset()
        _log(f"{which}: recorded history caught up to now in {time.monotonic() - began:.0f} s ({samples} samples)")

    def save_dataset(self) -> None:
        info_path = os.path.join(self.args.data, "dataset.json")
        # Gone once a smaller K deleted the other SLOs' history: then the next run must rebuild.
        if os.path.exists(info_path):
            with open(info_path, "w") as f:
                json.dump(self.dataset, f, indent=1)

    def check_history_reaches_now(self, prom: Prometheus, which: str, k: int) -> None:
        """Refuse to measure while a recorded series' history stops short of now (see `catch_up`)."""
        history = self.set_history(which, k)
        records = sorted({r["record"] for level in history for g in level for r in g["rules"]})
        # At the time the history was caught up to; every series must have a sample within the
        # longest interval of the set's groups (and a scrape's slack).
        step = max(duration_seconds(g.get("interval", self.args.rule_interval)) for level in history for g in level)
        stale = measure.history_gaps(prom, records, at=self.dataset["history_end"][which], within=step + 60)
        if stale:
            raise RuntimeError(f"recorded history ends too early for {', '.join(stale)}: offset reads would "
                               "fall into a gap and measure less than production does")

    def backfill(self, history: list[list[dict]], ds: data.Dataset) -> list[dict]:
        done = []
        for n, level in enumerate(history):
            began = time.monotonic()
            with self.server(None, self.args.rule_interval) as prom:
                paths = backfill.write_history(prom, level, ds.origin, ds.end, self.rule_seconds,
                                               data.BLOCK_SECONDS, self.work)
            data.import_openmetrics(sorted(paths.values()), self.tsdb)
            records = sorted({r["record"] for g in level for r in g["rules"]})
            done.append({"level": n, "rules": sum(len(g["rules"]) for g in level), "records": records,
                         "seconds": round(time.monotonic() - began, 1)})
            _log(f"history level {n}: {done[-1]['rules']} recording rules ({', '.join(records)}) in {done[-1]['seconds']} s")
        return done

    def settle(self, prom: Prometheus, timeout: float = 600) -> float:
        """Wait until the TSDB merged the overlapping history blocks (it does so in the background)."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            busy = [d for d in os.listdir(self.tsdb) if ".tmp" in d]
            if not busy and overlapping_blocks(self.tsdb) == 0:
                return time.monotonic() - began
            time.sleep(2)
        raise TimeoutError(f"TSDB compaction still running after {timeout}s")

    # --- measurement -----------------------------------------------------------------------
    def measure_all(self) -> dict:
        rule_file = os.path.join(self.work, "rules.yml")
        rulesets.write_rule_file(rule_file, [])
        rows: list[dict] = []
        results: dict = {"rows": rows}
        # One server for the whole run, as a production one runs for weeks: each set's recorded
        # history is caught up into its head before the set is measured.
        with self.server(rule_file, self.args.rule_interval) as prom:
            waited = self.settle(prom)
            results["idle_cores"] = measure.idle_cpu(prom, 20)
            _log(f"TSDB settled after {waited:.0f} s; Prometheus uses {results['idle_cores']:.3f} cores without rules")
            # Largest K first: Observatory's shared windows read every SLO of the namespace, so before a
            # smaller K the recorded history of the SLOs beyond it goes (a namespace with K SLOs has the
            # history of K). The cached data loses it too, so the next run rebuilds.
            for k in sorted(self.ks, reverse=True):
                if k < max(self.ks):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(os.path.join(self.args.data, "dataset.json"))
                    began = time.monotonic()
                    kept = "|".join(rulesets.slo_name(i) for i in range(1, k + 1))
                    prom.delete_series(f'{{__name__=~"observatory:slo_.+",slo!~"{kept}"}}')
                    # The baseline's too, which would otherwise stop short of now (nothing records them).
                    prom.delete_series(f'{{__name__=~"slo:.+",sloth_slo!~"{kept}"}}')
                    _log(f"K={k}: recorded history of the other SLOs deleted in {time.monotonic() - began:.0f} s")
                interval, cycles = self.plan[k]
                rounds: list[dict] = []
                for n in range(self.args.rounds):
                    # Each round measures both sets back to back, in turn first, so that a drift of the
                    # machine over the run (page cache, other work) weighs on both alike.
                    order = rulesets.SETS if n % 2 == 0 else tuple(reversed(rulesets.SETS))
                    measured = {which: self.measure_caught_up(prom, rule_file, results, which, k, interval, cycles)
                                for which in order}
                    rounds.append({which: measured[which] for which in rulesets.SETS})
                    _log(f"K={k} round {n + 1}: ratio {_ratio(measured, 'amortised_s'):.4f}")
                rows.insert(0, {"k": k, "interval": interval, "cycles": cycles, **median_row(rounds)})
        return results

    def measure_caught_up(self, prom: Prometheus, rule_file: str, results: dict, which: str, k: int,
                          interval: str, cycles: int) -> dict:
        """One set's cost, its recorded history caught up to now first."""
        self.catch_up(prom, which, k)
        self.check_history_reaches_now(prom, which, k)
        measured = self.measure_set(prom, rule_file, self.groups(which, k), k, interval, cycles, results["idle_cores"])
        _log(f"K={k} {which}: {measured['amortised_s'] * 1000:.1f} ms per {self.args.rule_interval}, median "
             f"{measured['median_s'] * 1000:.1f} ms per cycle ({measured['cycles']} cycles, cpu "
             f"{measured['cpu_utilisation']:.2f}, missed {measured['iterations_missed']:.0f})")
        self.unload(prom, rule_file, which)
        return measured

    def unload(self, prom: Prometheus, rule_file: str, which: str) -> None:
        rulesets.write_rule_file(rule_file, [])
        prom.reload()
        # Its rules recorded live up to here, and their series go stale now: the next catch-up
        # starts after that, in this run or the next one that reuses the data (its server replays
        # these samples from the WAL, and refuses older ones).
        self.dataset["history_end"][which] = int(time.time())
        self.save_dataset()

    def measure_set(self, prom: Prometheus, rule_file: str, groups: list[dict], k: int, interval: str,
                    cycles: int, idle: float) -> dict:
        """One rule set's cost, every group evaluated at `interval`, loaded alone into `prom`."""
        production = {g["name"]: duration_seconds(g.get("interval", self.args.rule_interval)) for g in groups}
        rulesets.write_rule_file(rule_file, [{**g, "interval": interval} for g in groups])
        write_config(os.path.join(self.work, "prometheus.yml"), rule_file, interval, self.exporter.port,
                     f"{self.args.scrape}s")
        prom.reload()
        seconds = duration_seconds(interval)
        result = measure.measure(prom, len(groups), seconds, cycles, timeout=seconds * (cycles + 6) + 120)
        per_group = result.pop("per_group_median_s")
        # CPU is immune to how many groups wait for a core at once, which inflates wall-clock
        # evaluation times when the server (or the machine) is busy.
        result["cpu_per_cycle_s"] = max(0.0, result["cpu_utilisation"] - idle) * seconds
        # Cost per production cycle: a group with a longer interval runs that much less often.
        result["amortised_s"] = sum(v * self.rule_seconds / production[g.split(";", 1)[1]]
                                    for g, v in per_group.items())
        counts = rulesets.counts(groups)
        return {**counts, "rules_per_slo": counts["rules"] / k, **result}

    def run(self) -> None:
        began = time.monotonic()
        results: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
        if not rulesets.observatory_available():
            sys.exit("`observatory render` is not available in this venv; install the project first")
        with ThreadPoolExecutor(1) as background:
            # promtool's unit tests need no server: run them while the data is prepared.
            equivalence_done = None if self.args.skip_equivalence else background.submit(
                equivalence.run, os.path.join(self.work, "equivalence"), self.args.phases)
            if not self.args.skip_cost:
                try:
                    results["data"] = self.prepare(self.history(max(self.ks)))
                    if equivalence_done:
                        # A server scrapes the exporter meanwhile: the raw series have no gap either.
                        with self.server(None, self.args.rule_interval):
                            results["equivalence"] = equivalence_done.result()
                    results["cost"] = self.measure_all()
                finally:
                    if self.exporter:
                        self.exporter.close()
            if equivalence_done:
                results["equivalence"] = equivalence_done.result()
        results["seconds"] = round(time.monotonic() - began, 1)
        results["load"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
        with open(os.path.join(self.args.data, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        report.update(self.args.results, results, self.args)
        print(report.section(results, self.args), flush=True)  # the tables, as written
        _log(f"done in {results['seconds'] / 60:.1f} min; wrote {self.args.results}")


def main(argv: list[str] | None = None) -> None:
    Bench(_args(argv)).run()


if __name__ == "__main__":
    main()
