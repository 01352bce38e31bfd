"""PromQL handled as syntax trees: parse user input, fill templates, pin every selector to a tenant.

Generated expressions are written as templates whose placeholders are vector selectors named
`__arg_<name>__`; `build` parses the template and puts an already parsed expression in each
placeholder's place, so user text is never spliced into PromQL text. Every result then passes
`pin_tenant`, which puts the tenant matcher on every vector selector of the tree.

The binding cannot build nodes, and its own `walk`/`transform` convert subtrees again at every
node (minutes for a few hundred nested nodes). Trees are therefore walked here and written out by
`_write`, node by node from the parsed values (names checked, values escaped), then parsed again
once: linear in the size of the tree. User text is bounded by `scan` before the native parser
sees it, whose recursion overflows the stack on deep input and whose nodes copy their subtrees.
"""

from __future__ import annotations

import collections
import functools
import json
import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta

import promql_parser as pp

from .models.common import (
    LABEL_NAME_PATTERN,
    MAX_RANGE,
    MIN_EVALUATION_INTERVAL,
    duration_seconds,
)

_PLACEHOLDER = re.compile(r"^__arg_([a-z0-9_]+)__$")
_LABEL_NAME = re.compile(LABEL_NAME_PATTERN)
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
# Functions that write a label named by their second argument.
_LABEL_WRITERS = {"label_replace", "label_join"}
# Aggregations Prometheus runs only with --enable-feature=promql-experimental-functions.
_EXPERIMENTAL_AGGREGATIONS = {"limitk", "limit_ratio"}

# Bounds on user PromQL, checked before the native parser. Rules stay below them: the 272 rules
# Observatory writes for examples/ have at most 4,024 characters, nesting 9 and 96 binary operators
# (a calendar budget's part of a zone's UTC offsets, compile/calendar.py; 67 without it).
# The binding's parse costs the sum of the depths of the tree's nodes (each node copies its
# subtree), and its recursion overflows a 1 MiB thread stack between depths 1,000 and 2,000: at
# these bounds a 16 KiB expression compiles in at most ~35 ms (bench/compile) and the tree is at
# most ~200 deep.
MAX_LENGTH = 16 * 1024
MAX_NESTING = 32  # parentheses, brackets and braces, function calls and aggregations included
MAX_UNARY_SIGNS = 32  # each sign is a level of the tree, like a bracket
MAX_BINARY_OPERATORS = 128  # a chain of operators is as deep as it is long
# Prometheus refuses range queries above 11,000 points per series ("exceeded maximum resolution of
# 11,000 points per timeseries", web/api/v1/api.go); a subquery is the same work inside a rule.
MAX_SUBQUERY_POINTS = 11_000
_MAX_RANGE_SECONDS = duration_seconds(MAX_RANGE)
_MIN_STEP_SECONDS = duration_seconds(MIN_EVALUATION_INTERVAL)


class PromQLError(ValueError):
    """A PromQL expression is invalid or unsafe; the message says why."""


def parse(text: str) -> pp.Expr:
    """Parse user (or template) text, bounded first by `scan`."""
    scan(text)
    return _parse(text)


def _parse(text: str) -> pp.Expr:
    try:
        return pp.parse(text)
    except (ValueError, RuntimeError) as err:  # the binding reports syntax errors as ValueError
        message = str(err).strip() or "invalid expression"
        raise PromQLError(f"invalid PromQL: {message}") from None


# One token at a time: string literals (unterminated ones run to the end, which the parser refuses),
# comments and numbers (1e-3: an exponent's sign is no operator; 0x1e-3 is 0x1e minus 3) first.
_TOKEN = re.compile(r"""
    (?P<space>\s+) | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"? | '(?:[^'\\]|\\.)*'? | `[^`]*`?)
  | (?P<number>(?:0[xX][0-9a-fA-F]+ | (?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)[0-9a-zA-Z_:.]*)
  | (?P<word>[a-zA-Z_:][a-zA-Z0-9_:.]*)
  | (?P<open>[(\[{]) | (?P<close>[)\]}])
  | (?P<matcher>=~|!~|=(?!=))
  | (?P<operator>==|!=|<=|>=|[-+*/%^<>])  # != in a selector counts too: a comparison cannot hide there
  | (?P<other>.)
""", re.DOTALL | re.VERBOSE)
_WORD_OPERATORS = {"and", "or", "unless", "atan2"}
# After these a sign is unary; after an operand (name, number, string, closing bracket) binary.
_BEFORE_OPERAND = {"start", "open", "operator", "matcher", ",", "bool", "offset", "@", ":"}


