"""The incumbent's rules for our SLO resources, following Sloth's documented rule structure.

Written from Sloth's documentation of what it generates (no Sloth code): per SLO three groups,
- SLI recordings: the error ratio `sum(rate(errors[w])) / sum(rate(total[w]))` over the raw series
  for every alert window (5m, 30m, 1h, 2h, 6h, 1d, 3d), plus the period ratio averaged from the 5m
  one (`sum_over_time / count_over_time`) - 8 rules;
- metadata recordings: objective, error budget, period days, current and period burn rate, period
  error budget remaining, info - 7 rules;
- alerts: page (1h and 5m above 14.4x, or 6h and 30m above 6x) and ticket (1d and 2h above 3x,
  or 3d and 6h above 1x) - 2 rules.

Usage: python -m bench.slo_eval.sloth_baseline -f <folder of SLO yaml>  (prints a rule file)
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

import yaml

SLI_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# (severity, ((factor, long window, short window), ...)) from the SRE workbook, as Sloth uses them.
ALERT_WINDOWS = (
    ("page", ((14.4, "1h", "5m"), (6, "6h", "30m"))),
    ("ticket", ((3, "1d", "2h"), (1, "3d", "6h"))),
)
ID_LABELS = ("sloth_id", "sloth_service", "sloth_slo")


@dataclass(frozen=True)
class SLOSpec:
    service: str
    name: str
    objective: float  # percent
    period: str
    errors: str  # selector of bad events
    total: str  # selector of all events

    @property
    def id(self) -> str:
        return f"{self.service}-{self.name}"

    @property
    def labels(self) -> dict[str, str]:
        return {"sloth_id": self.id, "sloth_service": self.service, "sloth_slo": self.name}


def from_resource(doc: dict) -> SLOSpec:
    """An SLO custom resource (ratio indicator) as the baseline's input."""
    spec = doc["spec"]
    ratio = spec["indicator"]["ratio"]
    name = doc["metadata"]["name"]
    return SLOSpec(service=doc["metadata"].get("namespace", "default"), name=name,
                   objective=float(spec["objective"]), period=spec.get("window", "30d"),
                   errors=ratio["errors"], total=ratio["total"])


def _selector(spec: SLOSpec) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in spec.labels.items()) + "}"


def _record(name: str, expr: str, labels: dict[str, str]) -> dict:
    return {"record": name, "expr": expr, "labels": labels}


def sli_group(spec: SLOSpec) -> dict:
    rules = [
        _record(f"slo:sli_error:ratio_rate{w}",
                f"(sum(rate({spec.errors}[{w}])))\n/\n(sum(rate({spec.total}[{w}])))",
                {**spec.labels, "sloth_window": w})
        for w in SLI_WINDOWS
    ]
    sel = _selector(spec)
    rules.append(_record(
        f"slo:sli_error:ratio_rate{spec.period}",
        f"sum_over_time(slo:sli_error:ratio_rate5m{sel}[{spec.period}])\n/ ignoring (sloth_window)\n"
        f"count_over_time(slo:sli_error:ratio_rate5m{sel}[{spec.period}])",
        {**spec.labels, "sloth_window": spec.period}))
    return {"name": f"sloth-slo-sli-recordings-{spec.id}", "rules": rules}


def _budget(spec: SLOSpec) -> float:
    return (100 - spec.objective) / 100


def _days(period: str) -> int:
    if not period.endswith("d"):
        raise ValueError(f"window {period!r}: the baseline supports periods in days only")
    return int(period[:-1])


def meta_group(spec: SLOSpec) -> dict:
    sel = _selector(spec)
    on = "on(" + ", ".join(ID_LABELS) + ") group_left"
    info_labels = {**spec.labels, "sloth_mode": "cli-gen-prom", "sloth_spec": "prometheus/v1",
                   "sloth_version": "bench", "sloth_objective": f"{spec.objective:g}"}
    return {"name": f"sloth-slo-meta-recordings-{spec.id}", "rules": [
        _record("slo:objective:ratio", f"vector({spec.objective / 100!r})", spec.labels),
        _record("slo:error_budget:ratio", f"vector(1-{spec.objective / 100!r})", spec.labels),
        _record("slo:time_period:days", f"vector({_days(spec.period)})", spec.labels),
        _record("slo:current_burn_rate:ratio",
                f"slo:sli_error:ratio_rate5m{sel}\n/ {on}\nslo:error_budget:ratio{sel}", spec.labels),
        _record("slo:period_burn_rate:ratio",
                f"slo:sli_error:ratio_rate{spec.period}{sel}\n/ {on}\nslo:error_budget:ratio{sel}", spec.labels),
        _record("slo:period_error_budget_remaining:ratio", f"1 - slo:period_burn_rate:ratio{sel}", spec.labels),
        _record("sloth_slo_info", "vector(1)", info_labels),
    ]}


def alert_name(spec: SLOSpec) -> str:
    return "".join(part.capitalize() for part in spec.name.replace("_", "-").split("-")) + "HighErrorRate"


def alerts_group(spec: SLOSpec) -> dict:
    sel = _selector(spec)
    budget = _budget(spec)
    rules = []
    for severity, pairs in ALERT_WINDOWS:
        branches = [
            "(\n" + "\nand\n".join(
                f"    max(slo:sli_error:ratio_rate{w}{sel} > ({factor:g} * {budget!r})) without (sloth_window)"
                for w in (short, long)) + "\n)"
            for factor, long, short in pairs
        ]
        rules.append({
            "alert": alert_name(spec),
            "expr": "\nor\n".join(branches),
            "labels": {"sloth_severity": severity, "severity": severity},
            "annotations": {"title": f"(page) {spec.service} {spec.name} SLO error budget burn rate is too fast."
                            if severity == "page" else
                            f"(ticket) {spec.service} {spec.name} SLO error budget burn rate is too fast."},
        })
    return {"name": f"sloth-slo-alerts-{spec.id}", "rules": rules}


def rule_groups(specs: list[SLOSpec]) -> list[dict]:
    return [g for spec in specs for g in (sli_group(spec), meta_group(spec), alerts_group(spec))]


def load_folder(folder: str) -> list[SLOSpec]:
    specs = []
    for name in sorted(os.listdir(folder)):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(folder, name)) as f:
                specs.extend(from_resource(d) for d in yaml.safe_load_all(f) if d and d.get("kind") == "SLO")
    return specs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", "--folder", required=True, help="folder of SLO resources (YAML)")
    args = parser.parse_args(argv)
    yaml.safe_dump({"groups": rule_groups(load_folder(args.folder))}, sys.stdout, sort_keys=False, width=1000)


if __name__ == "__main__":
    main()
