"""Tenant pinning on syntax trees: every selector, however deeply nested, reads only the tenant."""

from __future__ import annotations

import promql_parser as pp
import pytest

from observatory import promql

TENANT = "team-a"


def pinned(text: str, label: str = "namespace") -> str:
    return promql.render(promql.pin_tenant(promql.parse(text), label, TENANT))


def selector_matchers(text: str) -> list[dict[str, tuple[bool, str]]]:
    """For every vector selector of `text`: label → (is an equality matcher, value)."""
    return [{m.name: (m.op == pp.MatchOp.Equal, m.value) for m in node.matchers.matchers}
            for node in promql.selectors(promql.parse(text))]


@pytest.mark.parametrize("expr, selectors", [
    ("up", 1),
    ('sum by (job) (rate(http_requests_total{code=~"5.."}[5m]))', 1),
    # subquery with offset around a function of a range with offset
    ("max_over_time(rate(errors_total[5m] offset 1h)[1d:5m] offset 2h)", 1),
    # binary operators with on/group_left, nested aggregations
    ("sum by (model) (rate(tokens_total[5m])) * on (model) group_left (tier) max by (model, tier) (price_info)", 2),
    ("(a / ignoring (le) group_right () b) > bool 3 unless on () c", 3),
    ("topk(3, sum without (pod) (rate(x[1m]))) or quantile(0.9, y) or count_values(\"v\", z)", 3),
    ("histogram_quantile(0.95, sum by (le) (rate(d_bucket[5m] @ end())))", 1),
    ('absent_over_time(up{job="x"}[10m])', 1),
    ('{__name__=~"gen_ai_.+"}', 1),
    ("-a + scalar(b) * vector(1)", 2),
    ('label_replace(a, "dst", "$1", "src", "(.*)")', 1),
])
def test_every_selector_is_pinned(expr: str, selectors: int) -> None:
    result = pinned(expr)
    found = selector_matchers(result)
    assert len(found) == selectors
    for matchers in found:
        assert matchers["namespace"] == (True, TENANT), result
    # The result is valid PromQL with the same shape.
    assert type(promql.parse(result)) is type(promql.parse(expr))


def test_modifiers_survive_pinning() -> None:
    result = pinned("rate(x[5m] offset 1h) + y offset -5m + z @ start() + max_over_time(w[1h:1m] offset 1d)")
    assert "offset 1h" in result and "offset -5m" in result and "@ start()" in result and "[1h:1m] offset 1d" in result


def test_or_matchers_are_each_pinned() -> None:
    found = promql.selectors(promql.parse(pinned('x{a="1" or b="2"}')))
    groups = found[0].matchers.or_matchers
    assert len(groups) == 2 and all(any(m.name == "namespace" and m.value == TENANT for m in g) for g in groups)


def test_label_values_are_escaped_on_the_way_back() -> None:
    result = pinned(r'x{path=~"/v1/chat\\.completions", q="say \"hi\""}')
    reparsed = promql.selectors(promql.parse(result))[0]
    values = {m.name: m.value for m in reparsed.matchers.matchers}
    assert values["path"] == r"/v1/chat\.completions"
    assert values["q"] == 'say "hi"'


def test_the_tenant_label_name_is_configurable() -> None:
    result = pinned("x", label="tenant")
    assert selector_matchers(result)[0]["tenant"] == (True, TENANT)


def test_an_explicit_own_namespace_is_accepted() -> None:
    assert selector_matchers(pinned('x{namespace="team-a"}'))[0]["namespace"] == (True, TENANT)


@pytest.mark.parametrize("expr, fragment", [
    ('x{namespace="team-b"}', 'namespace="team-b"'),
    ('x{namespace=~"team-.*"}', 'namespace=~"team-.*"'),
    ('x{namespace!="team-a"}', 'namespace!="team-a"'),
    ('sum(rate(x[5m])) / on() group_left sum(rate(y{namespace="kube-system"}[5m]))', "kube-system"),
    ('max_over_time(x{namespace!~"team-a"}[1h:5m])', "namespace!~"),
    ('x{a="1" or namespace="team-b"}', "team-b"),
])
def test_reaching_another_namespace_is_rejected(expr: str, fragment: str) -> None:
    with pytest.raises(promql.PromQLError, match="may only read their own namespace"):
        promql.pin_tenant(promql.parse(expr), "namespace", TENANT)


@pytest.mark.parametrize("expr", [
    'label_replace(x, "namespace", "team-b", "", "")',
    'label_join(x, "namespace", ",", "a", "b")',
])
def test_forging_the_tenant_label_is_rejected(expr: str) -> None:
    with pytest.raises(promql.PromQLError, match="may not write the tenant label"):
        promql.pin_tenant(promql.parse(expr), "namespace", TENANT)


@pytest.mark.parametrize("text", ["sum(", "rate(x[5m]", "x{a=}", "foo bar", "rate(x)", ""])
def test_syntax_errors_are_reported(text: str) -> None:
    with pytest.raises(promql.PromQLError, match="invalid PromQL"):
        promql.parse(text)


def test_build_substitutes_trees_not_text() -> None:
    user = promql.parse("a or b")
    built = promql.build("(__arg_x__) * 2", {"x": user})
    # `a or b * 2` would be a different expression; the tree keeps the user's precedence.
    assert isinstance(built, pp.BinaryExpr) and isinstance(built.lhs, pp.ParenExpr)
    assert promql.render(built) == "(a or b) * 2"


def test_build_keeps_the_placeholders_offset() -> None:
    built = promql.build("rate(__arg_s__[1w] offset 1d)", {"s": promql.parse('m{a="b"}')})
    assert promql.render(built) == 'rate(m{a="b"}[1w] offset 1d)'


def test_build_rejects_missing_and_unused_arguments() -> None:
    with pytest.raises(KeyError):
        promql.build("__arg_x__ + __arg_y__", {"x": promql.parse("a")})
    with pytest.raises(KeyError):
        promql.build("__arg_x__", {"x": promql.parse("a"), "z": promql.parse("b")})
