"""What other structures of Observatory's SLO rules would cost at K SLOs, beside the baseline.

    python -m bench.slo_eval.variants --k 500            # the baseline, today's rules and each variant
    python -m bench.slo_eval.variants --k 500 floor      # only the sets whose name starts with these

Each variant transforms the rules `observatory render` prints for the bench's SLOs; the history is
that of what the measured sets record (all but the self-contained shards record the same series).
Each set is loaded alone into one server on the same data, the recorded history caught up to the present before it (`Bench.catch_up`), every group
evaluated every `--interval`, and its cost per 30 s of production printed as the cost bench computes
it. Results of 2026-12-03 are in bench/RESULTS.md ("The history gap, and the K = 500 cost without it").
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from collections.abc import Callable

from observatory.models.common import duration_seconds

from . import backfill, rulesets, synth
from .__main__ import Bench, _args, _log

EVENTS = "observatory:slo_events:rate"
# Each window's part and how many of them tile it (as compile/slo.py tiles a 30-day SLO's windows).
TILES = {"30m": ("5m", 6), "1h": ("30m", 2), "2h": ("1h", 2), "6h": ("2h", 3), "1d": ("6h", 4), "3d": ("1d", 3),
         "30d": ("3d", 10)}


def _own_groups(groups: list[dict]) -> list[dict]:
    return [g for g in groups if g["name"].startswith("observatory.slos.")]


def _regrouped(groups: list[dict], shards: int, keep: Callable[[dict], bool]) -> list[dict]:
    """The SLOs' own rules that `keep` keeps, in `shards` groups instead of one per hash value."""
    groups = copy.deepcopy(groups)  # a variant of the rendered rules, never a change to them
    own = _own_groups(groups)
    merged = [{"name": f"observatory.slos.{i}", "rules": []} for i in range(shards)]
    for g in own:
        merged[int(g["name"].rsplit(".", 1)[1]) % shards]["rules"].extend(r for r in g["rules"] if keep(r))
    return [*(m for m in merged if m["rules"]), *(g for g in groups if g not in own)]


def shared_alerts(groups: list[dict], namespace: str, shards: int = 8) -> list[dict]:
    """One page and one ticket alert per namespace and period, no objective rule, fewer shards."""
    out = _regrouped(groups, shards, lambda r: r.get("record") == EVENTS)
    for g in out:
        if g["name"].startswith("observatory.slo-windows.") and not g["name"].endswith(".long"):
            period = g["name"].rsplit(".", 1)[1]
            g["rules"] += [{"alert": f"SLOErrorBudgetBurn{tier.capitalize()}",
                            "expr": f'observatory:slo_burning{{namespace="{namespace}",slo_tier="{tier}",window="{period}"}}',
                            "labels": {"severity": severity}} for tier, severity in (("page", "critical"), ("ticket", "warning"))]
    return out


def summed_by_plus(groups: list[dict], namespace: str, fallback: bool) -> list[dict]:
    """Each window's tiles summed by `+` (absent if one is missing), or else its latest part; the
    period's mean (the budget) keeps its union."""
    out = copy.deepcopy(groups)
    for g in out:
        for r in g["rules"]:
            window = (r.get("labels") or {}).get("burn_window")
            if r.get("record") != EVENTS or window not in TILES or (fallback and window == "30d"):
                continue
            part, n = TILES[window]
            period = g["name"].removesuffix(".long").rsplit(".", 1)[1]
            tile = f'{EVENTS}{{burn_window="{part}",namespace="{namespace}",window="{period}"}}'
            step = int(duration_seconds(part))
            r["expr"] = f"({' + '.join([tile, *(f'{tile} offset {step * i}s' for i in range(1, n))])}) / {n}"
            if fallback:
                r["expr"] += f" or {tile}"
    return out


SHARD_LABEL = "observatory_shard"
# The recorded series a shard's own windows, conditions and alerts read: those of its SLOs only.
_SHARDED_READ = re.compile(r"(observatory:slo_(?:events:rate|burn_rate|burning)\{)")


