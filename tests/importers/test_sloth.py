"""`observatory import sloth` on Sloth's published formats: what maps, what is reported, exit codes."""

from __future__ import annotations

import yaml
from importer_helpers import FIXTURES, run_import

SLOTH = FIXTURES / "sloth"


def _run(*args: str):
    return run_import("sloth", *args)


def test_events_sli_maps_whole_with_exit_0():
    result, (slo,), errors = _run("-n", "team-a", str(SLOTH / "getting-started.yml"))
    assert result.returncode == 0 and errors == []
    assert slo["metadata"] == {"name": "myservice-requests-availability", "namespace": "team-a"}
    spec = slo["spec"]
    assert (spec["objective"], spec["window"]) == (99.9, "30d")
    assert spec["indicator"] == {"ratio": {"errors": 'http_request_duration_seconds_count{code=~"(5..|429)",job="myservice"}',
                                           "total": 'http_request_duration_seconds_count{job="myservice"}'}}
    assert spec["labels"] == {"owner": "myteam", "repo": "myorg/myservice", "tier": "2"}
    page, ticket = spec["alerting"]["page"], spec["alerting"]["ticket"]
    assert (page["name"], page["severity"], page["labels"]) == (
        "MyServiceHighErrorRate", "critical", {"category": "availability", "routing_key": "myteam"})
    assert (ticket["severity"], ticket["labels"]["slack_channel"]) == ("warning", "#alerts-myteam")
    assert page["annotations"] == {"summary": "High error rate on 'myservice' requests responses",
                                   "runbookUrl": "https://runbooks.example.com/myservice"}


def test_crd_form_takes_its_namespace_and_maps_a_latency_sli():
    result, (slo,), errors = _run(str(SLOTH / "k8s-latency.yml"))
    assert result.returncode == 0, errors
    assert slo["metadata"] == {"name": "k8s-apiserver-requests-latency", "namespace": "platform"}
    assert slo["spec"]["indicator"] == {"latency": {"histogram": "apiserver_request_duration_seconds",
                                                    "thresholdSeconds": 0.4, "buckets": [0.4],
                                                    "selector": '{job="apiserver",verb!="WATCH"}'}}
    assert slo["spec"]["groupBy"] == ["verb"]
    assert slo["spec"]["alerting"]["ticket"]["enabled"] is False
    # --namespace wins over the CRD's own.
    _, (other,), _ = _run("-n", "team-b", str(SLOTH / "k8s-latency.yml"))
    assert other["metadata"]["namespace"] == "team-b"


def test_raw_and_plugin_slis_are_reported_per_field_and_the_rest_imported():
    result, (slo,), errors = _run("-n", "team-a", str(SLOTH / "not-expressible.yml"))
    assert result.returncode == 2
    where = f"{SLOTH / 'not-expressible.yml'}: document 1: "
    reported = {line.removeprefix(where).split(": ")[0] for line in errors}
    assert reported == {"slo_plugins", "slos[0].sli.raw.error_ratio_query", "slos[0]", "slos[1].sli.plugin", "slos[1]",
                        "slos[2].name", "slos[2].alerting.annotations.dashboard",
                        "slos[2].alerting.page_alert.labels.severity", "slos[2].alerting.ticket_alert.labels.severity"}
    assert f"{where}slos[1].sli.plugin: SLI plugin 'getting_started_availability' is not expressible: Observatory has no " \
           "SLI plugins; write the queries the plugin generates as sli.events" in errors
    assert f"{where}slos[0]: SLO not imported" in errors
    # The name is made DNS-1123; `or vector(0)` and increase() map to the same counters.
    assert slo["metadata"]["name"] == "home-wifi-dns-resolution"
    assert slo["spec"]["indicator"]["ratio"] == {"errors": 'dns_requests_total{job="unbound",rcode="SERVFAIL"}',
                                                 "total": 'dns_requests_total{job="unbound"}'}
    # Sloth's own severities were reported, the dashboard annotation too: no alerting is left to set.
    assert "alerting" not in slo["spec"]


def test_a_plain_spec_needs_a_namespace():
    result, documents, errors = _run(str(SLOTH / "getting-started.yml"))
    assert result.returncode == 1 and documents == []
    assert errors == [f"{SLOTH / 'getting-started.yml'}: document 1: no namespace for its SLOs: pass --namespace"]


def test_queries_it_cannot_read_back_are_reported_not_guessed(tmp_path):
    spec = {"version": "prometheus/v1", "service": "svc", "slos": [
        {"name": "quantile", "objective": 99, "sli": {"events": {
            "error_query": "sum(rate(a_total{x=\"1\"}[{{.window}}])) / 2",
            "total_query": "sum(rate(a_total[{{.window}}]))"}}},
        {"name": "grouping", "objective": 99, "sli": {"events": {
            "error_query": "sum by (code) (rate(a_total{code=\"500\"}[{{.window}}]))",
            "total_query": "sum by (route) (rate(a_total[{{.window}}]))"}}},
        {"name": "template", "objective": 99, "sli": {"events": {
            "error_query": "sum(rate(a_total{x=\"{{.service}}\"}[{{.window}}]))",
            "total_query": "sum(rate(a_total[{{.window}}]))"}}},
        {"name": "full", "objective": 100, "sli": {"events": {
            "error_query": "sum(rate(a_total[{{.window}}]))", "total_query": "sum(rate(a_total[{{.window}}]))"}}},
        {"name": "tenant", "objective": 99, "sli": {"events": {
            "error_query": "sum(rate(a_total{namespace=\"kube-system\"}[{{.window}}]))",
            "total_query": "sum(rate(a_total[{{.window}}]))"}}},
    ]}
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(spec))
    result, documents, errors = _run("-n", "team-a", str(path))
    assert result.returncode == 2 and documents == []
    text = "\n".join(errors)
    assert "slos[0].sli.events.error_query: is not sum(rate(counter[…])) of one counter selector" in text
    assert "slos[1].sli.events.error_query: the bad-events and total queries are not summed by the same labels" in text
    assert "slos[2].sli.events.error_query: uses a template other than {{.window}}" in text
    assert "slos[3].objective: 100 is not a percentage above 0 and below 100" in text
    # Another tenant's namespace is refused by the same check `observatory validate` makes.
    assert "slos[4]: the imported SLO is not valid: spec.indicator.ratio.errors: selects namespace=\"kube-system\"" in text
    assert "Traceback" not in result.stderr.decode()
