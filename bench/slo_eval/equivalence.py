"""Do both rule sets page and ticket as early? Checked with `promtool test rules`, interval-faithful.

For every scenario both rule sets (one SLO each, rendered by the same code as the cost benchmark)
run on the same input series, a sample every 30 s. promtool evaluates each set at the shortest
interval of its groups (`evaluation_step`: the baseline every 30 s, the production interval;
Observatory every minute, its groups' interval), at both offsets of a minute from the samples;
every five minutes a `promql_expr_test` expects nothing from a query that summarises the last five
minutes of `ALERTS{alertstate="firing"}` (how many evaluations fired, the first and the last);
promtool reports what it found instead, which gives each set's firing timeline evaluation step by
evaluation step (one query per step would make promtool ten times slower).

promtool evaluates every group at every step, whatever its `interval` (promtool 2.42: a 5m group
recording `vector(time())` reads 120 at 2m with a 1m `evaluation_interval`), so
a group slower than the step is gated (`gate_slow_groups`): each of its rules yields only at the
group's own evaluation times, `time() % interval == phase`, and nothing in between. In between a
real Prometheus writes nothing either, so the samples of a gated record are those a real one has,
with one difference: promtool writes a stale marker when the rule yields nothing, and an instant
read would then see no value where a real server sees the last sample for 5 minutes. Range reads
skip stale markers (promql/engine.go, `matrixIterSlice`), so the gating is exact for records that
are read only over ranges, which `gate_slow_groups` checks. Each scenario runs at every phase
(multiple of the step) of the slowest gated group, and the worst run counts.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import promql_parser as pp
import yaml
from observatory import promql
from observatory.models.common import duration_seconds, format_duration

from . import rulesets, synth

STEP = 30  # evaluation and sample interval, seconds: the production global interval
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
    return Scenario(f"steady {burn:g}x", f"6h clean, {burn:g}x for 1d, clean for 8h",
                    ((360, 0, 1), (1440, burn, 1), (480, 0, 1)), steady=True)


def _spike(burn: float, minutes: int) -> Scenario:
    return Scenario(f"spike {burn:g}x {minutes}m", f"6h clean, {burn:g}x for {minutes}m, clean for 8h",
                    ((360, 0, 1), (minutes, burn, 1), (480, 0, 1)))


# The burn-rate factors of the four alert conditions, and a burn 5 % above each.
THRESHOLDS = (14.4, 6, 3, 1)
JUST_ABOVE = 1.05

SCENARIOS = (
    *(_steady(b) for b in sorted({0.5, 20, *THRESHOLDS, *(round(f * JUST_ABOVE, 4) for f in THRESHOLDS)})),
    _spike(20, 5), _spike(100, 10), _spike(100, 15), _spike(30, 45), _spike(20, 120),
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


def input_series(s: Scenario, shift: int = 0) -> list[dict]:
    """The scenario's counters, one sample every STEP, `shift` seconds of clean traffic first."""
    per_step = REQUESTS_PER_SECOND * STEP
    bad = [(m * 60 // STEP + (shift // STEP if i == 0 else 0), per_step * t * min(1.0, synth.BUDGET * b))
           for i, (m, b, t) in enumerate(s.segments)]
    good = [(n, per_step * t - e) for (_, _, t), (n, e) in zip(s.segments, bad)]
    labels = f'namespace="{synth.NAMESPACE}",service="{synth.service_name(1)}",route="/api/items",pod="p"'
    return [{"series": f'{synth.METRIC}{{{labels},code="200"}}', "values": _counter(good)},
            {"series": f'{synth.METRIC}{{{labels},code="500"}}', "values": _counter(bad)}]


def _summary(stat: str, expr: str) -> str:
    return f'label_replace({expr}, "stat", "{stat}", "", "")'


FIRING = 'ALERTS{alertstate="firing"}'


def summary(step: int) -> str:
    """The firing steps of the last BUCKET * STEP seconds, read at the evaluations (`step` apart):
    between two, an instant read would see the older one's sample."""
    return " or ".join((
        _summary("count", f"count_over_time({FIRING}[{BUCKET * STEP}s])"),
        _summary("first", f"min_over_time(timestamp({FIRING})[{BUCKET * STEP}s:{step}s])"),
        _summary("last", f"max_over_time(timestamp({FIRING})[{BUCKET * STEP}s:{step}s])"),
    ))


def _test_times(s: Scenario, shift: int = 0) -> range:
    return range(BUCKET * STEP, s.minutes * 60 + shift, BUCKET * STEP)


def evaluation_step(groups: list[dict]) -> int:
    """The shortest interval of the groups (STEP where none is set), which every other divides:
    promtool evaluates every group at each of its steps."""
    intervals = [int(duration_seconds(g.get("interval", f"{STEP}s"))) for g in groups]
    step = min(intervals)
    if any(i % step for i in intervals) or step % STEP:
        raise ValueError(f"group intervals {sorted(set(intervals))} are not whole multiples of the shortest and of {STEP} s")
    return step


def evaluation_order(groups: list[dict]) -> list[str]:
    """Groups of recording rules first, then those holding alerts, each kind in the order rendered.

    promtool evaluates the groups it is not given an order for in no particular order, so an alert
    would see the records of this step or of the last one by chance, and timelines would move by a
    step between runs. This order lets every alert see the newest records it can: the baseline's
    alerts those of the same step (its best phase: in production its alert group runs up to one
    interval after its recordings); Observatory's those its namespace's groups computed this step
    from the SLOs' 5m rates of the last one (they live in the SLO's group, evaluated last), the
    one-interval lag it has in production at any phase.
    """
    def has_alerts(g: dict) -> bool:
        return any("alert" in r for r in g["rules"])

    return [g["name"] for g in sorted(groups, key=has_alerts)]


def _instant_reads(expr: pp.Expr) -> list[pp.VectorSelector]:
    """The selectors `expr` reads at an instant (not over a range)."""
    ranged = {id(n.vector_selector) for n in promql.nodes(expr) if isinstance(n, pp.MatrixSelector)}
    return [n for n in promql.nodes(expr) if isinstance(n, pp.VectorSelector) and id(n) not in ranged]


def _matches(matcher: pp.Matcher, label: str) -> bool:
    """Whether `matcher` accepts the value `label` (Prometheus anchors regular expressions at both ends)."""
    if matcher.op in (pp.MatchOp.Equal, pp.MatchOp.NotEqual):
        return (label == matcher.value) == (matcher.op == pp.MatchOp.Equal)
    return (re.fullmatch(matcher.value, label) is not None) == (matcher.op == pp.MatchOp.Re)


def _may_read(selector: pp.VectorSelector, rule: dict) -> bool:
    """Whether `selector` may select what `rule` records: its name, and no matcher refusing one of
    the labels the rule sets."""
    if selector.name != rule["record"]:
        return False
    labels = rule.get("labels", {})
    return all(_matches(m, labels[m.name]) for m in selector.matchers.matchers if m.name in labels)


def alert_inputs(groups: list[dict]) -> set[int]:
    """The ids of the records an alert reads, through other records or not. A read is matched
    against a record's name and labels: the windows and the budget's period means share names."""
    rules = [r for g in groups for r in g["rules"]]
    selectors = {id(r): [n for n in promql.nodes(promql.parse(r["expr"])) if isinstance(n, pp.VectorSelector)]
                 for r in rules}
    needed: set[int] = set()
    todo = [r for r in rules if "alert" in r]
    while todo:
        reader = todo.pop()
        for rule in rules:
            if "record" in rule and id(rule) not in needed and any(_may_read(sel, rule) for sel in selectors[id(reader)]):
                needed.add(id(rule))
                todo.append(rule)
    return needed


def slowest_gated(groups: list[dict], step: int = STEP) -> int:
    """The longest interval above `step` of a group whose records an alert reads (through other
    records or not), in seconds; 0 if no alert depends on when a slow group runs."""
    needed = alert_inputs(groups)
    return max((int(duration_seconds(g["interval"])) for g in groups
                if duration_seconds(g.get("interval", f"{STEP}s")) > step
                and any(id(r) in needed for r in g["rules"])), default=0)


def gate_slow_groups(groups: list[dict], phase: int, step: int = STEP) -> list[dict]:
    """Every group slower than `step` yields only at its own evaluation times, `phase` seconds into
    its interval. What no alert reads (the budget over the period) may read gated records at an
    instant: it decides nothing the equivalence compares."""
    needed = alert_inputs(groups)
    out, gated = [], []
    for g in groups:
        interval = int(duration_seconds(g.get("interval", f"{STEP}s")))
        g = {k: v for k, v in g.items() if k != "interval"}
        if interval > step:
            if any("alert" in r for r in g["rules"]):
                raise ValueError(f"group {g['name']}: gating an alert would hide its state between evaluations")
            gated.extend((g["name"], r) for r in g["rules"])
            g["rules"] = [{**r, "expr": f"({r['expr']}) and on() (vector(time() % {interval}) == {phase % interval})"}
                          for r in g["rules"]]
        out.append(g)
    for g, original in zip(out, groups):
        for r, rule_of_set in zip(g["rules"], original["rules"]):
            if "alert" not in r and id(rule_of_set) not in needed:
                continue
            # A gated rule reading a record of its own group reads it where both were just evaluated.
            instant = sorted({rule["record"] for sel in _instant_reads(promql.parse(r["expr"]))
                              for group, rule in gated if group != g["name"] and _may_read(sel, rule)})
            if instant:
                raise ValueError(f"{r.get('record') or r.get('alert')} reads {instant} at an instant: "
                                 "promtool's stale markers would hide a gated record between its evaluations")
    return out


def test_file(s: Scenario, rule_file: str, order: list[str], step: int = STEP, shift: int = 0) -> dict:
    return {
        "rule_files": [rule_file],
        "evaluation_interval": f"{step}s",
        "group_eval_order": order,
        "tests": [{
            "interval": f"{STEP}s",
            "input_series": input_series(s, shift),
            "promql_expr_test": [{"expr": summary(step), "eval_time": format_duration(t), "exp_samples": []}
                                 for t in _test_times(s, shift)],
        }],
    }


_BLOCK = re.compile(r'time: (\S+),\n\s+exp: .*\n\s+got: (.*)')
_SERIES = re.compile(r"\{([^}]*)\} ([^,\s]+)")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def firing(output: str, step: int = STEP) -> dict[str, list[int]]:
    """Tier -> evaluation steps (seconds, `step` apart) at which its alert fired, from promtool's failure report."""
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
            first, last, count = int(st["first"] // step), int(st["last"] // step), int(st["count"])
            if last - first + 1 != count:
                raise ValueError(f"{tier} alert flapped within {BUCKET} steps before {time_text}; use a smaller BUCKET")
            out[tier].update(range(first * step, (last + 1) * step, step))
    return {t: sorted(v) for t, v in out.items()}


def intervals(times: list[int], step: int = STEP) -> list[tuple[int, int | None]]:
    """[(first firing second, first second no longer firing or None)]"""
    out: list[tuple[int, int | None]] = []
    for t in times:
        if out and out[-1][1] == t:
            out[-1] = (out[-1][0], t + step)
        else:
            out.append((t, t + step))
    return out


@dataclass(frozen=True)
class Job:
    scenario: Scenario
    rule_file: str
    order: list[str]
    path: str
    step: int  # evaluation interval of the run
    shift: int  # seconds of clean traffic before the scenario: the groups' phase against the samples


def _run(job: Job) -> dict[str, list[tuple[int, int | None]]]:
    scenario, rule_file, order, path = job.scenario, job.rule_file, job.order, job.path
    text = yaml.safe_dump(test_file(scenario, os.path.basename(rule_file), order, job.step, job.shift),
                          sort_keys=False, width=1000)
    with open(rule_file) as f:
        key = hashlib.sha256((text + f.read()).encode()).hexdigest()
    # promtool's report of the very same test and rules, from an interrupted run: minutes each.
    cached = f"{path}.{key[:16]}.out"
    if os.path.exists(cached):
        with open(cached) as f:
            output = f.read()
    else:
        with open(path, "w") as f:
            f.write(text)
        proc = subprocess.run(["promtool", "test", "rules", os.path.basename(path)], cwd=os.path.dirname(path),
                              capture_output=True, text=True)
        output = proc.stdout + proc.stderr
        if proc.returncode != 0 and "FAILED" not in output:
            raise RuntimeError(f"promtool test rules {path} failed: {output[-2000:]}")
        with open(cached, "w") as f:
            f.write(output)
    fired = firing(output, job.step)
    last = _test_times(scenario, job.shift)[-1]  # the last step the tests saw
    # On the scenario's clock: the shift's clean seconds taken off.
    return {t: [(a - job.shift, None if b > last else b - job.shift) for a, b in intervals(m, job.step)]
            for t, m in fired.items()}


# Allowed lateness of Observatory behind the baseline, seconds (issue 14).
FIRE_SLACK = {"page": 60, "ticket": 300}
RESOLVE_SLACK = 300


def compare(base: list, phases: list[list]) -> dict:
    """The worst over phases of Observatory's lateness behind the baseline, and whether it is allowed."""
    if any(len(p) != len(base) for p in phases):
        return {"fire_late": None, "resolve_late": None, "fire_early": None}
    fire = [o[0] - b[0] for p in phases for b, o in zip(base, p)]
    resolve = [o[1] - b[1] for p in phases for b, o in zip(base, p) if None not in (b[1], o[1])]
    differently = any((b[1] is None) != (o[1] is None) for p in phases for b, o in zip(base, p))
    return {"fire_late": max(fire, default=0), "fire_early": min(fire, default=0),
            "resolve_late": None if differently else max(resolve, default=0)}


def meets(tier: str, delta: dict) -> bool:
    return (delta["fire_late"] is not None and delta["resolve_late"] is not None
            and delta["fire_late"] <= FIRE_SLACK[tier] and delta["resolve_late"] <= RESOLVE_SLACK)


def run(workdir: str, phases: int | None = None) -> dict:
    """`phases`: how many phases of the slowest gated group to run (default all, one per evaluation
    step); each at every phase of the evaluation step against the samples (STEP apart)."""
    os.makedirs(workdir, exist_ok=True)
    slos = os.path.join(workdir, "slos")
    rulesets.write_slos(slos, 1)
    jobs, index, steps = [], {}, {}
    for which in rulesets.SETS:
        groups = rulesets.rule_groups(which, slos)
        step = steps[which] = evaluation_step(groups)
        slowest = slowest_gated(groups, step)
        count = max(1, slowest // step)
        chosen = range(count) if phases is None else range(0, count, max(1, count // phases))
        for n in chosen:
            phase = n * step
            rule_file = os.path.join(workdir, f"{which}-{phase}.yml")
            gated = gate_slow_groups(groups, phase, step)
            rulesets.write_rule_file(rule_file, gated)
            for shift in range(0, step, STEP):
                run_phase = f"{phase}+{shift}"
                for i, s in enumerate(SCENARIOS):
                    index.setdefault((i, which), []).append(run_phase)
                    jobs.append(Job(s, rule_file, evaluation_order(gated),
                                    os.path.join(workdir, f"test-{i}-{which}-{run_phase}.yml"), step, shift))
    with ThreadPoolExecutor(2) as pool:
        timelines = dict(zip([os.path.basename(j.path) for j in jobs], pool.map(_run, jobs)))
    rows = []
    for i, s in enumerate(SCENARIOS):
        runs = {w: [timelines[f"test-{i}-{w}-{p}.yml"] for p in index[i, w]] for w in rulesets.SETS}
        [base] = runs["baseline"][:1]
        for tier in TIERS:
            phases_obs = [r[tier] for r in runs["observatory"]]
            delta = compare(base[tier], phases_obs)
            worst = max(phases_obs, key=lambda p: [x[0] for x in p] + [x[1] or 0 for x in p])
            rows.append({"scenario": s.name, "description": s.description, "tier": tier,
                         "steady": s.steady, "burn": max(b for _, b, _ in s.segments),
                         "baseline": base[tier], "observatory": worst, "phases": len(phases_obs),
                         "delta": delta, "meets": meets(tier, delta)})
    return {"step_seconds": STEP, "evaluation_seconds": steps, "rows": rows}
