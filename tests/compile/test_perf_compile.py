"""The compile core's fast paths give exactly what the slow ones they replace give."""

from __future__ import annotations

import json
from pathlib import Path

import promql_parser as pp
import pytest

from observatory import promql
from observatory.compile import compile_bundle
from observatory.compile.rules import _size
from observatory.loader import read

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("obj", [
    {}, [], {"a": []}, {"a": {}, "b": [[], [{}]], "c": [1, 2.5, None, True]},
    {"ünï": "cöde \"q\" \\ \n", "list": ["x", {"y": ["z", []]}]},
    ({"t": ("a", ("b",))}),
])
def test_size_is_the_length_of_indented_json(obj) -> None:
    assert _size(obj) == len(json.dumps(obj, indent=4).encode())


def test_size_of_every_rendered_example_is_the_length_of_its_indented_json() -> None:
    objects = compile_bundle([r for _, r in read([str(REPO / "examples")], None).resources])
    assert len(objects) >= 20
    for obj in objects:
        assert _size(obj) == len(json.dumps(obj, indent=4).encode()), obj["metadata"]["name"]


TENANT_LABEL, TENANT = "namespace", "team-a"
LEAVES = ["x", "rate(x[5m])", "x offset 1h", "vector(-1)", "x + -1", "+x", "-x", "topk(3, x)", "max_over_time(x[5m:1m])", "1 + 2 * x",
          'label_replace(x, "d", "$1", "s", "(.*)")', "sum by (a) (rate(x[5m] @ end()))", "(x)"]


@pytest.mark.parametrize("leaf", LEAVES)
def test_render_pinned_gives_render_of_the_pinned_tree_on_both_sides_of_the_pretty_depth(leaf: str) -> None:
    """render_pinned takes the depth from its own walk: it must be the depth `render` measures on the
    pinned tree, or a tree at the edge is printed the other way (multi-line against one line)."""
    depths = set()
    for wrap in ("abs({})", "-({})", "({}) + 1", "2 ^ ({})", "sum({})", "max_over_time(({})[5m:])"):
        text, expr = leaf, promql.parse(leaf)
        while promql.depth(expr) <= promql.PRETTY_DEPTH + 1:
            expected = promql.render(promql.pin_tenant(expr, TENANT_LABEL, TENANT))
            assert promql.render_pinned(expr, TENANT_LABEL, TENANT) == expected, text
            depths.add(promql.depth(expr))
            text = wrap.format(text)
            expr = pp.parse(text)  # past the nesting bound of `parse`: only the depth matters here
    assert {promql.PRETTY_DEPTH, promql.PRETTY_DEPTH + 1} <= depths


def test_render_pinned_gives_render_of_the_pinned_tree_for_every_rule_of_the_examples() -> None:
    exprs = [(obj["metadata"]["namespace"], rule["expr"])
             for obj in compile_bundle([r for _, r in read([str(REPO / "examples")], None).resources])
             if obj["kind"] == "PrometheusRule" for group in obj["spec"]["groups"] for rule in group["rules"]]
    assert len(exprs) > 100
    for namespace, text in exprs:
        expr = promql.parse(text)
        assert promql.render_pinned(expr, TENANT_LABEL, namespace) == promql.render(promql.pin_tenant(expr, TENANT_LABEL, namespace))


def test_rendered_texts_are_kept_only_when_short() -> None:
    """A tenant's expression may be 16 KiB and render to 100 KiB: such texts are not kept."""
    long = promql.parse(" + ".join(f'x{{a="{i:0100d}"}}' for i in range(12)))
    short = promql.parse('x{a="only-in-test_rendered_texts_are_kept_only_when_short"}')
    before = promql._rendered.cache_info().currsize
    first = promql.render_pinned(long, TENANT_LABEL, TENANT)
    assert promql._rendered.cache_info().currsize == before
    assert promql.render_pinned(long, TENANT_LABEL, TENANT) == first
    promql.render_pinned(short, TENANT_LABEL, TENANT)
    assert promql._rendered.cache_info().currsize == before + 1
