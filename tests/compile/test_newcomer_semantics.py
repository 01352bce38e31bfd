"""Accepted but useless, or refused by a cluster: `observatory validate` says so, naming the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from observatory.cli import main

REPO = Path(__file__).resolve().parents[2]
HEAD = "apiVersion: observatory.dev/v1alpha1\nkind: {kind}\nmetadata: {{name: chat{namespace}}}\nspec:\n"


def doc(kind: str, spec: str) -> str:
    return HEAD.format(kind=kind, namespace="" if kind == "ObservabilityStackClass" else ", namespace: team-a") + spec


def alert(spec: str) -> str:
    return doc("AlertRule", "  severity: warning\n" + spec)


def slo(spec: str) -> str:
    return doc("SLO", "  objective: 99.5\n" + spec)


def chart_class(repository: str) -> str:
    return doc("ObservabilityStackClass", f"  phoenix:\n    chart: {{repository: '{repository}', version: 1.0.0}}\n")


# (case, document, identity and field the error names, words of the reason)
CASES = [
    ("no-apiversion", "kind: SLO\nmetadata: {name: chat, namespace: team-a}\nspec: {objective: 99.5}\n",
     "apiVersion", ["not set", "apiVersion: observatory.dev/v1alpha1"]),
    ("drift-baseline-shorter", alert("  drift: {current: 1d, baseline: 6h, ksThreshold: 0.3}\n"),
     "spec.drift.baseline", ["shorter than current (1d)"]),
    ("slo-errors-equal-total", slo("  indicator: {ratio: {errors: 'x_total{code=\"5\"}', total: 'x_total{code=\"5\"}'}}\n"),
     "spec.indicator.ratio.errors", ["is the same query as total"]),
    ("slo-errors-equal-total-spacing", slo("  indicator: {ratio: {errors: 'x_total{a=\"1\"}', total: 'x_total{ a = \"1\" }'}}\n"),
     "spec.indicator.ratio.errors", ["is the same query as total"]),
    ("errorrate-errors-equal-total", alert("  errorRate: {threshold: 0.1, errors: 'x_total', total: 'x_total'}\n"),
     "spec.errorRate.errors", ["is the same query as total"]),
    ("inf-latency-threshold", alert("  latency: {thresholdSeconds: .inf}\n"), "spec.latency.thresholdSeconds",
     ["finite number"]),
    ("inf-budget", alert("  cost: {budgetUSD: .inf}\n"), "spec.cost.budgetUSD", ["finite number"]),
    ("nan-psi", alert("  drift: {psiThreshold: .nan}\n"), "spec.drift.psiThreshold", ["finite number"]),
    ("oci-no-host", chart_class("oci:///charts"), "spec.phoenix.chart.repository", ["not an OCI repository"]),
    ("oci-uppercase", chart_class("oci://Registry.example.com/Charts"), "spec.phoenix.chart.repository",
     ["not an OCI repository", "lowercase"]),
    ("oci-tag", chart_class("oci://registry.example.com/charts/phoenix:1.0"), "spec.phoenix.chart.repository",
     ["not an OCI repository", "version"]),
    ("oci-double-slash", chart_class("oci://registry.example.com//charts"), "spec.phoenix.chart.repository",
     ["not an OCI repository"]),
    ("quoted-objective", slo("  indicator: {llm: {preset: availability}}\n").replace("99.5", '"99.5"'),
     "spec.objective", ["write 99.5 without quotes"]),
    ("quoted-integer", alert("  quality: {evaluation: relevance, minScore: 0.5, minSamples: '10'}\n"),
     "spec.quality.minSamples", ["write 10 without quotes"]),
    ("string-boolean", slo("  indicator: {llm: {preset: availability}}\n  alerting: {page: {enabled: 'false'}}\n"),
     "spec.alerting.page.enabled", ["write false without quotes"]),
    ("broken-template", alert("  cost: {budgetUSD: 10}\n  annotations: {summary: 'spent {{ $value | humanize }'}\n"),
     "spec.annotations.summary", ["template"]),
]


@pytest.mark.parametrize("text, field, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_useless_or_unappliable_input_is_refused(tmp_path: Path, capsys, text: str, field: str, words: list[str]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    assert main(["validate", "-f", str(path)]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"{path}: ") and f": {field}: " in line]
    assert lines, err
    for word in words:
        assert word in lines[0], lines[0]


def test_a_good_oci_repository_is_accepted(tmp_path: Path, capsys) -> None:
    path = tmp_path / "class.yaml"
    path.write_text(chart_class("oci://registry.example.com:5000/mirror/charts"))
    assert main(["validate", "-f", str(path)]) == 0, capsys.readouterr().err


def test_observatory_test_without_test_files_does_not_report_a_pass(tmp_path: Path) -> None:
    """With only rules, nothing was tested: `1 passed` (the rules check) read as a passing test suite."""
    result = subprocess.run([sys.executable, "-m", "observatory", "test", "-f", "examples/alertrules/"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert "1 passed" not in result.stdout, result.stdout
    assert "no promtool test files" in result.stdout + result.stderr, result.stdout + result.stderr
    assert result.returncode == 1
