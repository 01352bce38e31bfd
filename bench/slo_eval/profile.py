"""Where a rule set's evaluation time goes: per rule kind, on the benchmark's data and server.

    python -m bench.slo_eval.profile --k 500               # baseline and Observatory
    python -m bench.slo_eval.profile --k 500 --one-group   # also Observatory with its SLOs' rules in one group

Rules are told apart by record or alert name with the SLO's name (and group) taken out, so the 500
SLOs' requests records add up to one line. Each rule's median `evaluationTime` over the cycles seen (the first one,
cold, skipped) is summed per kind; a group's time beyond its rules' is its overhead. `--one-group`
measures what the groups holding the SLOs' own rules cost as groups: the same rules, in one group.
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import time

from observatory.models.common import duration_seconds

from . import rulesets
from .__main__ import Bench, _args
from .prom import Prometheus

SLO_NAME = re.compile(r"svc-\d+|Svc\d+|(?<=^observatory\.slos\.)\w+\.\d+$")  # an SLO, or its group


def rule_kind(group: str, rule: dict) -> str:
    name = rule["name"] if rule["type"] == "recording" else "alert " + rule["name"]
    window = (rule.get("labels") or {}).get("burn_window")  # the windows share their record's name
    return f"{SLO_NAME.sub('X', group)} :: {SLO_NAME.sub('X', name)}{f' {window}' if window else ''}"


def one_group(groups: list[dict]) -> list[dict]:
    """Observatory's rules with the groups holding the SLOs' own rules merged into one."""
    own = [g for g in groups if g["name"].startswith("observatory.slos.")]
    merged = {"name": "observatory.slos", "rules": [r for g in own for r in g["rules"]]}
    return [merged, *(g for g in groups if g not in own)]


def profile(prom: Prometheus, seconds: float) -> tuple[dict[str, float], float]:
    """(median seconds per rule kind, summed; summed group medians) over `seconds` of polling."""
    rules: dict[tuple[str, int], dict[str, float]] = collections.defaultdict(dict)
    kinds: dict[tuple[str, int], str] = {}
    groups: dict[str, dict[str, float]] = collections.defaultdict(dict)
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        for g in prom.get("/api/v1/rules")["groups"]:
            if g.get("lastEvaluation", "").startswith("0001-"):
                continue
            groups[g["name"]][g["lastEvaluation"]] = g["evaluationTime"]
            for i, r in enumerate(g["rules"]):
                kinds[g["name"], i] = rule_kind(g["name"], r)
                rules[g["name"], i][r["lastEvaluation"]] = r["evaluationTime"]
        time.sleep(seconds / 20)

    def warm_median(seen: dict[str, float]) -> float:
        values = [v for _, v in sorted(seen.items())[1:]]
        return statistics.median(values) if values else 0.0

    per_kind: dict[str, float] = collections.defaultdict(float)
    for key, seen in rules.items():
        per_kind[kinds[key]] += warm_median(seen)
    return dict(per_kind), sum(warm_median(seen) for seen in groups.values())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.slo_eval.profile", description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=500, help="number of SLOs")
    p.add_argument("--interval", default="40s", help="evaluation interval of every group while profiling")
    p.add_argument("--cycles", type=int, default=4, help="evaluation cycles to poll per rule set")
    p.add_argument("--one-group", action="store_true", help="also Observatory with its SLOs' rules in one group")
    args = p.parse_args(argv)
    bench = Bench(_args(["--ks", str(args.k), "--skip-equivalence"]))
    sets = {which: bench.groups(which, args.k) for which in rulesets.SETS}
    if args.one_group:
        sets["observatory, SLOs in one group"] = one_group(sets["observatory"])
    rule_file = f"{bench.work}/rules.yml"
    interval = args.interval
    seconds = duration_seconds(interval)
    try:
        bench.prepare(bench.history(args.k))
        rulesets.write_rule_file(rule_file, [])
        with bench.server(rule_file, interval) as prom:
            bench.settle(prom)
            for name, groups in sets.items():
                # As the cost bench measures: the set's recorded history caught up to now first (the
                # one-group variant records Observatory's series).
                family = "baseline" if name == "baseline" else "observatory"
                bench.catch_up(prom, family, args.k)
                bench.check_history_reaches_now(prom, family, args.k)
                rulesets.write_rule_file(rule_file, [{**g, "interval": interval} for g in groups])
                prom.reload()
                per_kind, groups_total = profile(prom, seconds * (args.cycles + 1.5))
                bench.unload(prom, rule_file, family)
                rules_total = sum(per_kind.values())
                print(f"== {name}: {groups_total * 1000:.1f} ms per cycle in all groups, {rules_total * 1000:.1f} ms "
                      f"in rules, {(groups_total - rules_total) * 1000:.1f} ms group overhead", flush=True)
                for kind, value in sorted(per_kind.items(), key=lambda kv: -kv[1]):
                    print(f"   {value * 1000:8.1f} ms  {kind}", flush=True)
    finally:
        if bench.exporter:
            bench.exporter.close()


if __name__ == "__main__":
    main()
