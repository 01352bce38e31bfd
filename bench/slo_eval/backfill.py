"""History of the recorded series that rules read over ranges: backfilled as blocks, caught up in the head.

In production both rule sets have been running for weeks: Sloth's 30d ratio averages weeks of its
recorded 5m ratio, and Observatory's windows sum its recorded 5m rates. Without that history either
set would read almost nothing and look cheaper than it is. So every recording rule whose output some
rule reads over a range or at an offset (plus what those rules read themselves) is evaluated over the whole
synthetic history by range queries against the server and imported with `promtool tsdb
create-blocks-from openmetrics`, level by level: a rule that reads another recorded series can only
be evaluated once that series' blocks are loaded. What has passed since, up to the minute a rule set
is measured, goes into the running server's head by remote write (`append_history`), where a
production server holds its last hours: in blocks overlapping the head, every recent offset read
would merge two copies of the series and cost more than in production.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO

import promql_parser as pp

from observatory.models.common import duration_seconds

from .prom import Prometheus


Read = tuple[str, dict[str, str]]  # a metric name and the label values its selector pins with `=`


def _reads(expr: str) -> tuple[list[Read], list[Read]]:
    """(series read at all, series read over a range or at an offset: their past) by one expression."""
    every: list[Read] = []
    ranged: list[Read] = []

    def pinned(node: pp.VectorSelector) -> dict[str, str]:
        return {m.name: m.value for m in node.matchers.matchers if m.op == pp.MatchOp.Equal}

    def visit(node: pp.Expr) -> None:
        if isinstance(node, pp.MatrixSelector):
            ranged.append((node.vector_selector.name, pinned(node.vector_selector)))
        elif isinstance(node, pp.VectorSelector) and node.name:
            every.append((node.name, pinned(node)))
            if node.offset is not None:
                ranged.append((node.name, pinned(node)))

    pp.walk(pp.parse(expr), visit)
    return every, ranged


def levels(groups: list[dict]) -> list[list[dict]]:
    """Rule groups to backfill, in order: level n reads only raw series and levels below n.

    Rules are told apart by their record and labels, not the record alone: a window's mean reads the
    shorter windows' means, recorded under the same name with another window label."""
    rules = [(gi, ri, r) for gi, g in enumerate(groups) for ri, r in enumerate(g["rules"]) if "record" in r]

    def producers(read: Read) -> set[tuple[int, int]]:
        name, labels = read
        return {(gi, ri) for gi, ri, r in rules if r["record"] == name
                and all((r.get("labels") or {}).get(k, v) == v for k, v in labels.items())}

    reads: dict[tuple[int, int], set[tuple[int, int]]] = {}
    needed: set[tuple[int, int]] = set()
    for gi, g in enumerate(groups):
        for ri, r in enumerate(g["rules"]):
            every, ranged = _reads(r["expr"])
            if "record" in r:
                reads[(gi, ri)] = {p for read in every for p in producers(read)} - {(gi, ri)}
            needed |= {p for read in ranged for p in producers(read)}
    # Whatever a backfilled rule reads must have history too.
    todo = list(needed)
    while todo:
        for dep in reads.get(todo.pop(), ()):
            if dep not in needed:
                needed.add(dep)
                todo.append(dep)
    depth: dict[tuple[int, int], int] = {}

    def name(rule: tuple[int, int]) -> str:
        r = groups[rule[0]]["rules"][rule[1]]
        return r["record"] + (str(r["labels"]) if r.get("labels") else "")

    def level(rule: tuple[int, int], seen: tuple[tuple[int, int], ...] = ()) -> int:
        if rule in seen:
            raise ValueError(f"recording rules read each other in a cycle: {' -> '.join(map(name, seen + (rule,)))}")
        if rule not in depth:
            depth[rule] = 1 + max((level(d, seen + (rule,)) for d in reads.get(rule, ()) if d in needed), default=-1)
        return depth[rule]

    out: list[list[dict]] = []
    for rule in sorted(needed):
        level(rule)
    for n in range(max(depth.values(), default=-1) + 1):
        picked = []
        for gi, g in enumerate(groups):
            chosen = [r for ri, r in enumerate(g["rules"]) if (gi, ri) in needed and depth[(gi, ri)] == n]
            if chosen:
                picked.append({**{k: v for k, v in g.items() if k != "rules"}, "rules": chosen})
        out.append(picked)
    return out


def merged_levels(rule_sets: list[list[dict]]) -> list[list[dict]]:
    """The levels of several rule sets together, level n of all of them in one: each level is one
    pass over the history."""
    per_set = [levels(groups) for groups in rule_sets]
    return [[g for of_set in per_set if n < len(of_set) for g in of_set[n]]
            for n in range(max((len(of_set) for of_set in per_set), default=0))]