def scan(text: str) -> None:
    """Refuse text beyond the bounds above, in one pass over its tokens."""
    if len(text) > MAX_LENGTH:
        raise PromQLError(f"is {len(text)} characters long; at most {MAX_LENGTH} are accepted: "
                          "split it into recording rules")
    depth = unary = binary = 0
    previous = "start"
    for token in _TOKEN.finditer(text):
        kind = token.lastgroup
        if kind in ("space", "comment"):
            continue
        value = token.group()
        if kind == "open":
            depth += 1
            if depth > MAX_NESTING:
                raise PromQLError(f"is nested more than {MAX_NESTING} deep (parentheses, brackets, function calls); "
                                  f"at most {MAX_NESTING} levels are accepted: split it into recording rules")
        elif kind == "close":
            depth -= 1
            kind = "operand"
        elif kind == "operator" and value in "+-" and previous in _BEFORE_OPERAND:
            unary += 1
            if unary > MAX_UNARY_SIGNS:
                raise PromQLError(f"has more than {MAX_UNARY_SIGNS} unary signs (+x, -x); at most {MAX_UNARY_SIGNS} are "
                                  "accepted: remove redundant signs or split it into recording rules")
        elif kind == "operator" or kind == "word" and value in _WORD_OPERATORS:
            binary += 1
            kind = "operator"
            if binary > MAX_BINARY_OPERATORS:
                raise PromQLError(f"has more than {MAX_BINARY_OPERATORS} binary operators; at most {MAX_BINARY_OPERATORS} "
                                  "are accepted: split it into recording rules")
        elif kind == "word" and value in ("bool", "offset") or kind == "other" and value in ",@:":
            kind = value
        elif kind != "matcher":
            kind = "operand"
        previous = kind


# prettify() indents every level of the tree on a line of its own: its text grows with size times
# depth (107 KB for a sum of 250 terms); deeper trees are written on one line.
PRETTY_DEPTH = 16


def render(expr: pp.Expr, deepest: int | None = None) -> str:
    """Canonical text of an expression (multi-line for long ones, one line for deep ones);
    `deepest` is its `depth` where known."""
    return expr.prettify() if (depth(expr) if deepest is None else deepest) <= PRETTY_DEPTH else _write(expr)[0]


