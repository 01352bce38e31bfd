"""Issue 13 item 2: alert templates that read other tenants.

Prometheus expands the labels and annotations of an alerting rule as Go templates every time the
alert is evaluated, with a function map that includes `query`: any PromQL, run against the whole
TSDB, unpinned (prometheus template/template.go, NewTemplateExpander; rules/alerting.go expands
labels and annotations with it). A tenant's template therefore reads every tenant. Observatory
accepts only the template subset that reads the alert itself (observatory.templates).
"""

from __future__ import annotations

import pytest
from labels_resources import Batch, alertrule, promtool_alerts, slo
from observatory.compile import compile_bundle
from observatory.compile.templates import check
from observatory.models import parse_resource

LEAK = '{{ with query "sum(secret_total{namespace=\\"team-b\\"})" }}{{ . | first | value }}{{ end }}'


def test_prometheus_runs_query_in_a_template_across_tenants(promtool, tmp_path):
    """The danger itself, judged by promtool: a team-a alert whose label and summary call `query`
    carries team-b's series value. (Built from a benign rule, the template injected into the output,
    since Observatory refuses to generate it.)"""
    objects = compile_bundle([parse_resource(alertrule("calls"))])
    [rule] = [r for o in objects for g in o["spec"]["groups"] for r in g["rules"] if r.get("alert") == "Calls"]
    rule["labels"]["leak"] = LEAK
    rule["annotations"]["summary"] = f"team-b holds {LEAK} secrets"
    series = {'llm_calls_total{namespace="team-a"}': "1+1x10", 'secret_total{namespace="team-b"}': "42+0x10"}
    failure = promtool_alerts(objects, tmp_path, series, "Calls", "5m", [{
        "exp_labels": {"alertname": "Calls", "namespace": "team-a", "observatory_alertrule": "calls",
                       "severity": "warning", "leak": "42"},
        "exp_annotations": {"summary": "team-b holds 42 secrets"},
    }])
    assert failure == "", failure


BATCH = Batch()


@pytest.mark.parametrize("key, field", [(BATCH.add(document), field) for document, field in (
    (alertrule("calls", labels={"leak": LEAK}), "spec.labels.leak"),
    (alertrule("calls", annotations={"summary": f"team-b holds {LEAK}"}), "spec.annotations.summary"),
    (alertrule("calls", annotations={"description": LEAK}), "spec.annotations.description"),
    (alertrule("calls", annotations={"runbookUrl": 'https://x/{{query("up")}}'}), "spec.annotations.runbookUrl"),
    (slo(labels={"leak": LEAK}), "spec.labels.leak"),
    (slo(description=LEAK), "spec.description"),
    (slo(alerting={"page": {"labels": {"leak": LEAK}}}), "spec.alerting.page.labels.leak"),
    (slo(alerting={"ticket": {"annotations": {"summary": LEAK}}}), "spec.alerting.ticket.annotations.summary"),
)])
def test_query_in_a_template_is_refused_naming_the_field(key, field):
    [message] = BATCH.refusals(key)
    assert message.startswith(f"{field}: `query` ") and "reads the TSDB" in message, message


def test_a_spliced_evaluation_name_cannot_inject_a_template():
    """A quality rule's summary names the evaluation: the name is text, never template code."""
    document = alertrule("calls", threshold=None, quality={"evaluation": f'x {LEAK}', "minScore": 0.5})
    objects = compile_bundle([parse_resource(document)])
    [summary] = [r["annotations"]["summary"] for o in objects for g in o["spec"]["groups"] for r in g["rules"]
                 if r.get("alert")]
    assert "query" in summary  # the name is kept, as literal text
    check(summary)  # and the generated template calls nothing but allowed functions
    assert summary.startswith('Average {{ "x {{ with query')
