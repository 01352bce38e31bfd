"""Bad input is rejected with the field named and the reason; nothing is rendered."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from observatory.cli import main

ALERT = {
    "apiVersion": "observatory.dev/v1alpha1",
    "kind": "AlertRule",
    "metadata": {"name": "budget", "namespace": "team-a"},
    "spec": {"severity": "critical", "cost": {"budgetUSD": 100}},
}
SLO = {
    "apiVersion": "observatory.dev/v1alpha1",
    "kind": "SLO",
    "metadata": {"name": "availability", "namespace": "team-a"},
    "spec": {"objective": 99.5, "indicator": {"llm": {"preset": "availability"}}},
}
SLACK = {"name": "chat", "slack": {"apiURL": {"name": "slack", "key": "url"}}}


def alert(**spec) -> dict:
    doc = copy.deepcopy(ALERT)
    doc["spec"] = {"severity": "critical", **spec}
    return doc


def slo(**spec) -> dict:
    doc = copy.deepcopy(SLO)
    doc["spec"].update(spec)
    return doc


# (case id, document, field the error must name, words the reason must contain)
CASES = [
    ("no-rule-type", alert(), "spec", "set exactly one rule type"),
    ("two-rule-types", alert(cost={"budgetUSD": 1}, latency={"thresholdSeconds": 2}), "spec", "exactly one rule type"),
    ("bad-severity", alert(severity="urgent", cost={"budgetUSD": 1}), "spec.severity", "'critical', 'high', 'warning' or 'info'"),
    ("unknown-field", alert(cost={"budgetUSD": 1}, colour="red"), "spec.colour", "unknown field"),
    ("unknown-nested-field", alert(cost={"budgetUSD": 1, "currency": "EUR"}), "spec.cost.currency", "unknown field"),
    ("negative-budget", alert(cost={"budgetUSD": -5}), "spec.cost.budgetUSD", "greater than 0"),
    ("bad-duration", alert(cost={"budgetUSD": 5, "window": "1 day"}), "spec.cost.window", "is not a duration"),
    ("zero-duration", alert(cost={"budgetUSD": 5, "window": "0m"}), "spec.cost.window", "longer than zero"),
    ("bad-for", alert(cost={"budgetUSD": 5}, **{"for": "soon"}), "spec.for", "largest unit first"),
    ("threshold-bad-promql", alert(threshold={"expr": "sum(rate(x[5m])", "value": 1}), "spec.threshold.expr", "invalid PromQL"),
    ("threshold-other-namespace", alert(threshold={"expr": 'up{namespace="kube-system"}', "value": 1}),
     "spec.threshold.expr", "may only read their own namespace"),
    ("threshold-namespace-regex", alert(threshold={"expr": 'sum(rate(x{namespace=~".+"}[5m]))', "value": 1}),
     "spec.threshold.expr", "may only read their own namespace"),
    ("threshold-forged-label", alert(threshold={"expr": 'label_replace(up, "namespace", "team-b", "", "")', "value": 1}),
     "spec.threshold.expr", "may not write the tenant label"),
    ("threshold-bad-op", alert(threshold={"expr": "up", "op": "=>", "value": 1}), "spec.threshold.op", "'>'"),
    ("threshold-nan", alert(threshold={"expr": "up", "value": float("nan")}), "spec.threshold.value", "finite"),
    ("error-rate-above-one", alert(errorRate={"threshold": 5}), "spec.errorRate.threshold", "less than or equal to 1"),
    ("error-rate-half-custom", alert(errorRate={"threshold": 0.1, "errors": "x_total"}), "spec.errorRate", "both errors and total"),
    ("error-rate-not-selector", alert(errorRate={"threshold": 0.1, "errors": "rate(x[5m])", "total": "y"}),
     "spec.errorRate.errors", "plain series selector"),
    ("latency-quantile-one", alert(latency={"quantile": 1, "thresholdSeconds": 2}), "spec.latency.quantile", "less than 1"),
    ("latency-bad-histogram", alert(latency={"thresholdSeconds": 2, "histogram": "my histogram"}),
     "spec.latency.histogram", "should match pattern"),
    ("quality-both-bounds", alert(quality={"evaluation": "x", "minScore": 0.5, "maxScore": 0.9}), "spec.quality", "exactly one of minScore, maxScore"),
    ("quality-score-range", alert(quality={"evaluation": "x", "minScore": 7}), "spec.quality.minScore", "less than or equal to 1"),
    ("drift-no-statistic", alert(drift={"current": "1d"}), "spec.drift", "ksThreshold, psiThreshold"),
    ("drift-unsorted-buckets", alert(drift={"ksThreshold": 0.3, "buckets": [2, 1]}), "spec.drift", "strictly increasing"),
    ("anomaly-both-sources", alert(anomaly={"signal": "requestRate", "expr": "up"}), "spec.anomaly", "exactly one of signal, expr"),
    ("anomaly-unknown-signal", alert(anomaly={"signal": "vibes"}), "spec.anomaly.signal", "'requestRate'"),
    ("absent-other-namespace", alert(absent={"expr": 'up{namespace="team-b"}'}), "spec.absent.expr", "may only read their own namespace"),
    ("selector-not-a-selector", alert(cost={"budgetUSD": 1}, selector="sum(up)"), "spec.selector", "plain series selector"),
    ("bad-label-name", alert(cost={"budgetUSD": 1}, labels={"team-name": "x"}), "spec.labels.team-name", "invalid key: String should match pattern"),
    ("bad-group-by", alert(cost={"budgetUSD": 1}, groupBy=["gen_ai.model"]), "spec.groupBy.0", "should match pattern"),
    ("bad-runbook", alert(cost={"budgetUSD": 1}, annotations={"runbookUrl": "wiki page"}), "spec.annotations.runbookUrl", "should match pattern"),
    ("receiver-two-targets", alert(cost={"budgetUSD": 1}, routing={"receivers": [{**SLACK, "webhook": {"url": {"name": "w", "key": "u"}}}]}),
     "spec.routing.receivers.0", "exactly one of slack, email, pagerduty, webhook"),
    ("receiver-inline-secret", alert(cost={"budgetUSD": 1}, routing={"receivers": [{"name": "chat", "slack": {"apiURL": "https://hooks.example.com/x"}}]}),
     "spec.routing.receivers.0.slack.apiURL", "reference a Secret: {name, key}"),
    ("receiver-duplicate", alert(cost={"budgetUSD": 1}, routing={"receivers": [SLACK, SLACK]}), "spec.routing", "unique"),
    ("receiver-no-receivers", alert(cost={"budgetUSD": 1}, routing={"receivers": []}), "spec.routing.receivers", "at least 1"),
    ("email-bad-address", alert(cost={"budgetUSD": 1}, routing={"receivers": [{"name": "m", "email": {"to": ["not-an-address"]}}]}),
     "spec.routing.receivers.0.email.to.0", "should match pattern"),
    ("wrong-api-version", {**ALERT, "apiVersion": "observatory.dev/v1"}, "apiVersion", "must be observatory.dev/v1alpha1"),
    ("unknown-kind", {**ALERT, "kind": "Dashboard"}, "kind", "must be one of"),
    ("bad-name", {**ALERT, "metadata": {"name": "Budget_Rule", "namespace": "team-a"}}, "metadata.name", "should match pattern"),
    ("missing-spec", {k: v for k, v in ALERT.items() if k != "spec"}, "spec", "Field required"),
    # Grouped by a label its windows carry, an SLO's groups would merge with its windows (or kinds).
    ("slo-group-by-burn-window", slo(groupBy=["burn_window"]), "spec.groupBy.0", "a label Observatory sets"),
    ("slo-group-by-events-kind", slo(groupBy=["gen_ai_request_model", "observatory_events"]), "spec.groupBy.1",
     "a label Observatory sets"),
    ("slo-objective-100", slo(objective=100), "spec.objective", "less than 100"),
    ("slo-objective-zero", slo(objective=0), "spec.objective", "greater than 0"),
    ("slo-window-short", slo(window="1d"), "spec.window", "between 7d and 90d"),
    ("slo-window-long", slo(window="180d"), "spec.window", "between 7d and 90d"),
    ("slo-two-indicators", slo(indicator={"llm": {"preset": "availability"}, "ratio": {"errors": "a", "total": "b"}}),
     "spec.indicator", "exactly one of ratio, latency, llm"),
    ("slo-ratio-not-selector", slo(indicator={"ratio": {"errors": "sum(a)", "total": "b"}}), "spec.indicator.ratio.errors", "plain series selector"),
    ("slo-ratio-other-namespace", slo(indicator={"ratio": {"errors": 'a{namespace="x"}', "total": "b"}}),
     "spec.indicator.ratio.errors", "may only read their own namespace"),
    ("slo-latency-not-a-bucket", slo(indicator={"latency": {"histogram": "h", "thresholdSeconds": 2, "buckets": [1, 2.5, 5]}}),
     "spec.indicator.latency", "is not one of the buckets"),
    ("slo-llm-latency-not-a-bucket", slo(indicator={"llm": {"preset": "latency", "latencyThresholdSeconds": 2}}),
     "spec.indicator.llm.latencyThresholdSeconds", "not a bucket bound"),
    ("slo-llm-quality-missing", slo(indicator={"llm": {"preset": "quality"}}), "spec.indicator.llm", "needs evaluation, minScore"),
    ("slo-llm-extra-field", slo(indicator={"llm": {"preset": "availability", "minScore": 0.5}}), "spec.indicator.llm", "does not use minScore"),
    ("slo-tier-bad-severity", slo(alerting={"page": {"severity": "sev1"}}), "spec.alerting.page.severity", "'critical'"),
]


def _validate(tmp_path: Path, docs: list[dict], capsys) -> tuple[int, list[str]]:
    path = tmp_path / "policies.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    code = main(["validate", "-f", str(path)])
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.startswith(str(path))]


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id, document, field, reason", CASES, ids=[c[0] for c in CASES])
def test_invalid_resource_is_rejected_naming_the_field(case_id, document, field, reason, tmp_path, capsys) -> None:
    code, lines = _validate(tmp_path, [document], capsys)
    assert code == 1
    expected_prefix = f"{tmp_path / 'policies.yaml'}: {document.get('kind')}/team-a/{document['metadata']['name']}: {field}: "
    matching = [line for line in lines if line.startswith(expected_prefix)]
    assert matching, f"no error for {field}; got {lines}"
    assert any(reason in line for line in matching), matching


def test_the_valid_baselines_pass(tmp_path, capsys) -> None:
    code, lines = _validate(tmp_path, [ALERT, SLO], capsys)
    assert code == 0 and lines == []


def test_every_error_of_a_folder_is_reported_and_nothing_rendered(tmp_path, capsys) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    for case_id, document, field, _ in CASES:
        (folder / f"{case_id}.yaml").write_text(yaml.safe_dump(document))
    (folder / "good.yaml").write_text(yaml.safe_dump(ALERT))
    assert main(["validate", "-f", str(folder)]) == 1
    err = capsys.readouterr().err
    missing = [case_id for case_id, _, field, _ in CASES if f"{folder / case_id}.yaml: " not in err]
    assert not missing
    assert main(["render", "-f", str(folder)]) == 1
    assert capsys.readouterr().out == ""
