"""Rule evaluation cost of one rule set, read from a running Prometheus.

Every group evaluates once per interval at its own fixed offset, so the n-th evaluation of each
group after a common start belongs to cycle n. Both sources are read at each poll: the rules API's
`evaluationTime` and the `prometheus_rule_group_last_duration_seconds` gauge (with
`prometheus_rule_group_last_evaluation_timestamp_seconds` to tell evaluations apart).
"""

from __future__ import annotations

import re
import statistics
import time

from .prom import Prometheus

_SAMPLE = re.compile(r'^(prometheus_rule_group_last_(?:duration|evaluation_timestamp)_seconds)\{rule_group="([^"]*)"\} (\S+)$')
_COUNTER = re.compile(r"^(process_cpu_seconds_total|prometheus_rule_group_iterations_missed_total)(?:\{[^}]*\})? (\S+)$")


def _from_api(prom: Prometheus) -> dict[str, tuple[float, float]]:
    """group -> (last evaluation as unix time, seconds it took)."""
    out = {}
    for g in prom.get("/api/v1/rules")["groups"]:
        stamp = g.get("lastEvaluation", "")
        if stamp.startswith("0001-"):  # not evaluated yet
            continue
        out[f"{g['file']};{g['name']}"] = (_parse_time(stamp), float(g["evaluationTime"]))
    return out


def _parse_time(stamp: str) -> float:
    # RFC 3339 with nanoseconds, e.g. 2026-11-22T21:41:46.633012345Z
    from datetime import datetime, timezone

    main, _, frac = stamp.rstrip("Z").partition(".")
    frac = frac.split("+")[0].split("-")[0]
    base = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


def _from_metrics(text: str) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
    durations: dict[str, float] = {}
    stamps: dict[str, float] = {}
    counters: dict[str, float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m:
            (durations if m.group(1).endswith("duration_seconds") else stamps)[m.group(2)] = float(m.group(3))
            continue
        m = _COUNTER.match(line)
        if m:
            counters[m.group(1)] = counters.get(m.group(1), 0.0) + float(m.group(2))
    return {g: (stamps[g], d) for g, d in durations.items() if stamps.get(g, 0) > 0}, counters


def _cycles(seen: dict[str, dict[float, float]], interval: float, after: dict[str, float]) -> list[float]:
    """Per complete cycle, the summed evaluation time of the groups in `after`, counting each
    group's evaluations later than its entry there."""
    slots: dict[int, list[float]] = {}
    for group, skip in after.items():
        evaluations = seen.get(group, {})
        stamps = sorted(t for t in evaluations if t > skip)
        for t in stamps:
            slots.setdefault(round((t - stamps[0]) / interval), []).append(evaluations[t])
    return [sum(v) for _, v in sorted(slots.items()) if len(v) == len(after)]


def idle_cpu(prom: Prometheus, seconds: float) -> float:
    """Cores Prometheus uses with no rules while polled as `measure` polls (scrapes, API, GC)."""
    _, before = _from_metrics(prom.metrics())
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        _from_api(prom)
        time.sleep(seconds / 10)
    _, after = _from_metrics(prom.metrics())
    return (after["process_cpu_seconds_total"] - before["process_cpu_seconds_total"]) / (time.monotonic() - began)


def measure(prom: Prometheus, groups: int, interval: float, cycles: int, timeout: float) -> dict:
    """Poll until `cycles` complete cycles of all `groups` were seen after a warm-up cycle."""
    api_seen: dict[str, dict[float, float]] = {}
    metric_seen: dict[str, dict[float, float]] = {}
    deadline = time.monotonic() + timeout
    # The first evaluation of a new group reads cold data: wait until every group ran once, skip that.
    warm: dict[str, float] = {}
    while time.monotonic() < deadline and len(warm) < groups:
        warm = {g: t for g, (t, _) in _from_api(prom).items()}
        time.sleep(interval / 4)
    _, before = _from_metrics(prom.metrics())
    began = time.monotonic()
    result: list[float] = []
    while time.monotonic() < deadline:
        for g, (t, d) in _from_api(prom).items():
            api_seen.setdefault(g, {})[t] = d
        parsed, after = _from_metrics(prom.metrics())
        for g, (t, d) in parsed.items():
            metric_seen.setdefault(g, {})[t] = d
        result = _cycles(api_seen, interval, warm)
        if len(result) >= cycles:
            break
        time.sleep(interval / 3)
    elapsed = time.monotonic() - began
    result = result[:cycles]
    # The gauges name a group "file;name" as the API does.
    from_metrics = _cycles(metric_seen, interval, warm)[:cycles]
    if len(result) < cycles:
        raise TimeoutError(f"only {len(result)} complete evaluation cycles of {groups} groups in {timeout:.0f}s")
    return {
        "cycles": len(result),
        "median_s": statistics.median(result),
        "min_s": min(result),
        "max_s": max(result),
        "median_metrics_s": statistics.median(from_metrics) if from_metrics else None,
        "per_group_median_s": {g: statistics.median([d for t, d in api_seen[g].items() if t > warm[g]] or [0.0])
                               for g in warm},
        "cpu_utilisation": round((after.get("process_cpu_seconds_total", 0) - before.get("process_cpu_seconds_total", 0))
                                 / elapsed, 3),
        "iterations_missed": after.get("prometheus_rule_group_iterations_missed_total", 0)
        - before.get("prometheus_rule_group_iterations_missed_total", 0),
    }


def history_gaps(prom: Prometheus, records: list[str], at: float, within: float) -> list[str]:
    """The recorded series names of which some series that has history has no sample in the
    `within` seconds before `at`: an offset read of it by a rule loaded then would fall into the gap."""
    gaps = []
    for record in records:
        selector = f'{{__name__="{record}"}}'
        counts = [prom.get("/api/v1/query", query=f"count(last_over_time({selector}[{span}]))", time=str(at))["result"]
                  for span in ("1d", f"{int(within)}s")]
        had, fresh = (float(r[0]["value"][1]) if r else 0.0 for r in counts)
        if not had or fresh < had:
            gaps.append(record)
    return gaps
