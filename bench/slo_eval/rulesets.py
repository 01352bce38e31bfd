"""The K SLO resources and the two rule sets generated from them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import yaml

from . import sloth_baseline, synth

OBSERVATORY = os.path.join(os.path.dirname(sys.executable), "observatory")
SETS = ("baseline", "observatory")


def slo_name(index: int) -> str:
    return f"{synth.service_name(index)}-availability"


def slo_resource(index: int) -> dict:
    selector = f'namespace="{synth.NAMESPACE}",service="{synth.service_name(index)}"'
    return {
        "apiVersion": "observatory.dev/v1alpha1",
        "kind": "SLO",
        "metadata": {"name": slo_name(index), "namespace": synth.NAMESPACE},
        "spec": {
            "objective": round(100 * (1 - synth.BUDGET), 6),
            "window": "30d",
            "indicator": {"ratio": {
                "errors": f'{synth.METRIC}{{{selector},code=~"5.."}}',
                "total": f"{synth.METRIC}{{{selector}}}",
            }},
        },
    }


def write_slos(folder: str, count: int) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    with open(os.path.join(folder, "slos.yaml"), "w") as f:
        yaml.safe_dump_all([slo_resource(i) for i in range(1, count + 1)], f, sort_keys=False)


def observatory_available() -> bool:
    if not os.path.exists(OBSERVATORY):
        return False
    probe = subprocess.run([OBSERVATORY, "render", "--help"], capture_output=True, text=True)
    return probe.returncode == 0


def rule_groups(which: str, folder: str) -> list[dict]:
    if which == "baseline":
        return sloth_baseline.rule_groups(sloth_baseline.load_folder(folder))
    out = subprocess.run([OBSERVATORY, "render", "-f", folder], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"observatory render failed: {out.stderr.strip()}")
    groups = []
    for doc in yaml.safe_load_all(out.stdout):
        if doc and doc.get("kind") == "PrometheusRule":
            groups.extend(doc["spec"]["groups"])
    if not groups:
        raise RuntimeError("observatory render printed no PrometheusRule")
    return groups


def write_rule_file(path: str, groups: list[dict]) -> None:
    with open(path, "w") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False, width=1000)


def counts(groups: list[dict]) -> dict[str, int]:
    rules = [r for g in groups for r in g["rules"]]
    return {"groups": len(groups), "rules": len(rules),
            "records": sum("record" in r for r in rules), "alerts": sum("alert" in r for r in rules)}
