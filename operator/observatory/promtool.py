"""Prometheus' own engine as the judge: `promtool check rules` and `promtool test rules`."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

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
    """Run a promtool test file against the generated rule files (its own rule_files are replaced)."""
    spec = yaml.safe_load(test_file.read_text())
    spec["rule_files"] = [str(p.resolve()) for p in rule_files]
    copy = workdir / f"{index:03d}-{test_file.name}"
    copy.write_text(dump(spec))
    result = subprocess.run([promtool_binary(), "test", "rules", str(copy)], capture_output=True, text=True)
    return Outcome(str(test_file), result.returncode == 0, result.stdout + result.stderr)
