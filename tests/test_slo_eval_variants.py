"""bench/slo_eval/variants: the other rule structures it measures are valid rules and compute what
they claim, checked with promtool on the rules `observatory render` prints for the bench's SLOs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

# bench/ is not an installed package; the benchmark runs from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.slo_eval import equivalence, rulesets, synth, variants

MAKERS = variants.variants(synth.NAMESPACE)
WINDOW_30M = 'observatory:slo_events:rate{burn_window="30m",observatory_events="requests"}'
RATE = 1.01  # requests per second of each service below: 60 successes and 0.6 failures a minute


def _rendered(tmp_path: Path, k: int = 2) -> list[dict]:
    rulesets.write_slos(str(tmp_path / "slos"), k)
    return rulesets.rule_groups("observatory", str(tmp_path / "slos"))


def _count_near(promtool: Path, groups: list[dict], tmp_path: Path, value: float | None, at: str) -> int | None:
    """How many SLOs' 30m requests window equals `value` (None: has any value) at `at`, by promtool
    (None: not one)."""
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}, width=1000))
    series = [{"series": f'{synth.METRIC}{{namespace="{synth.NAMESPACE}",service="{synth.service_name(i)}",code="{code}"}}',
               "values": f"0+{per_minute}x200"} for i in (1, 2) for code, per_minute in (("200", 60), ("500", 0.6))]
    expr = f"count({WINDOW_30M})" if value is None else f"count(abs({WINDOW_30M} - {value}) < 1e-9)"
    passed = []
    for expected in ([], [{"labels": "{}", "value": 1}], [{"labels": "{}", "value": 2}]):
        test = {"rule_files": ["rules.yml"], "evaluation_interval": f"{equivalence.STEP}s",
                "group_eval_order": equivalence.evaluation_order(groups),
                "tests": [{"interval": "1m", "input_series": series,
                           "promql_expr_test": [{"expr": expr, "eval_time": at, "exp_samples": expected}]}]}
        (tmp_path / "test.yml").write_text(yaml.safe_dump(test, width=1000))
        result = subprocess.run([str(promtool), "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True,
                                check=False)
        if result.returncode == 0:
            passed.append(expected[0]["value"] if expected else None)
    assert len(passed) == 1, f"promtool accepted {len(passed)} of the expected counts: {result.stdout}{result.stderr}"
    return passed[0]


def test_every_variant_passes_promtool_and_has_the_structure_it_names(tmp_path: Path, promtool: Path) -> None:
    today = _rendered(tmp_path, k=3)
    for name, make in MAKERS.items():
        groups = make(today)
        path = tmp_path / f"{name}.yml"
        path.write_text(yaml.safe_dump({"groups": groups}, width=1000))
        out = subprocess.run([str(promtool), "check", "rules", str(path)], capture_output=True, text=True, check=False)
        assert out.returncode == 0, f"{name}: {out.stdout}{out.stderr}"
    counts = {name: rulesets.counts(make(today)) for name, make in MAKERS.items()}
    assert counts["today"]["alerts"] == 6
    assert counts["shared-alerts"]["alerts"] == 2
    assert counts["shared-alerts"]["records"] == counts["today"]["records"] - 3  # the objectives
    assert counts["floor"] == {"groups": counts["floor"]["groups"], "rules": 3, "records": 3, "alerts": 0}


def test_a_sum_by_plus_equals_the_union_with_every_tile_and_is_absent_without_one(tmp_path: Path,
                                                                                 promtool: Path) -> None:
    today = _rendered(tmp_path)
    plus = MAKERS["shared-alerts-plus"](today)
    latest = MAKERS["shared-alerts-plus-or-latest"](today)
    # An hour in, every 5m tile of the 30m window exists: all three agree on the steady rate.
    for groups in (today, plus, latest):
        assert _count_near(promtool, groups, tmp_path, RATE, "1h") == 2
    # 20 minutes in, the tiles at 20 and 25 minutes have no 5m rate yet: the union sums the four that
    # exist (over the window's six), `+` has no window, the fallback the latest tile's rate.
    assert _count_near(promtool, today, tmp_path, RATE * 4 / 6, "20m") == 2
    assert _count_near(promtool, plus, tmp_path, None, "20m") is None
    assert _count_near(promtool, latest, tmp_path, RATE, "20m") == 2
