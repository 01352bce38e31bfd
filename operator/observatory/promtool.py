"""Prometheus' own engine as the judge: `promtool check rules` and `promtool test rules`."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from . import promql
from .yamlio import dump


class PromtoolMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Outcome:
    name: str
    ok: bool
    output: str


def promtool_binary() -> str:
    found = shutil.which("promtool")
    if not found:
        raise PromtoolMissing("promtool not found on PATH (make setup installs it: apt-get install prometheus)")
    return found


def write_rule_files(objects: Iterable[dict[str, Any]], directory: Path) -> list[Path]:
    """One Prometheus rule file per PrometheusRule, as prometheus-operator would mount it."""
    files = []
    for obj in objects:
        if obj.get("kind") != "PrometheusRule":
            continue
        meta = obj["metadata"]
        path = directory / f"{meta['namespace']}-{meta['name']}.rules.yaml"
        path.write_text(dump({"groups": obj["spec"]["groups"]}))
        files.append(path)
    return files


def check_rules(rule_files: list[Path]) -> Outcome:
    if not rule_files:
        return Outcome("promtool check rules", True, "no rules")
    result = subprocess.run([promtool_binary(), "check", "rules", *map(str, rule_files)], capture_output=True, text=True)
    return Outcome("promtool check rules", result.returncode == 0, result.stdout + result.stderr)


def run_test_file(test_file: Path, rule_files: list[Path], workdir: Path, index: int = 0) -> Outcome:
    """Run a promtool test file against the generated rule groups it reaches (its own rule_files are
    replaced). promtool evaluates every group at every step of every test, so groups no assertion
    reads, directly or through what they record, only cost time: they are left out."""
    spec = yaml.safe_load(test_file.read_text())
    reached = _reached_rule_files(spec, rule_files, workdir, index)
    spec["rule_files"] = [str(p.resolve()) for p in reached]
    if isinstance(spec, dict) and "group_eval_order" not in spec:
        spec["group_eval_order"] = _producers_first(reached)
    copy = workdir / f"{index:03d}-{test_file.name}"
    copy.write_text(dump(spec))
    result = subprocess.run([promtool_binary(), "test", "rules", str(copy)], capture_output=True, text=True)
    return Outcome(str(test_file), result.returncode == 0, result.stdout + result.stderr)


def _producers_first(rule_files: list[Path]) -> list[str]:
    """The groups' names, each after the groups recording what it reads (file order otherwise, and
    within a cycle). Without an order promtool evaluates them in a Go map's, a fresh one per run
    (cmd/promtool/unittest.go, orderedGroups): a rule reading another group's record of the same
    step, such as a calendar budget's running total, then read it or the step before by chance.
    promtool orders groups by name, and namespaces' groups share names (each stack's prices group
    records the same series): a name is ordered after the names it reads from, never after itself."""
    groups = [group for path in rule_files for group in yaml.safe_load(path.read_text())["groups"]]
    names = list(dict.fromkeys(group["name"] for group in groups))
    producers: dict[str, set[str]] = {}
    for group in groups:
        for rule in group.get("rules", []):
            if rule.get("record"):
                producers.setdefault(rule["record"], set()).add(group["name"])
    needs: dict[str, set[str]] = {name: set() for name in names}
    for group in groups:
        for rule in group.get("rules", []):
            for read in _reads(str(rule.get("expr", ""))) or ():
                needs[group["name"]] |= producers.get(read, set())
    order: list[str] = []
    while len(order) < len(names):
        ready = [n for n in names if n not in order and needs[n] - {n} <= set(order)]
        order.append(ready[0] if ready else next(n for n in names if n not in order))
    return order


# Series Prometheus writes for every alerting rule: a read of them reaches all of them.
_ALERT_SERIES = {"ALERTS", "ALERTS_FOR_STATE"}


def _reached_rule_files(spec: Any, rule_files: list[Path], workdir: Path, index: int) -> list[Path]:
    groups = [(path, group) for path in rule_files for group in yaml.safe_load(path.read_text())["groups"]]
    wanted = _asserted(spec)
    if wanted is None:
        return rule_files
    producers: dict[str, list[int]] = {}
    for number, (_, group) in enumerate(groups):
        for rule in group.get("rules", []):
            producers.setdefault(rule.get("record") or rule.get("alert"), []).append(number)
    kept: set[int] = set()
    while wanted:
        name = wanted.pop()
        for number in producers.get(name, []):
            if number in kept:
                continue
            kept.add(number)
            for rule in groups[number][1].get("rules", []):
                reads = _reads(str(rule.get("expr", "")))
                if reads is None:
                    return rule_files
                wanted |= reads
    trimmed = []
    directory = workdir / f"{index:03d}-rules"
    directory.mkdir(exist_ok=True)
    for path in rule_files:
        own = [group for number, (source, group) in enumerate(groups) if source == path and number in kept]
        if own:
            copy = directory / path.name
            copy.write_text(dump({"groups": own}))
            trimmed.append(copy)
    return trimmed


def _asserted(spec: Any) -> set[str] | None:
    """Alert and metric names a test file's assertions read; None when they may read every rule."""
    if not isinstance(spec, dict) or not isinstance(spec.get("tests"), list):
        return None
    names: set[str] = set()
    for test in spec["tests"]:
        if not isinstance(test, dict):
            return None
        for case in test.get("alert_rule_test") or []:
            if not isinstance(case, dict) or not isinstance(case.get("alertname"), str):
                return None
            names.add(case["alertname"])
        for case in test.get("promql_expr_test") or []:
            reads = _reads(str(case.get("expr", ""))) if isinstance(case, dict) else None
            if reads is None:
                return None
            names |= reads
    return names


def _reads(expr: str) -> set[str] | None:
    """Metric names `expr` reads; None when it reads a selector without a name, the alerts' own
    series, or does not parse (promtool then reports it against all rules)."""
    try:
        selectors = promql.selectors(promql.parse(expr))
    except promql.PromQLError:
        return None
    names = {node.name for node in selectors}
    return None if None in names or "" in names or names & _ALERT_SERIES else names
