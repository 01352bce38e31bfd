"""Do both rule sets page and ticket at the same evaluation steps? Checked with `promtool test rules`.

For every scenario both rule sets (one SLO each, rendered by the same code as the cost benchmark)
run on the same input series. promtool evaluates the rules every minute; every ten minutes a
`promql_expr_test` expects nothing from a query that summarises the last ten evaluation steps of
`ALERTS{alertstate="firing"}` (how many steps fired, the first and the last); promtool reports what
it found instead, which gives each set's firing timeline evaluation step by evaluation step (one
query per step would make promtool ten times slower).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import yaml
from observatory.models.common import format_duration

from . import rulesets, synth

STEP = 60  # evaluation and sample interval, seconds
REQUESTS_PER_SECOND = 10.0
TIERS = ("page", "ticket")
# Sloth marks the tier with sloth_severity, Observatory with slo_tier.
TIER_LABELS = ("slo_tier", "sloth_severity")


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    # (minutes, burn as a multiple of the error budget, traffic as a multiple of the usual)
    segments: tuple[tuple[int, float, float], ...]
    steady: bool = False  # one constant burn after the clean start

    @property
    def minutes(self) -> int:
        return sum(m for m, _, _ in self.segments)


def _steady(burn: float) -> Scenario:
    return Scenario(f"steady {burn:g}x", f"6h clean, {burn:g}x for 1d, clean for 12h",
                    ((360, 0, 1), (1440, burn, 1), (720, 0, 1)), steady=True)


SCENARIOS = (
    *(_steady(b) for b in (0.5, 1, 3, 6, 14.4, 20)),
    Scenario("spike 20x 5m", "6h clean, 20x for 5m, clean for 8h", ((360, 0, 1), (5, 20, 1), (480, 0, 1))),
    Scenario("spike 100x 15m", "6h clean, 100x for 15m, clean for 8h", ((360, 0, 1), (15, 100, 1), (480, 0, 1))),
    Scenario("spike 30x 45m", "6h clean, 30x for 45m, clean for 8h", ((360, 0, 1), (45, 30, 1), (480, 0, 1))),
    Scenario("recovery", "6h clean, 20x for 3h, then 0.2x for 12h", ((360, 0, 1), (180, 20, 1), (720, 0.2, 1))),
    Scenario("burn at low traffic", "6h clean, 20x for 2h at a tenth of the traffic, clean for 8h",
             ((360, 0, 1), (120, 20, 0.1), (480, 0, 1))),
)
BUCKET = 10  # evaluation steps summarised per query


def _number(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".") or "0"


def _counter(increments: list[tuple[int, float]]) -> str:
    """promtool's expanding notation for a counter growing by `inc` per step for `n` steps."""
    parts, value = [], 0.0
    for n, inc in increments:
        parts.append(f"{_number(value)}+{_number(inc)}x{n - 1}")
        value += n * inc
    return " ".join(parts)


def input_series(s: Scenario) -> list[dict]:
    per_step = REQUESTS_PER_SECOND * STEP
    bad = [(m, per_step * t * min(1.0, synth.BUDGET * b)) for m, b, t in s.segments]
    good = [(m, per_step * t - e) for (m, _, t), (_, e) in zip(s.segments, bad)]
    labels = f'namespace="{synth.NAMESPACE}",service="{synth.service_name(1)}",route="/api/items",pod="p"'
    return [{"series": f'{synth.METRIC}{{{labels},code="200"}}', "values": _counter(good)},
            {"series": f'{synth.METRIC}{{{labels},code="500"}}', "values": _counter(bad)}]


def _summary(stat: str, expr: str) -> str:
    return f'label_replace({expr}, "stat", "{stat}", "", "")'


FIRING = 'ALERTS{alertstate="firing"}'
SUMMARY = " or ".join((
    _summary("count", f"count_over_time({FIRING}[{BUCKET * STEP}s])"),
    _summary("first", f"min_over_time(timestamp({FIRING})[{BUCKET * STEP}s:{STEP}s])"),
    _summary("last", f"max_over_time(timestamp({FIRING})[{BUCKET * STEP}s:{STEP}s])"),
))


def _test_times(s: Scenario) -> range:
    return range(BUCKET * STEP, s.minutes * 60, BUCKET * STEP)


