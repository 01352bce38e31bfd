"""A substituted subtree keeps its meaning in the rule text (found while replacing the binding's
transform): the latency SLO's errors are `(total - fast) / budget`, and the text Prometheus reads
said `total - fast / budget` (the tree was right, its printed form lost the grouping). promtool
evaluates the recorded series.
"""

from __future__ import annotations

import sys
from pathlib import Path

from observatory.compile.slo import shard_text, slo_shard
from observatory.models import parse_resource

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compile"))
from promtool_cases import explain, run_promtool


def test_latency_slo_errors_per_budget_are_slow_calls_over_the_budget(tmp_path: Path, promtool: Path) -> None:
    slo = parse_resource({
        "apiVersion": "observatory.dev/v1alpha1", "kind": "SLO", "metadata": {"name": "chat-latency", "namespace": "team-a"},
        "spec": {"objective": 95, "indicator": {"latency": {"histogram": "http_duration_seconds", "thresholdSeconds": 1,
                                                            "buckets": [0.5, 1, 2]}}},
    })
    # 10 calls a second, 9 of them within 1 s: 1 slow call a second, 20 times the 5 % budget (0.5 a second).
    series = [{"series": 'http_duration_seconds_count{namespace="team-a"}', "values": "0+600x20"},
              {"series": 'http_duration_seconds_bucket{namespace="team-a", le="1"}', "values": "0+540x20"}]
    test = {"interval": "1m", "input_series": series, "promql_expr_test": [{
        "expr": 'observatory:slo_events:rate{burn_window="5m", observatory_events="errors"}', "eval_time": "10m",
        "exp_samples": [{"labels": 'observatory:slo_events:rate{namespace="team-a", slo="chat-latency", window="30d", '
                                   f'observatory_shard="{shard_text(slo_shard("chat-latency"))}", '
                                   'burn_window="5m", observatory_events="errors"}', "value": 20}]}]}
    outcome = run_promtool([slo], [test], "1m", tmp_path)
    assert outcome.ok, explain(outcome, tmp_path)
