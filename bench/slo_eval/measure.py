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


def _cycles(seen: dict[str, dict[float, float]], interval: float, start: float) -> list[float]:
    """Per complete cycle, the summed evaluation time of all groups."""
    slots: dict[int, list[float]] = {}
    groups = 0
    for evaluations in seen.values():
        stamps = sorted(t for t in evaluations if t >= start)
        if not stamps:
            continue
        groups += 1
        first = stamps[0]
        for t in stamps:
            slots.setdefault(round((t - first) / interval), []).append(evaluations[t])
    return [sum(v) for _, v in sorted(slots.items()) if len(v) == groups]


def measure(prom: Prometheus, groups: int, interval: float, cycles: int, timeout: float) -> dict:
    """Poll until `cycles` complete cycles of all `groups` were seen after a warm-up cycle."""
    api_seen: dict[str, dict[float, float]] = {}
    metric_seen: dict[str, dict[float, float]] = {}
    deadline = time.monotonic() + timeout
    # The first evaluation of a new group reads cold data; start one interval after all groups ran.
    while time.monotonic() < deadline:
        if len(_from_api(prom)) >= groups:
            break
        time.sleep(interval / 4)
    start = time.time() + interval
    _, before = _from_metrics(prom.metrics())
    began = time.monotonic()
    result: list[float] = []
    while time.monotonic() < deadline:
        for g, (t, d) in _from_api(prom).items():
            api_seen.setdefault(g, {})[t] = d
        parsed, after = _from_metrics(prom.metrics())
        for g, (t, d) in parsed.items():
            metric_seen.setdefault(g, {})[t] = d
        result = _cycles(api_seen, interval, start)
        if len(result) > cycles:  # the last slot may still be filling
            break
        time.sleep(interval / 3)
    elapsed = time.monotonic() - began
    result = result[:cycles]
    from_metrics = _cycles(metric_seen, interval, start)[:cycles]
    if len(result) < cycles:
        raise TimeoutError(f"only {len(result)} complete evaluation cycles of {groups} groups in {timeout:.0f}s")
    return {
        "cycles": len(result),
        "median_s": statistics.median(result),
        "min_s": min(result),
        "max_s": max(result),
        "median_metrics_s": statistics.median(from_metrics) if from_metrics else None,
        "per_group_median_s": {g: statistics.median(sorted(d for t, d in ev.items() if t >= start) or [0.0])
                               for g, ev in api_seen.items()},
        "cpu_utilisation": round((after.get("process_cpu_seconds_total", 0) - before.get("process_cpu_seconds_total", 0))
                                 / elapsed, 3),
        "iterations_missed": after.get("prometheus_rule_group_iterations_missed_total", 0)
        - before.get("prometheus_rule_group_iterations_missed_total", 0),
    }
