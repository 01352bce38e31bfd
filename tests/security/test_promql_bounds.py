"""The bounds of observatory.promql at their edges: what is exactly at a bound is accepted and
compiles into rules promtool accepts; the scanner counts tokens, not characters, so strings and
comments hide nothing and hide no operator either; a narrowing selector's `or` alternatives each
keep the generated matchers and the tenant pin.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from observatory import promql
from observatory.compile import compile_bundle
from observatory.models import parse_resource
from observatory.promtool import check_rules, write_rule_files
from promql_attacks import alertrule, threshold

B, N, U = promql.MAX_BINARY_OPERATORS, promql.MAX_NESTING, promql.MAX_UNARY_SIGNS
AT_THE_BOUNDS = [
    threshold("binary-at-bound", " + ".join(["llm_calls_total"] * (B + 1))),
    threshold("nesting-at-bound", "(" * (N - 1) + "abs(llm_calls_total)" + ")" * (N - 1)),
    threshold("unary-at-bound", "-" * U + "llm_calls_total"),
    threshold("range-at-bound", "max_over_time(llm_calls_total[90d])"),
    threshold("subquery-at-bound", "max_over_time(rate(llm_calls_total[5m])[1d:10s])"),  # 8,640 points
    threshold("subquery-default-step", "max_over_time(rate(llm_calls_total[5m])[1d:])"),
    threshold("operators-in-strings", 'llm_calls_total{route="' + "+ -(" * 400 + '"}'),
    threshold("operators-in-comment", "llm_calls_total # " + "- + (" * 400 + "\n"),
    threshold("exponents", " + ".join(["vector(1e-3)"] * (B + 1))),
    alertrule("interval-at-bound", evaluationInterval="10s", cost={"budgetUSD": 10, "window": "90d"}),
]


def test_expressions_at_the_bounds_compile_and_promtool_loads_them(tmp_path: Path, promtool: Path) -> None:
    objects = compile_bundle(parse_resource(r) for r in AT_THE_BOUNDS)
    outcome = check_rules(write_rule_files(objects, tmp_path))
    assert outcome.ok, outcome.output


@pytest.mark.parametrize(("text", "bound"), [
    (" + ".join(["up"] * (B + 2)), "binary operators"),
    # 0x1e-3 is 0x1e minus 3: a scanner taking its e for an exponent would miss every operator.
    ("-".join(["0x1e"] * (B + 2)), "binary operators"),
    (" != ".join(["up"] * (B + 2)), "binary operators"),
    (" and ".join(["up"] * (B + 2)), "binary operators"),
    ("(" * (N + 1) + "up" + ")" * (N + 1), "nested"),
    ("{" * (N + 1), "nested"),
    ("-(" * U + "-up" + ")" * U, "unary"),
    ('up{a="' + "x" * promql.MAX_LENGTH + '"}', "characters long"),
])
def test_one_past_a_bound_is_refused_before_the_parser(text: str, bound: str) -> None:
    with pytest.raises(promql.PromQLError, match=bound):
        promql.scan(text)


def test_a_narrowing_selector_with_alternatives_narrows_each_and_stays_pinned() -> None:
    rule = parse_resource(alertrule("narrow-or", selector='{route="/a" or route="/b"}', absent={}))
    [obj] = compile_bundle([rule])
    expr = "".join(obj["spec"]["groups"][0]["rules"][0]["expr"].split())
    assert expr == ('absent_over_time(gen_ai_client_operation_duration_seconds_count{route="/a",namespace="team-a"'
                    'orroute="/b",namespace="team-a"}[10m])')

