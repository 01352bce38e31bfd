"""Imported SLOs render (`observatory render`), pass `promtool check rules`, and read what the source
read: the rendered error and total rates select the source's series (in the SLO's namespace), the
objective and window are the source's."""

from __future__ import annotations

import re
from pathlib import Path

import promql_parser as pp
import pytest
import yaml
from importer_helpers import FIXTURES, observatory, pinned, selectors
from observatory import promql
from observatory import promtool as rule_check
from observatory.conventions import Conventions
from observatory.importers.queries import WINDOW_TEMPLATE

C = Conventions()


def _sloth_queries(path: Path) -> tuple[str, str]:
    doc = yaml.safe_load(path.read_text())
    events = (doc.get("spec") or doc)["slos"][-1]["sli"]["events"]
    pick = [events.get(k) or events.get(c) for k, c in (("error_query", "errorQuery"), ("total_query", "totalQuery"))]
    return tuple(WINDOW_TEMPLATE.sub("5m", q) for q in pick)


# (format, fixture, namespace, objective %, window, source errors query, source total query); a bucket's
# le="T" renders as a regex of T's spellings, compared below by what it matches.
CASES = [
    ("sloth", "sloth/getting-started.yml", 99.9, "30d", *_sloth_queries(FIXTURES / "sloth/getting-started.yml")),
    ("sloth", "sloth/k8s-latency.yml", 99, "30d", *_sloth_queries(FIXTURES / "sloth/k8s-latency.yml")),
    ("sloth", "sloth/not-expressible.yml", 99.5, "30d", *_sloth_queries(FIXTURES / "sloth/not-expressible.yml")),
    ("openslo", "openslo/good-total.yaml", 99.5, "28d",
     'http_requests_total{handler="/checkout", code=~"5.."}', 'http_requests_total{handler="/checkout"}'),
    ("openslo", "openslo/bad-total-ref.yaml", 99.9, "4w",
     'search_requests_total{app="search", status="error"}', 'search_requests_total{app="search"}'),
    ("openslo", "openslo/threshold.yaml", 99, "2w",
     'search_duration_seconds_count{app="search"} - search_duration_seconds_bucket{app="search", le="0.5"}',
     'search_duration_seconds_count{app="search"}'),
]


def _kinds(events: str) -> tuple[str, str]:
    """The errors (before the budget divides them) and the requests of an SLO's events rule:
    `label_replace(errors / budget or zero, ...) or label_replace(requests, ...)`."""
    tree = pp.parse(events)
    return tree.lhs.args[0].lhs.lhs.prettify(), tree.rhs.args[0].prettify()


def _without_le(found, le_values: list[str]):
    out = set()
    for name, matchers in found:
        for m in matchers:
            if m[0] == "le":
                le_values.append(m[2] if m[1] == "MatchOp.Equal" else f"re:{m[2]}")
        out.add((name, frozenset(m for m in matchers if m[0] != "le")))
    return out


@pytest.mark.parametrize("fmt, fixture, objective, window, errors, total", CASES, ids=[c[1] for c in CASES])
def test_imported_slo_renders_passes_promtool_and_reads_the_source_series(tmp_path, promtool, fmt, fixture, objective,
                                                                            window, errors, total):
    imported = observatory("import", fmt, "-n", "team-a", str(FIXTURES / fixture))
    assert imported.returncode in (0, 2), imported.stderr.decode()
    slos = list(yaml.safe_load_all(imported.stdout))
    (name,) = [s["metadata"]["name"] for s in slos]
    (tmp_path / "slos.yaml").write_bytes(imported.stdout)
    rendered = observatory("render", "-f", str(tmp_path / "slos.yaml"))
    assert rendered.returncode == 0, rendered.stderr.decode()
    objects = list(yaml.safe_load_all(rendered.stdout))
    outcome = rule_check.check_rules(rule_check.write_rule_files(objects, tmp_path))
    assert outcome.ok and "SUCCESS" in outcome.output, outcome.output

    rules = {r["record"]: r for o in objects if o["kind"] == "PrometheusRule" for g in o["spec"]["groups"]
             for r in g["rules"] if r.get("labels", {}).get(C.slo_label) == name and "record" in r}
    assert rules[C.slo_objective_metric]["expr"] == f"vector({objective / 100:.12g})"
    assert {r["labels"][C.window_label] for r in rules.values()} == {window}
    want_le: list[str] = []
    got_le: list[str] = []
    got_errors, got_total = _kinds(rules[C.slo_events_metric]["expr"])
    assert _without_le(selectors(got_errors), got_le) == _without_le(pinned(selectors(errors), "team-a"), want_le)
    assert selectors(got_total) == pinned(selectors(total), "team-a")
    # The bucket bound: the source's le value is one the rendered matcher selects.
    assert len(want_le) == len(got_le)
    for want, got in zip(want_le, got_le):
        assert got.startswith("re:") and re.fullmatch(got[3:], want)


def _series(metric: str, rows: list[tuple[str, int]]) -> list[dict[str, str]]:
    return [{"series": f"{metric}{{{labels}}}", "values": f"0+{per_minute}x20"} for labels, per_minute in rows]


def _sloth_rates(fixture: str) -> tuple[str, str]:
    return _sloth_queries(FIXTURES / fixture)