def self_contained_shards(groups: list[dict], namespace: str, shards: int = 8, interval: str = "1m") -> list[dict]:
    """Each shard one group, every `interval`, computing in order its SLOs' 5m rates, their exact
    windows up to 6h, the conditions and one page and one ticket alert: every window is exact at
    each evaluation and the alert fires in it, so at 1m a page should come at most 30 s after one
    evaluated every 30 s (not yet shown by the equivalence). The long windows and the budget stay
    one group of the namespace."""
    shared = shared_alerts(groups, namespace, shards)
    own = _own_groups(shared)
    fast = next(g for g in shared if g["name"].startswith("observatory.slo-windows.") and not g["name"].endswith(".long"))
    out = []
    for g in own:
        shard = g["name"].rsplit(".", 1)[1]
        rules = [{**r, "labels": {**r["labels"], SHARD_LABEL: shard}} for r in g["rules"]]
        for r in fast["rules"]:
            r = copy.deepcopy(r)
            r["expr"] = _SHARDED_READ.sub(rf'\1{SHARD_LABEL}="{shard}",', r["expr"])
            rules.append(r)
        out.append({"name": g["name"], "interval": interval, "rules": rules})
    return [*out, *(g for g in shared if g not in own and g is not fast)]


def floor(groups: list[dict], shards: int = 8) -> list[dict]:
    """The SLOs' own 5m events rules alone: what reading the raw series costs."""
    return _own_groups(_regrouped(groups, shards, lambda r: r.get("record") == EVENTS))


def variants(namespace: str) -> dict[str, Callable[[list[dict]], list[dict]]]:
    return {
        "today": copy.deepcopy,
        "shared-alerts": lambda g: shared_alerts(g, namespace),
        "shared-alerts-plus": lambda g: summed_by_plus(shared_alerts(g, namespace), namespace, fallback=False),
        "shared-alerts-plus-or-latest": lambda g: summed_by_plus(shared_alerts(g, namespace), namespace, fallback=True),
        "self-contained-shards-1m": lambda g: self_contained_shards(g, namespace),
        "floor": floor,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.slo_eval.variants", description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=500, help="number of SLOs")
    p.add_argument("--interval", default="40s", help="evaluation interval of every group while measuring")
    p.add_argument("--cycles", type=int, default=4, help="evaluation cycles measured per rule set")
    p.add_argument("--max-age", default="30", help="minutes after which cached data is rebuilt")
    p.add_argument("only", nargs="*", help="measure only the sets whose names start with these (baseline included)")
    args = p.parse_args(argv)
    bench = Bench(_args(["--ks", str(args.k), "--skip-equivalence", "--max-age", args.max_age]))
    today = bench.groups("observatory", args.k)
    sets = {"baseline": bench.groups("baseline", args.k)}
    sets |= {name: make(today) for name, make in variants(synth.NAMESPACE).items()}
    if args.only:
        sets = {n: g for n, g in sets.items() if n == "baseline" or any(n.startswith(o) for o in args.only)}
    if "self-contained-shards-1m" in sets and len(sets) > 2:
        # Its series carry a shard label, so the other sets' unlabelled window reads would read both.
        sys.exit("self-contained-shards-1m records other series: measure it alone with the baseline")
    history = backfill.merged_levels(list(sets.values()))  # of what the measured sets record
    rule_file = f"{bench.work}/rules.yml"
    try:
        bench.prepare(history)
        for name, groups in sets.items():
            bench.catch_up(history)
            rulesets.write_rule_file(rule_file, [])  # the server starts with none loaded, as each set is measured alone
            with bench.server(rule_file, args.interval) as prom:
                bench.settle(prom)
                bench.check_history_reaches_now(prom, history)
                result = bench.measure_set(prom, rule_file, groups, args.k, args.interval, args.cycles, 0.0)
                _log(f"{name}: {result['amortised_s'] * 1000:.1f} ms per 30 s of production, median cycle "
                     f"{result['median_s'] * 1000:.1f} ms, {result['groups']} groups, {result['rules']} rules")
    finally:
        if bench.exporter:
            bench.exporter.close()


if __name__ == "__main__":
    main()