def evaluation_order(groups: list[dict]) -> list[str]:
    """Groups of recording rules first, then those holding alerts, each kind in the order rendered.

    promtool evaluates the groups it is not given an order for in no particular order, so an alert
    would see the records of this step or of the last one by chance, and timelines would move by a
    step between runs. This order lets every alert see the newest records it can: the baseline's
    alerts those of the same step; Observatory's those its namespace's groups computed this step from
    the SLOs' 5m rates of the last one (they live in the SLO's group, evaluated last).
    """
    def has_alerts(g: dict) -> bool:
        return any("alert" in r for r in g["rules"])

    return [g["name"] for g in sorted(groups, key=has_alerts)]


def test_file(s: Scenario, rule_file: str, order: list[str]) -> dict:
    return {
        "rule_files": [rule_file],
        "evaluation_interval": f"{STEP}s",
        "group_eval_order": order,
        "tests": [{
            "interval": f"{STEP}s",
            "input_series": input_series(s),
            "promql_expr_test": [{"expr": SUMMARY, "eval_time": format_duration(t), "exp_samples": []}
                                 for t in _test_times(s)],
        }],
    }


_BLOCK = re.compile(r'time: (\S+),\n\s+exp: .*\n\s+got: (.*)')
_SERIES = re.compile(r"\{([^}]*)\} ([^,\s]+)")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def firing(output: str) -> dict[str, list[int]]:
    """Tier -> evaluation steps (minutes) at which its alert fired, from promtool's failure report."""
    out: dict[str, set[int]] = {t: set() for t in TIERS}
    for time_text, got in _BLOCK.findall(output):
        stats: dict[str, dict[str, float]] = {}
        for series, value in _SERIES.findall(got):
            labels = dict(_LABEL.findall(series))
            tier = next((labels[k] for k in TIER_LABELS if k in labels), None)
            if tier not in out:
                raise ValueError(f"alert without a known tier label: {series}")
            stats.setdefault(tier, {})[labels["stat"]] = float(value)
        for tier, st in stats.items():
            first, last, count = int(st["first"] // STEP), int(st["last"] // STEP), int(st["count"])
            if last - first + 1 != count:
                raise ValueError(f"{tier} alert flapped within {BUCKET} steps before {time_text}; use a smaller BUCKET")
            out[tier].update(range(first, last + 1))
    return {t: sorted(v) for t, v in out.items()}


def intervals(minutes: list[int]) -> list[tuple[int, int | None]]:
    """[(first firing minute, first minute no longer firing or None)]"""
    out: list[tuple[int, int | None]] = []
    for m in minutes:
        if out and out[-1][1] == m:
            out[-1] = (out[-1][0], m + 1)
        else:
            out.append((m, m + 1))
    return out


def _run(args: tuple[Scenario, str, list[str], str]) -> dict[str, list[tuple[int, int | None]]]:
    scenario, rule_file, order, path = args
    with open(path, "w") as f:
        yaml.safe_dump(test_file(scenario, os.path.basename(rule_file), order), f, sort_keys=False, width=1000)
    proc = subprocess.run(["promtool", "test", "rules", os.path.basename(path)], cwd=os.path.dirname(path),
                          capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 and "FAILED" not in output:
        raise RuntimeError(f"promtool test rules {path} failed: {output[-2000:]}")
    fired = firing(output)
    last = _test_times(scenario)[-1] // STEP  # the last step the tests saw
    return {t: [(a, None if b > last else b) for a, b in intervals(m)] for t, m in fired.items()}


def run(workdir: str) -> dict:
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    slos = os.path.join(workdir, "slos")
    rulesets.write_slos(slos, 1)
    rule_files, orders = {}, {}
    for which in rulesets.SETS:
        rule_files[which] = os.path.join(workdir, f"{which}.yml")
        groups = rulesets.rule_groups(which, slos)
        rulesets.write_rule_file(rule_files[which], groups)
        orders[which] = evaluation_order(groups)
    jobs = [(s, rule_files[w], orders[w], os.path.join(workdir, f"test-{i}-{w}.yml"))
            for i, s in enumerate(SCENARIOS) for w in rulesets.SETS]
    with ThreadPoolExecutor(2) as pool:
        timelines = list(pool.map(_run, jobs))
    rows = []
    for i, s in enumerate(SCENARIOS):
        base, obs = timelines[2 * i], timelines[2 * i + 1]
        for tier in TIERS:
            rows.append({"scenario": s.name, "description": s.description, "tier": tier,
                         "steady": s.steady, "burn": max(b for _, b, _ in s.segments),
                         "baseline": base[tier], "observatory": obs[tier], "same": base[tier] == obs[tier]})
    return {"step_seconds": STEP, "rows": rows}