def depth(expr: pp.Expr) -> int:
    deepest, stack = 0, [(expr, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in _children(node))
    return deepest


def _children(node: pp.Expr) -> list[pp.Expr]:
    if isinstance(node, pp.BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, (pp.ParenExpr, pp.UnaryExpr, pp.SubqueryExpr)):
        return [node.expr]
    if isinstance(node, pp.AggregateExpr):
        return [node.param, node.expr] if node.param is not None else [node.expr]
    if isinstance(node, pp.Call):
        return list(node.args)
    if isinstance(node, pp.MatrixSelector):
        return [node.vector_selector]
    return []


def nodes(expr: pp.Expr) -> Iterator[pp.Expr]:
    """Every node of `expr`, parents before children, without recursion."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(_children(node)))


def selectors(expr: pp.Expr) -> list[pp.VectorSelector]:
    return [node for node in nodes(expr) if isinstance(node, pp.VectorSelector)]


def check_tenant(expr: pp.Expr, tenant_label: str, tenant: str) -> None:
    """Reject user expressions that reach outside the tenant, forge the tenant label or ask
    Prometheus for more than it should do."""
    for node in nodes(expr):
        _check_node(node, tenant_label, tenant)
        _check_bounds(node)


def _check_node(node: pp.Expr, tenant_label: str, tenant: str) -> None:
    if isinstance(node, pp.VectorSelector):
        _check_matchers(_all_matchers(node), tenant_label, tenant)
    elif isinstance(node, pp.Call) and node.func.name in _LABEL_WRITERS:
        target = node.args[1]
        while isinstance(target, pp.ParenExpr):  # ("namespace") is a string too
            target = target.expr
        if not isinstance(target, pp.StringLiteral):
            raise PromQLError(f"{node.func.name}() takes its target label as a string literal")
        if target.val == tenant_label:
            raise PromQLError(f"{node.func.name}() may not write the tenant label {tenant_label!r}")
        _label_name(target.val, f"{node.func.name}() target label")


def _check_matchers(matchers: Sequence[pp.Matcher], tenant_label: str, tenant: str) -> None:
    for matcher in matchers:
        if matcher.name == tenant_label and (matcher.op != pp.MatchOp.Equal or matcher.value != tenant):
            raise PromQLError(f"selects {matcher}; expressions may only read their own {tenant_label} {tenant!r}")


def _check_bounds(node: pp.Expr) -> None:
    """What Prometheus would refuse or should not be asked: names it does not take, experimental
    functions, ranges and subqueries beyond the bounds above."""
    if isinstance(node, pp.VectorSelector):
        if node.name is not None and node.name.startswith("__"):
            raise PromQLError(f"metric name {node.name!r}: names starting with __ are reserved")
        _selector_text(node)  # checks the metric and label names
    elif isinstance(node, pp.AggregateExpr) and node.modifier is not None:
        _labels(node.modifier.labels)
    elif isinstance(node, pp.BinaryExpr):
        _bin_modifier(node.modifier)  # checks the label names and refuses fill()
    if isinstance(node, pp.Call) and node.func.experimental:
        raise PromQLError(f"{node.func.name}() is experimental in Prometheus (it runs only behind a feature flag); "
                          "use a stable function")
    if isinstance(node, pp.AggregateExpr) and str(node.op) in _EXPERIMENTAL_AGGREGATIONS:
        raise PromQLError(f"{node.op}() is experimental in Prometheus (it runs only behind a feature flag); use topk()")
    if isinstance(node, pp.MatrixSelector):
        _range(node.range, "a range")
    elif isinstance(node, pp.SubqueryExpr):
        _range(node.range, "a subquery range")
        step = node.step.total_seconds() if node.step else None
        if step is not None and step < _MIN_STEP_SECONDS:
            raise PromQLError(f"has a subquery step of {pp.display_duration(node.step)}; the step must be at least "
                              f"{MIN_EVALUATION_INTERVAL}")
        points = node.range.total_seconds() / (step or _MIN_STEP_SECONDS)
        if points > MAX_SUBQUERY_POINTS:
            raise PromQLError(f"has a subquery of {points:.0f} points ([{pp.display_duration(node.range)}:"
                              f"{pp.display_duration(node.step) if node.step else ''}], a missing step counts as "
                              f"{MIN_EVALUATION_INTERVAL}); at most {MAX_SUBQUERY_POINTS} are accepted: "
                              "use a larger step or a shorter range")


def _range(value: timedelta, what: str) -> None:
    if value.total_seconds() > _MAX_RANGE_SECONDS:
        raise PromQLError(f"has {what} of {pp.display_duration(value)}; at most {MAX_RANGE} is accepted")


@functools.lru_cache(maxsize=4096)  # the same few names in every rule; bounded against hostile variety
def _label_name(name: str, what: str) -> str:
    if not _LABEL_NAME.match(name):
        raise PromQLError(f"{what} {name!r} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)")
    if name.startswith("__") and not (name == "__name__" and what == "matcher"):
        raise PromQLError(f"{what} {name!r}: names starting with __ are reserved to Prometheus")
    return name


def value_type(expr: pp.Expr) -> str:
    """`vector`, `scalar`, `matrix` or `string`: what `expr` evaluates to."""
    pending, leaves = [expr], []
    while pending:  # a binary expression is a scalar only if all its operands are
        node = pending.pop()
        if isinstance(node, (pp.ParenExpr, pp.UnaryExpr)):
            pending.append(node.expr)
        elif isinstance(node, pp.BinaryExpr):
            pending += [node.lhs, node.rhs]
        else:
            leaves.append(_leaf_type(node))
    if len(leaves) == 1:
        return leaves[0]
    return "scalar" if all(t == "scalar" for t in leaves) else "vector"


def _leaf_type(node: pp.Expr) -> str:
    if isinstance(node, pp.NumberLiteral):
        return "scalar"
    if isinstance(node, pp.StringLiteral):
        return "string"
    if isinstance(node, (pp.MatrixSelector, pp.SubqueryExpr)):
        return "matrix"
    if isinstance(node, pp.Call):
        return _op_name(node.func.return_type).lower()
    return "vector"  # selectors and aggregations


def pin_tenant(expr: pp.Expr, tenant_label: str, tenant: str) -> pp.Expr:
    """Return `expr` with `tenant_label="tenant"` on every vector selector (also inside ranges)."""
    return _parse(_pin(expr, tenant_label, tenant)[0])


def render_pinned(expr: pp.Expr, tenant_label: str, tenant: str) -> str:
    """`render(pin_tenant(expr, ...))`, with the depth from the walk that pins; the pinned text is
    rendered once (the operator compiles a namespace's shared rules again for each of its SLOs)."""
    text, deepest = _pin(expr, tenant_label, tenant)
    return _rendered(text, deepest) if len(text) <= _RENDERED_TEXT else render(_parse(text), deepest)


# Short texts only: a tenant's 16 KiB expression may render to 100 KiB.
_RENDERED_TEXT = 1024


@functools.lru_cache(maxsize=8192)  # the rules of ~1,500 SLOs, ~1 KiB each
def _rendered(text: str, deepest: int) -> str:
    return render(_parse(text), deepest)


def _pin(expr: pp.Expr, tenant_label: str, tenant: str) -> tuple[str, int]:
    """The pinned text and its depth, checked in the same walk that writes it."""
    pinned = _matcher_text(pp.Matcher(pp.MatchOp.Equal, tenant_label, tenant))

    def pin(node: pp.VectorSelector) -> tuple[str, str]:
        groups = _groups(node)
        for group in groups:
            _check_matchers(group, tenant_label, tenant)
        written = [[_matcher_text(m) for m in group if m.name != tenant_label] + [pinned] for group in groups]
        return _selector_text(node, written), _modifiers(node)

    def check_call(node: pp.Expr) -> None:  # selectors are checked by `pin`
        if type(node) is pp.Call:
            _check_node(node, tenant_label, tenant)

    return _write(expr, pin, check_call)


def tiles_sum(label: str, tiles: Sequence[str], differing: Sequence[str] = ()) -> str:
    """Template text of the sum of `tiles` (template texts of vectors with the same labels but
    `differing`, which the sum drops), each but the first told apart by `label` while they are
    unioned: a tile without a series adds nothing instead of dropping the sum. The union is a
    balanced tree of `or`s: each `or` hashes both its sides, so a chain would hash the first tiles
    again at every step."""
    labelled = [tile if i == 0 else f'label_replace({tile}, "{label}", "{i}", "", "")' for i, tile in enumerate(tiles)]

    def union(parts: Sequence[str]) -> str:
        if len(parts) == 1:
            return parts[0]
        half = (len(parts) + 1) // 2
        right = union(parts[half:])
        return f"{union(parts[:half])} or {right if len(parts) - half == 1 else f'({right})'}"  # `or` is left-associative

    return f"sum without ({', '.join((label, *differing))}) ({union(labelled)})"


def build(template: str, args: Mapping[str, pp.Expr] | None = None) -> pp.Expr:
    """Parse `template` and substitute each `__arg_<name>__` selector with `args[name]`."""
    args = args or {}
    used: set[str] = set()

    def substitute(node: pp.VectorSelector) -> tuple[str, str] | pp.Expr | None:
        match = _PLACEHOLDER.match(node.name or "")
        if not match:
            return None
        key = match.group(1)
        if key not in args:
            raise KeyError(f"template argument {key!r} missing")
        used.add(key)
        if node.offset is not None or node.at is not None:  # the placeholder's modifiers go to the arg
            return _plain_selector_text(as_selector(args[key])), _modifiers(node)
        return args[key]

    text = _write(_parsed(template), substitute)[0]
    unused = set(args) - used
    if unused:
        raise KeyError(f"template arguments not used: {sorted(unused)}")
    return _parse_written(text)


# Trees parsed from text `_write` wrote, with that text: `build` writes an argument made here (a
# selector, an earlier build) as its text instead of walking it again, which made nested builds
# quadratic. Keyed by id(): the entry holds the tree, so its id is not reused while it lives.
_WRITTEN: collections.OrderedDict[int, tuple[pp.Expr, str]] = collections.OrderedDict()
_WRITTEN_MAX = 1024  # the arguments of the builds of one resource
_WRITTEN_LOCK = threading.Lock()  # the operator compiles in several threads


def _parse_written(text: str) -> pp.Expr:
    expr = _parse(text)
    with _WRITTEN_LOCK:
        if len(_WRITTEN) >= _WRITTEN_MAX:
            _WRITTEN.popitem(last=False)  # the oldest (next(iter(dict)) slows down as a dict's head is deleted)
        _WRITTEN[id(expr)] = (expr, text)
    return expr


def clear_caches() -> None:
    """Forget what was parsed, written and rendered (bench/render times each compile from scratch)."""
    with _WRITTEN_LOCK:
        _WRITTEN.clear()
    for cached in (_rendered, _parsed, _label_name):
        cached.cache_clear()


def _written(expr: pp.Expr) -> str | None:
    entry = _WRITTEN.get(id(expr))
    return entry[1] if entry is not None and entry[0] is expr else None


def _plain_selector_text(node: pp.VectorSelector) -> str:
    """A selector without modifiers (`as_selector`): as written where it was made here."""
    return _written(node) or _selector_text(node)


@functools.lru_cache(maxsize=1024)
def _parsed(text: str, bounded: bool = False) -> pp.Expr:
    """Templates and metric names, few and used again and again, parsed once (a tree of the binding
    cannot be changed, so it can be shared); `bounded` scans the text first, like `parse`."""
    return parse(text) if bounded else _parse(text)


# A vector selector written otherwise: as a selector and its modifiers (which follow the range where
# the selector is a range's), or as another tree written in its place.
Replace = Callable[[pp.VectorSelector], "tuple[str, str] | pp.Expr | None"]
_KEEP: Replace = lambda node: None
# Binary operator precedence, lowest first (prometheus promql/parser/generated_parser.y); ^ is
# right-associative.
_PRECEDENCE = {op: level for level, ops in enumerate((("or",), ("and", "unless"), ("==", "!=", "<=", "<", ">=", ">"),
                                                      ("+", "-"), ("*", "/", "%", "atan2"), ("^",))) for op in ops}


def _write(expr: pp.Expr, replace: Replace = _KEEP, visit: Callable[[pp.Expr], None] | None = None) -> tuple[str, int]:
    """PromQL text of `expr` and its depth as `depth` counts it, without recursion: a work stack of
    text pieces and nodes to write; `visit` sees every node written.

    A node is written with the `replace` of its tree (a substituted tree is written as it is, a
    level below its placeholder) and, as an operand, its parent operator: a substituted operator
    gets parentheses where the parent's precedence would otherwise split it."""
    out: list[str] = []
    deepest = 0
    stack: list[object] = [(expr, replace, None, 1)]
    while stack:
        item = stack.pop()
        if type(item) is str:
            out.append(item)
            continue
        node, node_replace, operand_of, level = item
        if visit is not None:
            visit(node)
        # a range's selector is a level of its own in `depth`, written here with the range
        deepest = max(deepest, level + 1 if type(node) is pp.MatrixSelector else level)
        stack.extend(reversed(_parts(node, node_replace, operand_of, level)))
    return "".join(out), deepest


def _parts(node: pp.Expr, replace: Replace, operand_of: tuple[str, str] | None, level: int) -> list[object]:
    """The pieces of one node at `level`: text, and children as (node, replace, operand_of, level)."""
    below = level + 1
    if isinstance(node, pp.VectorSelector):
        replaced = replace(node)
        if isinstance(replaced, pp.Expr):
            inner: list[object] = [_written(replaced) or (replaced, _KEEP, None, below)]
            return ["(", *inner, ")"] if _needs_parens(replaced, operand_of) else inner
        return ["".join(replaced or (_selector_text(node), _modifiers(node)))]
    if isinstance(node, pp.MatrixSelector):
        selector, window = node.vector_selector, f"[{pp.display_duration(node.range)}]"
        replaced = replace(selector)
        if isinstance(replaced, pp.VectorSelector):
            modifiers = _modifiers(replaced)
            replaced = (_selector_text(replaced) if modifiers else _plain_selector_text(replaced)), modifiers
        if isinstance(replaced, pp.Expr):  # not a selector: the parser refuses the range
            return [(replaced, _KEEP, None, below), window]
        text, modifiers = replaced or (_selector_text(selector), _modifiers(selector))
        return [text, window, modifiers]
    if isinstance(node, pp.NumberLiteral):
        return [_number(node.val)]
    if isinstance(node, pp.StringLiteral):
        return [_quote(node.val)]
    if isinstance(node, pp.ParenExpr):
        return ["(", (node.expr, replace, None, below), ")"]
    if isinstance(node, pp.UnaryExpr):
        return ["-", (node.expr, replace, ("unary", ""), below)]
    if isinstance(node, pp.SubqueryExpr):
        step = pp.display_duration(node.step) if node.step else ""
        return [(node.expr, replace, ("subquery", ""), below), f"[{pp.display_duration(node.range)}:{step}]", _modifiers(node)]
    if isinstance(node, pp.Call):
        parts: list[object] = [node.func.name, "("]
        for i, arg in enumerate(node.args):
            parts += [", "] * (i > 0) + [(arg, replace, None, below)]
        return parts + [")"]
    if isinstance(node, pp.AggregateExpr):
        modifier = node.modifier
        grouping = ""
        if modifier is not None:
            word = "by" if _op_name(modifier.type) == "By" else "without"
            grouping = f" {word} ({_labels(modifier.labels)})"
        param: list[object] = [(node.param, replace, None, below), ", "] if node.param is not None else []
        return [f"{node.op}{grouping} (", *param, (node.expr, replace, None, below), ")"]
    if isinstance(node, pp.BinaryExpr):
        op = str(node.op)
        return [(node.lhs, replace, (op, "lhs"), below), f" {op}{_bin_modifier(node.modifier)} ", (node.rhs, replace, (op, "rhs"), below)]
    raise PromQLError(f"unsupported PromQL node {type(node).__name__}")


def _needs_parens(arg: pp.Expr, operand_of: tuple[str, str] | None) -> bool:
    if operand_of is None or not isinstance(arg, (pp.BinaryExpr, pp.UnaryExpr)):
        return False
    parent, side = operand_of
    if parent not in _PRECEDENCE or isinstance(arg, pp.UnaryExpr):  # under a sign or a subquery; -x ^ 2 is -(x ^ 2)
        return True
    mine, theirs = _PRECEDENCE[str(arg.op)], _PRECEDENCE[parent]
    return mine < theirs or (mine == theirs and side == ("lhs" if parent == "^" else "rhs"))


def _bin_modifier(modifier: pp.BinModifier | None) -> str:
    if modifier is None:
        return ""
    fill = modifier.fill_values
    if fill is not None and (fill.lhs is not None or fill.rhs is not None):
        raise PromQLError("fill() modifiers are not part of the PromQL Prometheus runs")
    text = " bool" if modifier.return_bool else ""
    if modifier.matching is not None:
        word = "on" if _op_name(modifier.matching.type) == "Include" else "ignoring"
        text += f" {word} ({_labels(modifier.matching.labels)})"
    card = _op_name(modifier.card)
    if card in ("ManyToOne", "OneToMany"):
        text += f" {'group_left' if card == 'ManyToOne' else 'group_right'} ({_labels(modifier.group_labels or [])})"
    return text


def _labels(names: Sequence[str]) -> str:
    return ", ".join(_label_name(name, "label") for name in names)


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _groups(node: pp.VectorSelector) -> list[list[pp.Matcher]]:
    if node.matchers.or_matchers:
        return [list(group) for group in node.matchers.or_matchers]
    return [list(node.matchers.matchers)]


def _selector_text(node: pp.VectorSelector, matcher_groups: list[list[str]] | None = None) -> str:
    """A selector without its modifiers, with `matcher_groups` (written by `_matcher_text`; default
    its own), the metric name checked."""
    name = node.name
    if name is not None and not _METRIC_NAME.match(name):
        raise PromQLError(f"metric name {name!r} is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
    if matcher_groups is None:
        matcher_groups = [[_matcher_text(m) for m in group] for group in _groups(node)]
    return (name or "") + "{" + " or ".join(", ".join(group) for group in matcher_groups) + "}"


def _matcher_text(matcher: pp.Matcher) -> str:
    """The label name checked, the value escaped (the binding's `str()` does not escape label values).
    `encode_basestring` is what `json.dumps(value, ensure_ascii=False)` calls for a string."""
    return _label_name(matcher.name, "matcher") + _OPERATORS[int(matcher.op)] + _quote(matcher.value)


_quote = json.encoder.encode_basestring


def _modifiers(node: pp.VectorSelector | pp.SubqueryExpr) -> str:
    text = ""
    if node.offset is not None:
        offset = node.offset
        sign = "-" if offset.total_seconds() < 0 else ""
        text += f" offset {sign}{pp.display_duration(abs(offset))}"
    if node.at is not None:
        at = node.at
        kind = _op_name(at.type)
        text += " @ start()" if kind == "Start" else " @ end()" if kind == "End" else f" @ {at.at.timestamp():.3f}"
    return text


# By int(pp.MatchOp): the binding's enums cannot be hashed.
_OPERATORS = {int(op): text for op, text in ((pp.MatchOp.Equal, "="), (pp.MatchOp.NotEqual, "!="),
                                             (pp.MatchOp.Re, "=~"), (pp.MatchOp.NotRe, "!~"))}


def _op_name(enum_value: object) -> str:
    return str(enum_value).rsplit(".", 1)[-1]


def selector(metric: str, matchers: Sequence[pp.Matcher] = (), extra: pp.Expr | None = None) -> pp.Expr:
    """A vector selector for `metric` with `matchers`, plus the matchers of `extra`.

    `extra` is a parsed selector such as `{route="/chat"}` (user input, see `narrowing`) whose
    matchers narrow the generated selector; each of its `or` alternatives narrows it in turn.
    """
    node = _parsed(metric, bounded=True)
    if not isinstance(node, pp.VectorSelector):
        raise PromQLError(f"{metric!r} is not a metric name")
    base = [_matcher_text(m) for m in [*node.matchers.matchers, *matchers]]
    groups = [base + [_matcher_text(m) for m in group] for group in _groups(as_selector(extra))] if extra is not None else [base]
    return _parse_written(_selector_text(node, groups))


# The metric name a narrowing selector is parsed under: PromQL refuses a selector of only negative
# matchers alone ({verb!="WATCH"}: "vector selector must contain at least one non-empty matcher",
# promql/parser/parse.go), but a narrowing selector is always put under a metric name, where it is fine.
_NARROWED = "observatory_narrowed_signal"
_CHOOSES_A_METRIC = ("chooses a metric (a metric name or __name__); this selector narrows the built-in signals "
                     "by their labels: write only label matchers, e.g. {service_name=\"chat\"}")


def parse_narrowing(text: str) -> pp.Expr:
    """Parse a selector that narrows built-in signals, e.g. {route="/chat"} or {verb!="WATCH"}.

    Text that starts with a brace is parsed under a placeholder metric name; whatever else it holds
    is then no plain selector of that name and `narrowing` refuses it. A __name__ matcher is refused
    first (under the placeholder the parser would call it a second metric name)."""
    scan(text)
    if any(t.lastgroup == "word" and t.group() == "__name__" for t in _TOKEN.finditer(text)):
        raise PromQLError(_CHOOSES_A_METRIC)
    stripped = text.strip()
    return _parse(_NARROWED + stripped) if stripped.startswith("{") else _parse(text)


def narrowing(expr: pp.Expr) -> pp.VectorSelector:
    """A selector that narrows built-in signals: label matchers only, the metric is Observatory's."""
    chosen = as_selector(expr)
    if chosen.name != _NARROWED or any(m.name == "__name__" for m in _all_matchers(chosen)):
        raise PromQLError(_CHOOSES_A_METRIC)
    return chosen


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
