"""Issue 13 item 5: no input crashes the native parser or the compile path. Hypothesis generates
nested, unary, long and binary expressions up to and past the bounds of observatory.promql; a
subprocess (promql_fuzz_worker.py) compiles them, so that a segfault fails the test instead of
ending pytest. Every verdict is a clean accept or a refusal naming the field; whatever is accepted
Prometheus's own parser accepts too (`promtool check rules`), and whatever is past a bound is refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from observatory import promql

WORKER = Path(__file__).with_name("promql_fuzz_worker.py")
# Without shrinking: each example is a subprocess, and the failing batch is reported as it is.
FUZZ = settings(max_examples=5, deadline=None, database=None, derandomize=True, phases=[Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

names = st.sampled_from(["up", "llm_calls_total", "job:calls:rate5m", "x"])
labels = st.sampled_from(["job", "route", "namespace", "le", "a_b"])
values = st.text(alphabet=st.sampled_from(list('ab"\\\n{}#`\'-(')), max_size=6)
selector = st.builds(lambda n, ls: n + ("{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in ls) + "}" if ls else ""),
                     names, st.lists(st.tuples(labels.filter(lambda label: label != "namespace"), values), max_size=3))
# No brackets or signs in its strings, so that `_past_a_bound` can count characters.
plain_selector = st.builds(lambda n, v: f'{n}{{job="{v}"}}', names, st.text(alphabet="abc_ ", max_size=4))
number = st.sampled_from(["1", "0.5", "1e-3", "0x1e", "Inf", "2"])
ranged = st.builds(lambda s, r: f"rate({s}[{r}])", selector, st.sampled_from(["5m", "1h", "90d", "91d"]))
subquery = st.builds(lambda s, r, step: f"max_over_time({s}[{r}:{step}])", selector,
                     st.sampled_from(["1h", "1d", "30d"]), st.sampled_from(["", "1ms", "10s", "5m"]))
atom = st.one_of(selector, ranged, subquery, number.map(lambda n: f"vector({n})"))


def combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.builds(lambda a, op, b: f"{a} {op} {b}", children,
                       st.sampled_from(["+", "-", "*", "/", "and", "or", "unless", "> bool", "==", "^", "%"]), children)
    return st.one_of(
        binary,
        children.map(lambda c: f"({c})"),
        children.map(lambda c: f"abs({c})"),
        children.map(lambda c: f"-{c}"),
        st.builds(lambda op, c: f"{op} by (job) ({c})", st.sampled_from(["sum", "max", "count"]), children),
        st.builds(lambda c: f'label_replace({c}, "dst", "$1", "job", "(.*)")', children),
    )


expressions = st.recursive(atom, combine, max_leaves=40)


@st.composite
def shapes(draw: st.DrawFn) -> tuple[str, str]:
    """One kind of bulk at a size drawn around its bound: (expression, the bound it is measured by)."""
    kind = draw(st.sampled_from(["parens", "calls", "unary", "unary-nested", "terms", "long"]))
    inner = draw(plain_selector)
    if kind == "parens":
        n = draw(st.integers(0, promql.MAX_NESTING + 40))
        return "(" * n + inner + ")" * n, kind
    if kind == "calls":
        n = draw(st.integers(0, promql.MAX_NESTING + 40))
        return "abs(" * n + inner + ")" * n, kind
    if kind == "unary":
        return "-" * draw(st.integers(0, promql.MAX_UNARY_SIGNS + 200)) + inner, kind
    if kind == "unary-nested":
        n = draw(st.integers(0, promql.MAX_NESTING))
        return "-(" * n + "-" * draw(st.integers(0, 40)) + inner + ")" * n, kind
    if kind == "terms":
        return " + ".join([inner] * draw(st.integers(1, promql.MAX_BINARY_OPERATORS + 200))), kind
    pad = "a" * draw(st.integers(0, promql.MAX_LENGTH + 64))
    return f'{inner} + on() group_left() vector(1) unless llm_calls_total{{route="{pad}"}}', kind


def run_worker(exprs: list[str]) -> list[dict]:
    result = subprocess.run([sys.executable, str(WORKER)], input=json.dumps(exprs), capture_output=True, text=True,
                            check=False, timeout=120)
    assert result.returncode == 0, f"the compile process died (exit {result.returncode}): {result.stderr[-3000:]}"
    verdicts = json.loads(result.stdout)
    for expr, verdict in zip(exprs, verdicts, strict=True):
        assert "defect" not in verdict, f"{expr[:300]!r}:\n{verdict['defect']}"
        if not verdict["accepted"]:
            assert verdict["error"].startswith("spec.threshold.expr: "), verdict["error"]
    return verdicts


def check_with_promtool(verdicts: list[dict], tmp_path: Path, promtool: Path) -> None:
    groups = [dict(group, name=f"{group['name']}-{i}") for i, v in enumerate(verdicts) if v["accepted"] for group in v["rules"]]
    if not groups:
        return
    rule_file = tmp_path / "accepted.rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": groups}))
    checked = subprocess.run([str(promtool), "check", "rules", str(rule_file)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@FUZZ
@given(exprs=st.lists(expressions, min_size=20, max_size=40))
def test_generated_expressions_compile_or_are_refused_and_prometheus_takes_what_is_accepted(
        exprs: list[str], tmp_path_factory, promtool: Path) -> None:
    check_with_promtool(run_worker(exprs), tmp_path_factory.mktemp("fuzz"), promtool)


@FUZZ
@given(cases=st.lists(shapes(), min_size=20, max_size=30))
def test_bulk_up_to_each_bound_compiles_and_past_it_is_refused(cases: list[tuple[str, str]], tmp_path_factory,
                                                               promtool: Path) -> None:
    verdicts = run_worker([expr for expr, _ in cases])
    for (expr, kind), verdict in zip(cases, verdicts, strict=True):
        if not verdict["accepted"]:
            assert _past_a_bound(expr), f"{kind} within every bound refused: {verdict['error']}"
        else:
            assert not _past_a_bound(expr), f"{kind} past a bound accepted ({len(expr)} characters)"
    check_with_promtool(verdicts, tmp_path_factory.mktemp("shapes"), promtool)


def _past_a_bound(expr: str) -> bool:
    """Measured without the scanner: the shapes' strings hold no brackets or signs."""
    depth = deepest = 0
    for char in expr:
        depth += char in "([{"
        depth -= char in ")]}"
        deepest = max(deepest, depth)
    return (len(expr) > promql.MAX_LENGTH or deepest > promql.MAX_NESTING or _unary_signs(expr) > promql.MAX_UNARY_SIGNS
            or expr.count(" + ") > promql.MAX_BINARY_OPERATORS)


def _unary_signs(expr: str) -> int:
    """Signs at the start of the shapes and after their opening parentheses."""
    return sum(1 for i, char in enumerate(expr) if char == "-" and (i == 0 or expr[i - 1] in "(-"))