def _query_ranges(start: int, end: int, step: int) -> list[tuple[int, int]]:
    # The query API returns at most 11,000 points per series; shorter ranges keep each query of a
    # tiled window (many offset reads per SLO) well within the client's timeout.
    span = 2000 * step
    return [(s, min(s + span - step, end)) for s in range(start, end + 1, span)]


Labels = tuple[tuple[str, str], ...]  # a recorded series' labels without its name, sorted


def _series(prom: Prometheus, rule: dict, start: int, end: int, step: int) -> dict[Labels, list[tuple[int, str]]]:
    """Samples of one recording rule as Prometheus evaluates it: labels -> [(t, value)]."""
    out: dict[Labels, list[tuple[int, str]]] = {}
    for s, e in _query_ranges(start, end, step):
        result = prom.get("/api/v1/query_range", query=rule["expr"], start=str(s), end=str(e), step=f"{step}s")["result"]
        for series in result:
            labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
            labels.update(rule.get("labels", {}))
            out.setdefault(tuple(sorted(labels.items())), []).extend((int(t), v) for t, v in series["values"])
    # Result series that differ only in labels the rule sets are one recorded series, each holding
    # its part of the steps (an SLO's `errors or on() vector(0)`): in time order, as both sinks need.
    for points in out.values():
        points.sort()
    return out


def evaluated(prom: Prometheus, groups: list[dict], start: int, end: int, default_step: int,
              threads: int = 2) -> Iterator[tuple[str, dict[Labels, list[tuple[int, str]]]]]:
    """The recording rules of `groups` evaluated over [start, end], each at its group's interval:
    per record, in name order, its series."""
    by_record: dict[str, list[tuple[dict, int]]] = {}
    for g in groups:
        step = int(duration_seconds(g["interval"])) if g.get("interval") else default_step
        for r in g["rules"]:
            by_record.setdefault(r["record"], []).append((r, step))
    with ThreadPoolExecutor(threads) as pool:
        for record in sorted(by_record):
            merged: dict[Labels, list[tuple[int, str]]] = {}
            for s in pool.map(lambda rs: _series(prom, rs[0], _align(start, rs[1]), end, rs[1]), by_record[record]):
                for labels, points in s.items():
                    merged.setdefault(labels, []).extend(points)
            yield record, merged


def write_history(prom: Prometheus, groups: list[dict], start: int, end: int, default_step: int,
                  chunk_seconds: int, workdir: str) -> dict[int, str]:
    """Evaluate the recording rules of `groups` over [start, end] into OpenMetrics files, one per
    aligned chunk of `chunk_seconds` (so that each becomes one block); returns chunk start -> path."""
    files: dict[int, IO[str]] = {}
    paths: dict[int, str] = {}
    try:
        for record, series in evaluated(prom, groups, start, end, default_step):
            # A metric family must be contiguous in OpenMetrics: one record at a time.
            for f in files.values():
                f.write(f"# TYPE {record} gauge\n")
            begun = set(files)
            for labels, points in series.items():
                text = ",".join(f'{k}="{v}"' for k, v in labels)
                for t, v in points:
                    chunk = t - t % chunk_seconds
                    if chunk not in files:
                        paths[chunk] = os.path.join(workdir, f"history-{chunk}.om")
                        files[chunk] = open(paths[chunk], "w")
                    if chunk not in begun:
                        files[chunk].write(f"# TYPE {record} gauge\n")
                        begun.add(chunk)
                    files[chunk].write(f"{record}{{{text}}} {v} {t}\n")
    finally:
        for f in files.values():
            f.write("# EOF\n")
            f.close()
    return paths


def append_history(prom: Prometheus, groups: list[dict], start: int, end: int, default_step: int) -> int:
    """Evaluate the recording rules of `groups` over [start, end] and append the samples to the
    server's head by remote write, as a rule evaluated all along would have; returns the samples."""
    written = 0
    for record, series in evaluated(prom, groups, start, end, default_step):
        batch = [({"__name__": record, **dict(labels)}, [(t, float(v)) for t, v in points])
                 for labels, points in series.items()]
        # The head drops a second sample at a time within one request without a word (a live rule
        # would fail on such a collision): refuse it here.
        doubled = [labels for labels, points in batch if len({t for t, _ in points}) < len(points)]
        if doubled:
            raise RuntimeError(f"{record}: several results per step for {doubled[0]}: the rule's labels merge series")
        prom.remote_write(batch)
        written += sum(len(points) for _, points in batch)
    return written


def _align(t: int, step: int) -> int:
    return t + (-t) % step
