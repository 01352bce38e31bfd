"""`observatory import openslo` on OpenSLO v1 documents: what maps, what is reported, exit codes."""

from __future__ import annotations

import yaml
from importer_helpers import FIXTURES, run_import

OPENSLO = FIXTURES / "openslo"


def _run(*args: str):
    return run_import("openslo", *args)


def test_good_over_total_becomes_bad_over_total_with_exit_0():
    result, (slo,), errors = _run("-n", "team-a", str(OPENSLO / "good-total.yaml"))
    assert result.returncode == 0 and errors == []
    assert slo["metadata"] == {"name": "checkout-availability", "namespace": "team-a"}
    # target 0.995 is 99.5 %; the good events' extra matcher negated selects the bad ones.
    assert (slo["spec"]["objective"], slo["spec"]["window"]) == (99.5, "28d")
    assert slo["spec"]["indicator"] == {"ratio": {"errors": 'http_requests_total{code=~"5..",handler="/checkout"}',
                                                  "total": 'http_requests_total{handler="/checkout"}'}}


def test_referenced_sli_through_a_datasource_with_bad_over_total():
    result, (slo,), errors = _run("-n", "team-a", str(OPENSLO / "bad-total-ref.yaml"))
    assert result.returncode == 0, errors
    assert slo["spec"] == {"objective": 99.9, "window": "4w", "groupBy": ["route"], "indicator": {"ratio": {
        "errors": 'search_requests_total{app="search",status="error"}', "total": 'search_requests_total{app="search"}'}}}


def test_a_missing_sli_reference_is_reported(tmp_path):
    docs = list(yaml.safe_load_all((OPENSLO / "bad-total-ref.yaml").read_text()))
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(docs[2]))  # the SLO alone, without its SLI and DataSource
    result, documents, errors = _run("-n", "team-a", str(path))
    assert result.returncode == 2 and documents == []
    assert errors == [f"{path}: document 1: spec.indicatorRef: no SLI document named 'search-errors' in the files given",
                      f"{path}: document 1: SLO not imported"]


def test_threshold_on_histogram_observations_becomes_a_latency_slo():
    result, (slo,), errors = _run("-n", "team-a", str(OPENSLO / "threshold.yaml"))
    # The bound's presence among the buckets cannot be checked from the SLO: reported, exit 2.
    assert result.returncode == 2
    assert errors == [(f"{OPENSLO / 'threshold.yaml'}: document 1: spec.objectives[0].value: 0.5 must be a bucket bound "
                       "(le) of search_duration_seconds_bucket: check it, or every event counts as slow")]
    assert slo["spec"]["indicator"] == {"latency": {"histogram": "search_duration_seconds", "thresholdSeconds": 0.5,
                                                    "buckets": [0.5], "selector": '{app="search"}'}}
    assert (slo["spec"]["objective"], slo["spec"]["window"]) == (99, "2w")


def test_timeslices_calendar_windows_and_alert_policies_are_reported():
    result, (slo,), errors = _run("-n", "team-a", str(OPENSLO / "not-expressible.yaml"))
    assert result.returncode == 2
    where = f"{OPENSLO / 'not-expressible.yaml'}: document "
    assert errors == [
        where + "1: spec.service: not carried over: an Observatory SLO is known by its name and namespace",
        where + "1: spec.timeWindow[0]: a calendar-aligned window is not expressible: Observatory's SLO windows are rolling",
        where + "1: spec.budgetingMethod: Timeslices is not expressible: Observatory's budget counts events (Occurrences)",
        where + "1: SLO not imported",
        where + "2: spec.budgetingMethod: RatioTimeslices is not expressible: Observatory's budget counts events (Occurrences)",
        where + "2: SLO not imported",
        where + "3: spec.service: not carried over: an Observatory SLO is known by its name and namespace",
        where + "3: spec.alertPolicies[0]: not imported: Observatory alerts with its page and ticket burn-rate tiers; "
                "set spec.alerting on the imported SLO",
        where + "3: spec.timeWindow[0].duration: 1M has no fixed length; imported as 30d",
        where + "4: kind: alert policies are not imported: Observatory alerts with its page and ticket burn-rate tiers",
    ]
    assert (slo["metadata"]["name"], slo["spec"]["window"]) == ("api-availability", "30d")


def test_openslo_needs_a_namespace_and_refuses_other_versions(tmp_path):
    result, documents, errors = _run(str(OPENSLO / "good-total.yaml"))
    assert (result.returncode, documents) == (1, [])
    assert errors == ["--namespace: OpenSLO documents have no namespace: pass --namespace"]
    alpha = tmp_path / "alpha.yaml"
    alpha.write_text("apiVersion: openslo/v1alpha\nkind: SLO\nmetadata: {name: x}\n")
    result, documents, errors = _run("-n", "team-a", str(alpha))
    assert result.returncode == 2 and documents == []
    assert errors == [(f"{alpha}: document 1: apiVersion: not an OpenSLO openslo/v1 document (got 'openslo/v1alpha'); "
                       "not imported")]
