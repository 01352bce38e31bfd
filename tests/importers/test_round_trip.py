"""Imported SLOs render (`observatory render`), pass `promtool check rules`, and read what the source
read: the rendered error and total rates select the source's series (in the SLO's namespace), the
objective and window are the source's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from importer_helpers import FIXTURES, observatory, pinned, selectors
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
    assert _without_le(selectors(rules[C.slo_errors_rate_metric]["expr"]), got_le) == \
        _without_le(pinned(selectors(errors), "team-a"), want_le)
    assert selectors(rules[C.slo_requests_rate_metric]["expr"]) == pinned(selectors(total), "team-a")
    # The bucket bound: the source's le value is one the rendered matcher selects.
    assert len(want_le) == len(got_le)
    for want, got in zip(want_le, got_le):
        assert got.startswith("re:") and re.fullmatch(got[3:], want)
