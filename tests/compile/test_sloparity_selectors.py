"""Latency and LLM `selector`s as Sloth users write them: only negative matchers, e.g. {verb!="WATCH"}.

PromQL refuses such a selector on its own ("vector selector must contain at least one non-empty
matcher", prometheus promql/parser/parse.go `checkAST`; its parse_test.go has `{x!="a"}` fail so), but Observatory always puts it under a
metric name (the histogram's, the GenAI signal's), where Prometheus accepts it. So it is accepted,
still confined to the tenant and still without a metric of its own.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from observatory.compile.slo import shard_text, slo_shard
from observatory.models import parse_resource
from promtool_cases import explain, run_promtool

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "team-a"


def latency_slo(selector: str) -> dict:
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "SLO",
            "metadata": {"name": "api-latency", "namespace": NAMESPACE},
            "spec": {"objective": 99, "indicator": {"latency": {
                "histogram": "http_request_duration_seconds", "selector": selector,
                "thresholdSeconds": 0.5, "buckets": [0.1, 0.5, 1]}}}}


def validate(doc: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(doc))
    return subprocess.run([sys.executable, "-m", "observatory", "validate", "-f", str(path)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


@pytest.mark.parametrize("selector", ['{verb!="WATCH"}', '{verb!~"WATCH|CONNECT"}', '{verb!="WATCH", code!~"5.."}'])
def test_validate_accepts_a_selector_of_negative_matchers(selector: str, tmp_path: Path) -> None:
    result = validate(latency_slo(selector), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_llm_selector_of_negative_matchers_is_accepted(tmp_path: Path) -> None:
    doc = latency_slo("{}")
    doc["spec"]["indicator"] = {"llm": {"preset": "availability", "selector": '{gen_ai_request_model!="test"}'}}
    result = validate(doc, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("selector", "reason"), [
    ('{__name__!="up"}', "chooses a metric"),
    ('{__name__=~"secret_.+", verb!="x"}', "chooses a metric"),
    ('{namespace!="team-a"}', "may only read their own namespace"),
    ('{verb!="WATCH"} offset 1h', "plain series selector"),
    ('{verb!="WATCH"} or up', "plain series selector"),
    ('up{verb!="WATCH"}', "chooses a metric"),
])
def test_negative_selectors_still_cannot_choose_a_metric_or_leave_the_tenant(selector: str, reason: str,
                                                                           tmp_path: Path) -> None:
    result = validate(latency_slo(selector), tmp_path)
    assert result.returncode == 1
    assert "spec.indicator.latency.selector" in result.stdout + result.stderr
    assert reason in result.stdout + result.stderr


def test_negative_selector_excludes_its_series_in_prometheus(tmp_path: Path, promtool: Path) -> None:
    """WATCH requests are all slow, GET ones all fast: with WATCH excluded no request is bad."""
    slo = parse_resource(latency_slo('{verb!="WATCH"}'))
    series = []
    for verb, fast in (("GET", True), ("WATCH", False)):
        labels = f'namespace="{NAMESPACE}", verb="{verb}"'
        series += [{"series": f"http_request_duration_seconds_count{{{labels}}}", "values": "0+60x20"},
                   {"series": f'http_request_duration_seconds_bucket{{{labels}, le="0.5"}}',
                    "values": "0+60x20" if fast else "0+0x20"}]
    identity = f'namespace="{NAMESPACE}", slo="api-latency", window="30d", observatory_shard="{shard_text(slo_shard("api-latency"))}"'
    test = {"interval": "1m", "input_series": series, "promql_expr_test": [
        {"expr": f'observatory:slo_events:rate{{burn_window="5m", observatory_events="{kind}"}}', "eval_time": "10m",
         "exp_samples": [{"labels": f'observatory:slo_events:rate{{{identity}, burn_window="5m", observatory_events="{kind}"}}',
                          "value": value}]}
        for kind, value in (("errors", 0), ("requests", 1))
    ]}
    outcome = run_promtool([slo], [test], "1m", tmp_path)
    assert outcome.ok, explain(outcome, tmp_path)
