"""PromQL handled as syntax trees: parse user input, fill templates, pin every selector to a tenant.

Generated expressions are written as templates whose placeholders are vector selectors named
`__arg_<name>__`; `build` parses the template and replaces each placeholder node with an already
parsed expression, so user text is never spliced into PromQL text. Every result then passes
`pin_tenant`, which puts the tenant matcher on every vector selector of the tree.
"""

from __future__ import annotations

import json
import re
from typing import Mapping, Sequence

import promql_parser as pp

_PLACEHOLDER = re.compile(r"^__arg_([a-z0-9_]+)__$")
# Functions that write a label named by their second argument.
_LABEL_WRITERS = {"label_replace", "label_join"}


class PromQLError(ValueError):
    """A PromQL expression is invalid or unsafe; the message says why."""


def parse(text: str) -> pp.Expr:
    try:
        return pp.parse(text)
    except (ValueError, RuntimeError) as err:  # the binding reports syntax errors as ValueError
        message = str(err).strip() or "invalid expression"
        raise PromQLError(f"invalid PromQL: {message}") from None


def render(expr: pp.Expr) -> str:
    """Canonical text of an expression (multi-line for long ones)."""
    return expr.prettify()


def selectors(expr: pp.Expr) -> list[pp.VectorSelector]:
    found: list[pp.VectorSelector] = []

    def visit(node: pp.Expr) -> None:
        if isinstance(node, pp.VectorSelector):
            found.append(node)

    pp.walk(expr, visit)
    return found


def check_tenant(expr: pp.Expr, tenant_label: str, tenant: str) -> None:
    """Reject expressions that reach outside the tenant or forge the tenant label."""
    pp.walk(expr, lambda node: _check_node(node, tenant_label, tenant))


def _check_node(node: pp.Expr, tenant_label: str, tenant: str) -> None:
    if isinstance(node, pp.VectorSelector):
        for matcher in _all_matchers(node):
            if matcher.name == tenant_label and (matcher.op != pp.MatchOp.Equal or matcher.value != tenant):
                raise PromQLError(f"selects {matcher}; expressions may only read their own {tenant_label} {tenant!r}")
    elif isinstance(node, pp.Call) and node.func.name in _LABEL_WRITERS:
        target = node.args[1]
        if isinstance(target, pp.StringLiteral) and target.val == tenant_label:
            raise PromQLError(f"{node.func.name}() may not write the tenant label {tenant_label!r}")


def pin_tenant(expr: pp.Expr, tenant_label: str, tenant: str) -> pp.Expr:
    """Return `expr` with `tenant_label="tenant"` on every vector selector (also inside ranges)."""
    pinned = pp.Matcher(pp.MatchOp.Equal, tenant_label, tenant)

    def visit(node: pp.Expr) -> pp.Expr | None:
        _check_node(node, tenant_label, tenant)  # checked in the same pass: trees are walked once
        if not isinstance(node, pp.VectorSelector):
            return None
        if node.matchers.or_matchers:
            groups = [[m for m in group if m.name != tenant_label] for group in node.matchers.or_matchers]
        else:
            groups = [[m for m in node.matchers.matchers if m.name != tenant_label]]
        return _reselect(node, [group + [pinned] for group in groups])

    return pp.transform(expr, visit)


def build(template: str, args: Mapping[str, pp.Expr] | None = None) -> pp.Expr:
    """Parse `template` and substitute each `__arg_<name>__` selector with `args[name]`."""
    args = args or {}
    tree = parse(template)
    used: set[str] = set()

    def visit(node: pp.Expr) -> pp.Expr | None:
        if isinstance(node, pp.VectorSelector) and node.name:
            match = _PLACEHOLDER.match(node.name)
            if match:
                key = match.group(1)
                if key not in args:
                    raise KeyError(f"template argument {key!r} missing")
                used.add(key)
                return _carry_modifiers(node, args[key])
        return None

    result = pp.transform(tree, visit)
    unused = set(args) - used
    if unused:
        raise KeyError(f"template arguments not used: {sorted(unused)}")
    return result


def _carry_modifiers(placeholder: pp.VectorSelector, arg: pp.Expr) -> pp.Expr:
    """The arg in the placeholder's place, keeping the placeholder's offset and @ modifiers."""
    if placeholder.offset is None and placeholder.at is None:
        return pp.parse(arg.prettify())
    arg_selector = as_selector(arg)
    return _reselect(arg_selector, [list(arg_selector.matchers.matchers)], placeholder)


def _reselect(node: pp.VectorSelector, matcher_groups: list[list[pp.Matcher]],
              modifiers_from: pp.VectorSelector | None = None) -> pp.Expr:
    """A freshly parsed copy of a selector with new matchers.

    The binding ignores in-place edits of tree nodes and its `str()` does not escape label values,
    so the selector is printed here, with escaping, and parsed again.
    """
    modifiers_from = modifiers_from or node
    groups = [", ".join(f"{m.name}{_OPERATORS[_op_name(m.op)]}{json.dumps(m.value, ensure_ascii=False)}" for m in group)
              for group in matcher_groups]
    text = (node.name or "") + "{" + " or ".join(groups) + "}"
    if modifiers_from.offset is not None:
        offset = modifiers_from.offset
        sign = "-" if offset.total_seconds() < 0 else ""
        text += f" offset {sign}{pp.display_duration(abs(offset))}"
    if modifiers_from.at is not None:
        at = modifiers_from.at
        kind = _op_name(at.type)
        text += " @ start()" if kind == "Start" else " @ end()" if kind == "End" else f" @ {at.at.timestamp():.3f}"
    return pp.parse(text)


_OPERATORS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def _op_name(enum_value: object) -> str:
    return str(enum_value).rsplit(".", 1)[-1]


def selector(metric: str, matchers: Sequence[pp.Matcher] = (), extra: pp.Expr | None = None) -> pp.Expr:
    """A vector selector for `metric` with `matchers`, plus the matchers of `extra`.

    `extra` is a parsed selector such as `{route="/chat"}` (user input) whose matchers narrow the
    generated selector.
    """
    node = parse(metric)
    if not isinstance(node, pp.VectorSelector):
        raise PromQLError(f"{metric!r} is not a metric name")
    combined = list(node.matchers.matchers) + list(matchers)
    if extra is not None:
        combined += list(as_selector(extra).matchers.matchers)
    return _reselect(node, [combined])


def equal(name: str, value: str) -> pp.Matcher:
    return pp.Matcher(pp.MatchOp.Equal, name, value)


def not_equal(name: str, value: str) -> pp.Matcher:
    return pp.Matcher(pp.MatchOp.NotEqual, name, value)


def matches(name: str, pattern: str) -> pp.Matcher:
    return pp.Matcher(pp.MatchOp.Re, name, pattern)


def as_selector(expr: pp.Expr) -> pp.VectorSelector:
    if not isinstance(expr, pp.VectorSelector) or expr.offset is not None or expr.at is not None:
        raise PromQLError("must be a plain series selector such as metric{label=\"value\"}")
    return expr


def number(value: float) -> str:
    """A float as PromQL text (templates take numbers, never user strings)."""
    return repr(float(value))


def matcher_values(selector_expr: pp.VectorSelector, label: str) -> list[str]:
    return [m.value for m in _all_matchers(selector_expr) if m.name == label]


def _all_matchers(selector_expr: pp.VectorSelector) -> list[pp.Matcher]:
    matchers = list(selector_expr.matchers.matchers)
    for group in selector_expr.matchers.or_matchers:
        matchers.extend(group)
    return matchers

