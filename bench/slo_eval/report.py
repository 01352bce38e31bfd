"""The "SLO rule evaluation cost" section of bench/RESULTS.md, rewritten from a run's results."""

from __future__ import annotations

import argparse
import os

HEADING = "## SLO rule evaluation cost"
# Where the equivalence table starts: a run that skips one part keeps the other part as it was.
EQUIVALENCE_MARK = "<!-- equivalence -->"
GOAL = 0.05  # issue 14: the windows tiled exactly, still a twentieth of the baseline at the largest K


def _when(seconds: int | None) -> str:
    if seconds is None:
        return "still firing"
    days, rest = divmod(seconds, 86400)
    minutes, secs = divmod(rest, 60)
    return (f"{days}d" if days else "") + f"{minutes // 60:02d}:{minutes % 60:02d}" + (f":{secs:02d}" if secs else "")


def _timeline(spans: list) -> str:
    return "never" if not spans else ", ".join(f"{_when(a)} → {_when(b)}" for a, b in spans)


def _ratio_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _minutes(seconds: int | None) -> str:
    return "n/a" if seconds is None else f"{seconds / 60:+g} min"


def _delta(row: dict) -> str:
    d = row["delta"]
    if not row["baseline"] and not row["observatory"]:
        return "neither fires"
    if d["fire_late"] is None:
        return "**a different number of firings**"
    fire = _minutes(d["fire_late"]) if d["fire_late"] == d["fire_early"] else \
        f"{_minutes(d['fire_early'])} to {_minutes(d['fire_late'])}"
    return f"fires {fire}, resolves {_minutes(d['resolve_late']) if d['resolve_late'] is not None else '**differently**'}"


def equivalence_lines(eq: dict) -> list[str]:
    """The equivalence table: each row's baseline, Observatory's worst phase, the lateness, the verdict."""
    rows = eq["rows"]
    met = sum(r["meets"] for r in rows)
    phases = max(r["phases"] for r in rows)
    evaluated = ", ".join(f"{which} every {seconds} s" for which, seconds in sorted(eq["evaluation_seconds"].items()))
    lines = [f"Alerting equivalence (`promtool test rules`, one SLO of 99.9 %, samples every {eq['step_seconds']} s, rules "
             f"evaluated at their groups' shortest interval ({evaluated}), each slower group at its own; Observatory at "
             f"{phases} phase(s): each of its slowest group an alert depends on, at each offset of its evaluations "
             f"from the samples; "
             f"the worst shown; times from the start of the scenario, firing → first evaluation not firing). Goal "
             f"(issue 14): Observatory fires at most 1 min (page) or 5 min (ticket) after the baseline and resolves at "
             f"most 5 min after it, and neither fires where the other does not: {met} of {len(rows)} scenario/tier "
             f"pairs meet it.", "",
             "| scenario | tier | baseline (Sloth structure) | Observatory (worst phase) | Observatory − baseline | meets |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['scenario']} ({r['description']}) | {r['tier']} | {_timeline(r['baseline'])} | "
                     f"{_timeline(r['observatory'])} | {_delta(r)} | {'yes' if r['meets'] else '**no**'} |")
    return lines + [""]