# Per fixture: the source's bad and all events per second over 5m as PromQL, the labels they are summed
# by, and counters for promtool (each with a decoy the source selectors do not select, and one in another
# namespace that Observatory must not read).
EVALUATED = {
    "sloth/getting-started.yml": (*_sloth_rates("sloth/getting-started.yml"), (), _series(
        "http_request_duration_seconds_count", [('job="myservice",code="200"', 600), ('job="myservice",code="500"', 6),
                                                ('job="myservice",code="429"', 3), ('job="other",code="500"', 60)])),
    "sloth/k8s-latency.yml": (*_sloth_rates("sloth/k8s-latency.yml"), ("verb",), _series(
        "apiserver_request_duration_seconds_count", [('job="apiserver",verb="GET"', 600), ('job="apiserver",verb="LIST"', 60),
                                                     ('job="apiserver",verb="WATCH"', 6000)]) + _series(
        "apiserver_request_duration_seconds_bucket", [('job="apiserver",verb="GET",le="0.4"', 540),
                                                      ('job="apiserver",verb="LIST",le="0.4"', 57),
                                                      ('job="apiserver",verb="WATCH",le="0.4"', 60)])),
    "sloth/not-expressible.yml": (*_sloth_rates("sloth/not-expressible.yml"), (), _series(
        "dns_requests_total", [('job="unbound",rcode="NOERROR"', 600), ('job="unbound",rcode="SERVFAIL"', 12)])),
    "openslo/good-total.yaml": (
        'sum(rate(http_requests_total{handler="/checkout"}[5m])) - sum(rate(http_requests_total{handler="/checkout", code!~"5.."}[5m]))',
        'sum(rate(http_requests_total{handler="/checkout"}[5m]))', (), _series(
            "http_requests_total", [('handler="/checkout",code="200"', 600), ('handler="/checkout",code="503"', 9),
                                    ('handler="/other",code="500"', 60)])),
    "openslo/bad-total-ref.yaml": (
        'sum by (route) (rate(search_requests_total{app="search", status="error"}[5m]))',
        'sum by (route) (rate(search_requests_total{app="search"}[5m]))', ("route",), _series(
            "search_requests_total", [('app="search",route="/a",status="ok"', 600), ('app="search",route="/a",status="error"', 6),
                                      ('app="search",route="/b",status="ok"', 60), ('app="search",route="/b",status="error"', 3)])),
    "openslo/threshold.yaml": (
        'sum(rate(search_duration_seconds_count{app="search"}[5m])) - sum(rate(search_duration_seconds_bucket{app="search", le="0.5"}[5m]))',
        'sum(rate(search_duration_seconds_count{app="search"}[5m]))', (), _series(
            "search_duration_seconds_count", [('app="search"', 600)]) + _series(
            "search_duration_seconds_bucket", [('app="search",le="0.5"', 582), ('app="search",le="+Inf"', 600)])),
}


def _in_namespace(found: list[dict[str, str]], namespace: str) -> list[dict[str, str]]:
    return [{**s, "series": s["series"].replace("{", f'{{namespace="{namespace}",', 1)} for s in found]


@pytest.mark.parametrize("fixture", EVALUATED)
def test_imported_rates_equal_the_source_queries_in_promtool(tmp_path, promtool, fixture):
    """promtool evaluates the imported SLO's error ratio from its recorded rates and the source's own
    queries over the same counters: equal for every group, the decoys ignored."""
    errors, total, by, series = EVALUATED[fixture]
    fmt = fixture.split("/")[0]
    imported = observatory("import", fmt, "-n", "team-a", str(FIXTURES / fixture))
    (slo,) = yaml.safe_load_all(imported.stdout)
    (tmp_path / "slos.yaml").write_bytes(imported.stdout)
    name, budget = slo["metadata"]["name"], round(1 - slo["spec"]["objective"] / 100, 12)
    group = f"sum by ({', '.join(by)})" if by else "sum"
    # The source's queries read the SLO's namespace only, as Observatory does.
    source = {k: promql.pin_tenant(promql.parse(q), C.tenant_label, "team-a").prettify() for k, q in (("e", errors), ("t", total))}
    recorded = {k: f'{group} ({C.slo_events_metric}{{{C.slo_label}="{name}",{C.burn_window_label}="5m",'
                   f'{C.slo_events_kind_label}="{kind}"}})'
                for k, kind in (("e", "errors"), ("t", "requests"))}
    groups = sorted({dict(re.findall(r'(\w+)="([^"]*)"', s["series"])).get(by[0]) for s in series} - {None}) if by else [None]
    if fixture == "sloth/k8s-latency.yml":
        groups = [g for g in groups if g != "WATCH"]
    samples = [{"labels": "{" + (f'{by[0]}="{g}"' if g else "") + "}", "value": 1} for g in groups]
    test = {"evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": _in_namespace(series, "team-a") + _in_namespace(series, "team-b"),
        # The error ratio, the SLI itself (Sloth's increase() and rate() give the same one).
        "promql_expr_test": [{
            "expr": f"round((({recorded['e']}) * {budget!r} / ({recorded['t']})) / (({source['e']}) / ({source['t']})), 0.0001)",
            "eval_time": "10m", "exp_samples": samples}],
    }]}
    (tmp_path / "rates.test.yaml").write_text(yaml.safe_dump(test))
    result = observatory("test", "-f", str(tmp_path / "slos.yaml"), str(tmp_path / "rates.test.yaml"))
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert "2 passed, 0 failed" in result.stdout.decode()
