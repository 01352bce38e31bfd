"""The "SLO rule evaluation cost" section of bench/RESULTS.md, rewritten from a run's results."""

from __future__ import annotations

import argparse
import os

HEADING = "## SLO rule evaluation cost"
GOAL = 0.1  # issue 7: an order of magnitude cheaper at the largest K


def _when(minute: int | None) -> str:
    if minute is None:
        return "still firing"
    days, rest = divmod(minute, 1440)
    return (f"{days}d" if days else "") + f"{rest // 60:02d}:{rest % 60:02d}"


def _timeline(spans: list) -> str:
    return "never" if not spans else ", ".join(f"{_when(a)} → {_when(b)}" for a, b in spans)


def _delta(base: list, obs: list) -> str:
    if base == obs:
        return "same"
    if len(base) != len(obs):
        return "different number of firings"
    parts = []
    for (b0, b1), (o0, o1) in zip(base, obs):
        if b0 != o0:
            parts.append(f"fires {o0 - b0:+d} min")
        if b1 != o1:
            parts.append("resolves " + (f"{o1 - b1:+d} min" if None not in (b1, o1) else "differently"))
    return ", ".join(parts)


# Burn-rate factors of the four alert conditions: a steady burn at exactly one of them sits on `>`.
THRESHOLD_FACTORS = (14.4, 6, 3, 1)
EDGE_MINUTES = 5  # the recorded rate's window: how far apart the two sets' window edges can fall


def _why(row: dict) -> str:
    """Why a timeline differs, or that it is not explained."""
    base, obs = row["baseline"], row["observatory"]
    if base == obs:
        return ""
    steady = row.get("burn") if row.get("steady") else None
    shifts = [abs(o - b) for bs, os_ in zip(base, obs) for b, o in zip(bs, os_) if None not in (b, o)]
    if len(base) == len(obs) and shifts and max(shifts) <= EDGE_MINUTES:
        return ("window edges: Observatory's windows sum recorded 5m rates (from 2h up, sampled every 5 "
                "minutes), so a change enters and leaves them over up to 5 minutes instead of at once, and each "
                "alert reads a condition its namespace's shared group records, one evaluation later")
    if steady in THRESHOLD_FACTORS:
        return (f"the burn equals a threshold ({steady:g}x): both sides of `>` are the same ratio up to "
                "floating-point rounding, which differs between the two expressions")
    return "not explained: investigate"


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
                     f"every {args.rule_interval} (Prometheus 2.42, 127.0.0.1). Each rule set is loaded alone into the "
                     f"same server with the same data; every group is evaluated once per cycle (the measuring interval "
                     f"per K is in the table) and a cycle's cost is the sum of all groups' `evaluationTime` "
                     f"(`/api/v1/rules`); the medians from `prometheus_rule_group_last_duration_seconds` are given "
                     f"alongside. The ratio is per {args.rule_interval} of production: each group's median weighted by how "
                     f"often it runs there (every {args.rule_interval}, the global interval; Observatory's shared 5m and 1h "
                     f"groups at theirs); the columns after it charge every group every cycle, as measured.")
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
                f"{b['cpu_per_cycle_s']:.2f} / {o['cpu_per_cycle_s']:.2f} | {row['ratio_cpu']:.3f} |")
        lines.append("")
        top = rows[-1]
        verdict = "meets" if top["ratio_amortised"] <= GOAL else "misses"
        lines.append(f"At K = {top['k']} (goal: ratio ≤ {GOAL:g}): {top['ratio_amortised']:.4f}, which {verdict} the goal, with each group at its "
                     f"production interval (what a Prometheus pays); {top['ratio']:.3f} if every group ran every cycle, "
                     f"{top['ratio_cpu']:.3f} in CPU seconds (every group every cycle).")
        lines.append("")
        missed = sum(row[s]["iterations_missed"] for row in rows for s in ("baseline", "observatory"))
        cycles = ", ".join(f"K={row['k']}: {row['cycles']}" for row in rows)
        lines.append(f"Cycles per measurement: {cycles}; evaluation iterations missed while measuring: {missed:.0f}; "
                     f"Prometheus used {results['cost']['idle_cores']:.3f} cores with no rules loaded (scrapes, "
                     f"polling, GC), subtracted in the CPU columns. Load average of the machine at the end: "
                     f"{results.get('load', 'n/a')}.")
        lines.append("")
    if "equivalence" in results:
        rows = results["equivalence"]["rows"]
        same = sum(r["same"] for r in rows)
        lines.append(f"Alerting equivalence (`promtool test rules`, one SLO of 99.9 %, rules evaluated every minute; "
                     f"times are evaluation steps from the start of the scenario, firing → first step not firing): "
                     f"{same} of {len(rows)} scenario/tier pairs identical.")
        lines.append("")
        lines.append("| scenario | tier | baseline (Sloth structure) | Observatory | difference | why |")
        lines.append("|---|---|---|---|---|---|")
        for r in rows:
            lines.append(f"| {r['scenario']} ({r['description']}) | {r['tier']} | {_timeline(r['baseline'])} | "
                         f"{_timeline(r['observatory'])} | {_delta(r['baseline'], r['observatory'])} | {_why(r)} |")
        lines.append("")
    return "\n".join(lines)


def update(path: str, results: dict, args: argparse.Namespace) -> None:
    """Replace this section in `path` (or append it), keeping every other section as it is."""
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    new = section(results, args).rstrip() + "\n"
    start = text.find(HEADING)
    if start < 0:
        text = text.rstrip() + "\n\n" + new
    else:
        end = text.find("\n## ", start + len(HEADING))
        text = text[:start] + new + (text[end:] if end >= 0 else "")
    with open(path, "w") as f:
        f.write(text)