def section(results: dict, args: argparse.Namespace) -> str:
    lines = [HEADING, ""]
    lines.append(f"Reproduce: `make bench-slo-eval` (`bench/slo_eval/run.sh`); run of {results['started']}, "
                 f"{results['seconds'] / 60:.1f} min on this machine. Method and caveats: `bench/slo_eval/README.md`.")
    lines.append("")
    if "cost" in results:
        d = results["data"]
        lines.append(f"Data: {d['series']} request counters ({d['services']} services x {d['series'] // d['services']} "
                     f"label sets) over {args.days:g} days at a {d['step']} s scrape interval, {d['samples'] / 1e6:.1f} M "
                     f"samples, plus the history of every recorded series a rule reads over a range, evaluated "
                     f"every {args.rule_interval} (Prometheus 2.42, 127.0.0.1). One server; each rule set is loaded alone, "
                     f"its recorded history caught up into the head to the present first; every group is evaluated once per cycle (the measuring interval "
                     f"per K is in the table) and a cycle's cost is the sum of all groups' `evaluationTime` "
                     f"(`/api/v1/rules`); the medians from `prometheus_rule_group_last_duration_seconds` are given "
                     f"alongside. The ratio is per {args.rule_interval} of production: each group's median weighted by how "
                     f"often it runs there (every {args.rule_interval}, the global interval, unless the group sets its own, "
                     f"as Observatory's do: 1 min, 3 min for the long windows, 4 min for the objectives and the budget); "
                     f"the columns after it charge every group every cycle, as measured.")
        lines.append("")
        lines.append(f"| K | rules per SLO (baseline / Observatory) | baseline per {args.rule_interval} | "
                     f"Observatory per {args.rule_interval} | ratio | measuring interval | every group every cycle: "
                     "baseline / Observatory median | ratio | ratio from /metrics | "
                     "CPU-s per cycle above idle (baseline / Observatory) | CPU ratio |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        rows = results["cost"]["rows"]
        for row in rows:
            b, o = row["baseline"], row["observatory"]
            metric_ratio = (f"{o['median_metrics_s'] / b['median_metrics_s']:.3f}"
                            if b["median_metrics_s"] and o["median_metrics_s"] else "n/a")
            lines.append(
                f"| {row['k']} | {b['rules_per_slo']:g} / {o['rules_per_slo']:g} | {b['amortised_s'] * 1000:.1f} ms | "
                f"{o['amortised_s'] * 1000:.1f} ms | **{row['ratio_amortised']:.4f}** | {row['interval']} | "
                f"{b['median_s'] * 1000:.1f} / {o['median_s'] * 1000:.1f} ms | {row['ratio']:.3f} | {metric_ratio} | "
                f"{b['cpu_per_cycle_s']:.2f} / {o['cpu_per_cycle_s']:.2f} | {_ratio_text(row['ratio_cpu'])} |")
        lines.append("")
        top = rows[-1]
        verdict = "meets" if top["ratio_amortised"] <= GOAL else "misses"
        lines.append(f"At K = {top['k']} (goal: ratio ≤ {GOAL:g}): {top['ratio_amortised']:.4f}, which {verdict} the goal, with each group at its "
                     f"production interval (what a Prometheus pays); {top['ratio']:.3f} if every group ran every cycle, "
                     f"{_ratio_text(top['ratio_cpu'])} in CPU seconds (every group every cycle).")
        lines.append("")
        spread = "; ".join(f"K={row['k']}: " + ", ".join(f"{r['ratio_amortised']:.4f} ({r['baseline_amortised_s'] * 1000:.0f} / "
                                                         f"{r['observatory_amortised_s'] * 1000:.1f} ms)"
                                                         for r in row["rounds"])
                           for row in rows if "rounds" in row)
        if spread:
            lines.append(f"Each K measured in {len(rows[-1]['rounds'])} rounds, both sets back to back in each (the "
                         f"first set alternating), each set's recorded history caught up into the server's head first; the table gives each set's median over "
                         f"the rounds and the median of the rounds' ratios. The rounds' ratios per {args.rule_interval} "
                         f"(baseline / Observatory): {spread}.")
            lines.append("")
        missed = sum(row[s]["iterations_missed"] for row in rows for s in ("baseline", "observatory"))
        cycles = ", ".join(f"K={row['k']}: {row['cycles']}" for row in rows)
        lines.append(f"Cycles per measurement: {cycles}; evaluation iterations missed while measuring: {missed:.0f}; "
                     f"Prometheus used {results['cost']['idle_cores']:.3f} cores with no rules loaded (scrapes, "
                     f"polling, GC), subtracted in the CPU columns. Load average of the machine at the end: "
                     f"{results.get('load', 'n/a')}.")
        lines.append("")
    if "equivalence" in results:
        lines += [EQUIVALENCE_MARK, f"Equivalence: run of {results['started']}.", ""]
        lines.extend(equivalence_lines(results["equivalence"]))
    return "\n".join(lines)


def update(path: str, results: dict, args: argparse.Namespace) -> None:
    """Replace this section in `path` (or append it), keeping every other section as it is, and the
    cost or equivalence part of this one if the run skipped it."""
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    start = text.find(HEADING)
    end = text.find("\n## ", start + len(HEADING)) if start >= 0 else -1
    old = text[start:end if end >= 0 else len(text)] if start >= 0 else ""
    new = section(results, args).rstrip() + "\n"
    if old and ("cost" not in results or "equivalence" not in results):
        mark = old.find(EQUIVALENCE_MARK)
        kept_cost, kept_eq = (old[:mark], old[mark:]) if mark >= 0 else (old, "")
        new_head, _, new_eq = new.partition(EQUIVALENCE_MARK)
        if "cost" not in results:
            new = kept_cost.rstrip() + "\n\n" + (EQUIVALENCE_MARK + new_eq if new_eq else "")
        else:
            new = new_head.rstrip() + "\n\n" + kept_eq
        new = new.rstrip() + "\n"
    if start < 0:
        text = text.rstrip() + "\n\n" + new
    else:
        text = text[:start] + new + (text[end:] if end >= 0 else "")
    with open(path, "w") as f:
        f.write(text)
