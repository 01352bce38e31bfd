"""Every AlertRule type proven by Prometheus' own engine: it fires on a bad series, stays silent on a healthy one.

Each case in rule_types/ holds one AlertRule and promtool tests (`tests:`) with exact labels and
annotations. The rules promtool runs are the ones the compile core generates for that resource
(plus the namespace's price catalogue), nothing hand-written. Every case also feeds bad series of
another namespace while the resource's own namespace is healthy, so a rule that leaked across
tenants would fire where the case expects silence.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from observatory.models import parse_resource
from promtool_cases import explain, run_promtool

CASES_DIR = Path(__file__).parent / "rule_types"
CASES = sorted(CASES_DIR.glob("*.yaml"))
# What the issue asks each case file to cover, by rule type (spec keys as users write them).
REQUIRED_CASES = {
    "threshold": ["threshold", "threshold-below"],
    "errorRate": ["error-rate", "error-rate-custom"],
    "latency": ["latency", "latency-custom"],
    "cost": ["cost", "cost-cache", "cost-steps", "cost-calendar-day"],
    "quality": ["quality-min-score", "quality-max-score"],
    "drift": ["drift-ks", "drift-psi"],
    "anomaly": ["anomaly-request-rate-up", "anomaly-error-ratio-both", "anomaly-error-ratio-first-errors",
                "anomaly-custom-down"],
    "absent": ["absent", "absent-custom"],
}


def load_case(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def alert_checks(case: dict[str, Any]) -> list[dict[str, Any]]:
    return [check for test in case["tests"] for check in test.get("alert_rule_test", [])]


def prove(case: dict[str, Any], workdir: Path) -> None:
    resource = parse_resource(case["resource"])
    outcome = run_promtool([resource], case["tests"], case["evaluation_interval"], workdir)
    assert outcome.ok, explain(outcome, workdir)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_rule_type_fires_on_bad_and_not_on_healthy(path: Path, tmp_path: Path, promtool: Path) -> None:
    prove(load_case(path), tmp_path)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_case_proves_both_directions_and_tenant_isolation(path: Path) -> None:
    """A case only counts if it expects the alert firing AND silent, with exact annotations, next to another tenant's data."""
    case = load_case(path)
    resource = parse_resource(case["resource"])
    checks = alert_checks(case)
    assert {c["alertname"] for c in checks} == {resource_alert(case)}, "checks must target the resource's alert"
    firing = [alert for c in checks for alert in c["exp_alerts"]]
    assert firing, "no check expects the alert to fire"
    assert any(not c["exp_alerts"] for c in checks), "no check expects the alert to stay silent"
    for alert in firing:
        assert alert["exp_labels"]["namespace"] == resource.namespace
        assert alert.get("exp_annotations", {}).get("summary"), "firing expectations must pin the annotations"
    series = [s["series"] for test in case["tests"] for s in test["input_series"]]
    assert any(f'namespace="{resource.namespace}"' not in s for s in series), \
        "feed another namespace's series so that a tenant leak would show"


def resource_alert(case: dict[str, Any]) -> str:
    name = case["resource"]["metadata"]["name"]
    return "".join(part.capitalize() for part in name.split("-"))


def test_every_rule_type_has_its_cases() -> None:
    stems = {p.stem for p in CASES}
    for rule_type, names in REQUIRED_CASES.items():
        for name in names:
            assert name in stems, f"{rule_type}: case {name}.yaml missing"
            spec = load_case(CASES_DIR / f"{name}.yaml")["resource"]["spec"]
            assert rule_type in spec, f"{name}.yaml is not a {rule_type} rule"


@pytest.mark.parametrize("mistake", ["silence-expected-where-it-fires", "firing-expected-where-silent", "wrong-label"])
def test_harness_fails_on_a_wrong_expectation(mistake: str, tmp_path: Path, promtool: Path) -> None:
    """The harness can fail: promtool must reject each kind of wrong expectation on a known-good case."""
    case = load_case(CASES_DIR / "threshold.yaml")
    checks = alert_checks(case)
    firing = next(c for c in checks if c["exp_alerts"])
    silent = next(c for c in checks if not c["exp_alerts"])
    if mistake == "silence-expected-where-it-fires":
        firing["exp_alerts"] = []
    elif mistake == "firing-expected-where-silent":
        silent["exp_alerts"] = copy.deepcopy(firing["exp_alerts"])
    else:
        firing["exp_alerts"][0]["exp_labels"]["severity"] = "critical"
    with pytest.raises(AssertionError, match="FAILED"):
        prove(case, tmp_path)
