"""Prometheus alert templates, confined to the subset that reads the alert itself.

Prometheus expands the labels and annotations of an alerting rule as Go text/template on every
evaluation, after `{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL :=
.ExternalURL}}{{$value := .Value}}` (prometheus rules/alerting.go), with the functions of
template/template.go's NewTemplateExpander and text/template's builtins. One of them, `query`,
runs any PromQL against the whole TSDB, unpinned: a tenant's template would read every tenant.

So a template is lexed as Go's text/template/parse/lex.go lexes it (stricter where that is
simpler: ASCII identifiers, plain numbers, no character constants), every function it names must
be allowed in FUNCTIONS, named templates are refused, and what could make Prometheus' expansion
expensive is bounded: printf formats are literal with small widths, and `range` walks a variable
or field (e.g. $labels), never inside another `range`. Anything Go would refuse to parse is
refused too, since Prometheus would then reject the whole rule file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import FieldError

TSDB = "reads the TSDB, not the alert: any tenant's series"
# Every function Prometheus' alert templates know (prometheus template/template.go, NewTemplateExpander,
# v2.42 to 3.x) and Go's text/template builtins (text/template/funcs.go): None where allowed, else why not.
# A name missing here is refused as unknown.
FUNCTIONS: dict[str, str | None] = {
    **dict.fromkeys((
        # text/template builtins: logic, comparison, indexing and formatting of the values at hand.
        "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "slice",
        "print", "printf", "println", "html", "js", "urlquery",
        # Prometheus: string and number formatting of the alert's own labels and value.
        "reReplaceAll", "safeHtml", "match", "title", "toUpper", "toLower", "stripPort", "stripDomain",
        "humanize", "humanize1024", "humanizeDuration", "humanizePercentage", "humanizeTimestamp",
        "toTime", "toDuration", "parseDuration", "urlQueryEscape", "args", "now",
        # The same URL as $externalURL, which Prometheus gives every alert template.
        "pathPrefix", "externalURL",
    )),
    "query": f"runs any PromQL when the alert fires: it {TSDB}",
    **dict.fromkeys(("first", "label", "value", "strvalue", "sortByLabel"),
                    f"works on the results of `query`, which {TSDB}"),
    **dict.fromkeys(("graphLink", "tableLink"), "builds a link that runs unpinned PromQL on the shared Prometheus"),
    "tmpl": "runs a named template (console templates only)",
    "call": "calls a function value, and alert data holds none",
}
KEYWORDS = frozenset({"block", "break", "continue", "define", "else", "end", "if", "nil", "range", "template", "with"})
# Variables Prometheus declares before the template (rules/alerting.go) and Go's `$`.
PREDECLARED = ("$", "$labels", "$externalLabels", "$externalURL", "$value")
MAX_FORMAT_WIDTH = 100  # Go's fmt takes widths up to 10^6: a few such verbs make megabytes per evaluation
FIX = "templates may read only the alert: $labels, $value, $externalLabels, with functions such as humanize, printf, toUpper"

_SPACE = " \t\r\n"
_TERMINATORS = _SPACE + ".,|:()"
_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_NAME = re.compile(r"[A-Za-z0-9_]*")
_ESCAPE = re.compile(r'\\(?:[abfnrtv\\"]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3})')
_VERB = re.compile(r"%[-+# 0]*(\[[0-9]+\])?(\*|[0-9]+)?(?:\.(\*|[0-9]*))?(\[[0-9]+\])?(.)?", re.DOTALL)


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str  # ident keyword bool field variable string raw number ( ) | := = , dot
    text: str


def literal(text: str) -> str:
    """`text` as template text that prints itself: quoted in an action when it holds braces."""
    return text if "{" not in text and "}" not in text else "{{ " + json.dumps(text, ensure_ascii=False) + " }}"


def template_errors(fields: Mapping[str, str]) -> list[FieldError]:
    """An error for every field (path → template) that is not an allowed template."""
    errors = []
    for field, text in fields.items():
        try:
            check(text)
        except TemplateError as err:
            errors.append(FieldError(field, f"{err}; {FIX}"))
    return errors


def check(text: str) -> None:
    """Raise TemplateError unless `text` is an allowed alert template."""
    blocks: list[tuple[str, int]] = []  # open if/with/range, with the number of variables declared before
    variables = list(PREDECLARED)
    for tokens in _actions(text):
        if tokens is None:  # a comment
            continue
        head = tokens[0].text if tokens and tokens[0].kind == "keyword" else None
        if head in ("define", "template", "block"):
            raise TemplateError(f"{{{{{head}}}}} defines or runs named templates; write the text inline")
        if head in ("if", "with", "range"):
            if head == "range" and any(kind == "range" for kind, _ in blocks):
                raise TemplateError("{{range}} inside another {{range}} multiplies the output; use one level")
            blocks.append((head, len(variables)))
            _pipeline(tokens[1:], head, variables)
            if head == "range":
                _check_range(tokens[1:])
        elif head == "else":
            if not blocks:
                raise TemplateError("{{else}} outside {{if}}, {{with}} or {{range}}")
            rest = tokens[1:]
            # {{else with}} is Go 1.23's, unknown to the Prometheus releases built before it.
            if rest and rest[0].kind == "keyword" and rest[0].text == "if":
                _pipeline(rest[1:], "else if", variables)
            elif rest:
                raise TemplateError(f"unexpected {rest[0].text!r} after else; nest another block instead")
        elif head == "end":
            if not blocks or len(tokens) > 1:
                raise TemplateError("unexpected {{end}}")
            del variables[blocks.pop()[1]:]
        elif head in ("break", "continue"):
            if not any(kind == "range" for kind, _ in blocks) or len(tokens) > 1:
                raise TemplateError(f"{{{{{head}}}}} outside {{{{range}}}}")
        else:
            _pipeline(tokens, "command", variables)
    if blocks:
        raise TemplateError(f"{{{{{blocks[-1][0]}}}}} without {{{{end}}}}")


def _check_range(tokens: list[Token]) -> None:
    operand = tokens
    for i, token in enumerate(tokens):
        if token.kind in (":=", "="):
            operand = tokens[i + 1:]
    if not (operand and operand[0].kind in ("variable", "field") and all(t.kind == "field" for t in operand[1:])):
        raise TemplateError("{{range}} may walk only a variable or field, e.g. {{range $name, $v := $labels}}")


# Size classes of a value, for output that stays polynomial in the template's length: ATOMIC is the
# alert's data (a label value, $value), a literal or a few bytes (humanize, len); PLAIN is computed from
# such values by functions that grow their input by at most a constant per nesting level (html, toUpper,
# print); AMPLIFIED is the output of a function that can multiply its input.
ATOMIC, PLAIN, AMPLIFIED = 0, 1, 2
# A few bytes whatever the input.
BOUNDED_OUTPUT = frozenset({"humanize", "humanize1024", "humanizeDuration", "humanizePercentage", "humanizeTimestamp",
                            "toTime", "toDuration", "parseDuration", "now", "len", "not", "eq", "ne", "lt", "le",
                            "gt", "ge", "match", "pathPrefix", "externalURL"})
# Return one of their arguments, or a part of it.
SELECTING = frozenset({"and", "or", "index", "slice"})
# Can multiply their input: js and printf's %q double backslashes, printf's %x doubles every byte,
# reReplaceAll repeats its replacement at every match. Nested, output doubles with each call (16 js
# calls, 70 bytes of template: 64 KiB), on every evaluation of every firing alert.
AMPLIFIERS = frozenset({"js", "printf", "reReplaceAll"})


def _pipeline(tokens: list[Token], what: str, variables: list[str]) -> None:
    """Check one pipeline: declarations, functions called, printf formats, the size of what it stores."""
    if not tokens:
        raise TemplateError(f"missing value for {what}")
    declared: list[str] = []
    for i, token in enumerate(tokens):
        if token.kind in (":=", "="):
            names = tokens[:i]
            if (len(names) not in (1, 3) or any(t.kind != "variable" for t in names[::2])
                    or any(t.kind != "," for t in names[1::2]) or (len(names) == 3 and what != "range")):
                raise TemplateError("bad declaration; write {{ $name := value }}")
            if token.kind == "=":
                _use(names, variables)
            declared = [t.text for t in names[::2]]
            tokens = tokens[i + 1:]
            break
    size = _stages(tokens, what, variables)
    # A stored value may be used many times: computed text there doubles with every variable built from two.
    if (declared or what == "with") and size != ATOMIC:
        raise TemplateError(f"{'a variable' if declared else '{{with}}'} may hold only the alert's data, a literal or a "
                            "number-like result (e.g. $labels.model, $value | humanize), not computed text")
    variables.extend(declared)


def _stages(tokens: list[Token], what: str, variables: list[str]) -> int:
    """The size class of a pipeline's value (its commands separated by |, at this paren depth)."""
    if not tokens:
        raise TemplateError(f"missing value for {what}")
    stages: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        depth += {"(": 1, ")": -1}.get(token.kind, 0)
        if token.kind == "|" and depth == 0:
            stages.append([])
        else:
            stages[-1].append(token)
    size = None
    for stage in stages:
        if not stage:
            raise TemplateError("missing command in a pipeline")
        size = _command(stage, variables, size)
    return size


def _command(tokens: list[Token], variables: list[str], piped: int | None) -> int:
    """The size class of one command: a function call with its arguments (and the piped value), or a value."""
    operands: list[tuple[Token, int]] = []  # the operand's first token and its size class
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind == "(":
            end, depth = i, 0
            while True:
                depth += {"(": 1, ")": -1}.get(tokens[end].kind, 0)
                if depth == 0:
                    break
                end += 1
            size = _stages(tokens[i + 1:end], "a parenthesised pipeline", variables)
            i = end + 1
        else:
            if token.kind in (":=", "=", ",", ")") or (token.kind == "keyword" and not (token.text == "nil" and operands)):
                raise TemplateError(f"unexpected {token.text!r} in an action")
            if token.kind == "variable":
                _use([token], variables)
            # A function named as an argument is called without arguments.
            size = _call(token, [], tokens[i + 1:i + 2]) if token.kind == "ident" and operands else ATOMIC
            i += 1
        while i < len(tokens) and tokens[i].kind == "field":  # .Field after a value: a part of it
            i += 1
        operands.append((token, size))
    head, size = operands[0]
    if head.kind == "ident":
        return _call(head, [s for _, s in operands[1:]] + ([] if piped is None else [piped]), tokens[1:2])
    if len(operands) > 1 or piped is not None:
        raise TemplateError(f"{head.text} is a value, not a command: only a function takes arguments or a piped value")
    return size


def _call(function: Token, arguments: list[int], first: list[Token]) -> int:
    name = function.text
    if name not in FUNCTIONS:
        raise TemplateError(f"`{name}` is not a Prometheus template function")
    if FUNCTIONS[name] is not None:
        raise TemplateError(f"`{name}` {FUNCTIONS[name]}")
    if name == "printf":
        _check_format(first[0] if first else None)
    if name in BOUNDED_OUTPUT:
        return ATOMIC
    if name in AMPLIFIERS:
        if AMPLIFIED in arguments:
            raise TemplateError(f"`{name}` over the output of js, printf or reReplaceAll grows exponentially with nesting; "
                                "apply it to the alert's data once")
        return AMPLIFIED
    return max(arguments, default=ATOMIC) if name in SELECTING else max([PLAIN, *arguments])


def _use(tokens: list[Token], variables: list[str]) -> None:
    for token in tokens:
        if token.kind == "variable" and token.text not in variables:
            raise TemplateError(f"undefined variable {token.text}")


def _check_format(token: Token | None) -> None:
    if token is None or token.kind not in ("string", "raw"):
        raise TemplateError("printf takes its format as a literal string right after it")
    value = _unquote(token)
    for match in _VERB.finditer(value):
        index, width, precision, index2, verb = match.groups()
        if verb is None:
            raise TemplateError(f"printf format {value!r} ends in %")
        if "*" in (width, precision) or index or index2:
            raise TemplateError(f"printf format {value!r}: write widths and precisions as numbers, without * or [n]")
        if max(int(width or 0), int(precision or 0)) > MAX_FORMAT_WIDTH:
            raise TemplateError(f"printf format {value!r}: widths and precisions above {MAX_FORMAT_WIDTH} are not allowed")


def _unquote(token: Token) -> str:
    if token.kind == "raw":
        return token.text[1:-1]
    return json.loads(re.sub(r"\\x([0-9a-fA-F]{2})|\\([0-7]{3})|\\U([0-9a-fA-F]{8})|\\([abfv])",
                             lambda m: f"\\u{_code(m):04x}", token.text))


def _code(match: re.Match[str]) -> int:
    hex2, octal, hex8, letter = match.groups()
    if letter:
        return {"a": 7, "b": 8, "f": 12, "v": 11}[letter]
    code = int(hex2, 16) if hex2 else int(octal, 8) if octal else int(hex8, 16)
    return code if code < 0x10000 else ord("?")  # only the verbs matter, not the text


def _actions(text: str) -> list[list[Token] | None]:
    """The tokens of every action in `text` (None for a comment), as Go's lexer splits them."""
    actions: list[list[Token] | None] = []
    pos = text.find("{{")
    while pos >= 0:
        pos += 2
        if text[pos:pos + 1] == "-" and text[pos + 1:pos + 2] in tuple(_SPACE):
            pos += 2
        if text.startswith("/*", pos):
            end = text.find("*/", pos + 2)
            if end < 0:
                raise TemplateError("unclosed comment")
            pos = _right_delimiter(text, end + 2)
            if pos is None:
                raise TemplateError("comment ends before the closing }}")
            actions.append(None)
        else:
            tokens, pos = _action(text, pos)
            actions.append(tokens)
        pos = text.find("{{", pos)
    return actions


def _right_delimiter(text: str, pos: int) -> int | None:
    """Where the text after a right delimiter (`}}` or ` -}}`) at `pos` starts, or None."""
    if text[pos:pos + 1] in tuple(_SPACE) and text.startswith("-}}", pos + 1):
        return pos + 4
    if text.startswith("}}", pos):
        return pos + 2
    return None


def _action(text: str, pos: int) -> tuple[list[Token], int]:
    tokens: list[Token] = []
    depth = 0
    while True:
        after = _right_delimiter(text, pos)
        if after is not None:
            if depth:
                raise TemplateError("unclosed left paren")
            return tokens, after
        if pos >= len(text):
            raise TemplateError("unclosed action: {{ without }}")
        char = text[pos]
        if char in _SPACE:
            pos += 1
            continue
        start = pos
        if char in "=|,()":
            kind, pos = char, pos + 1
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth < 0:
                raise TemplateError("unexpected right paren")
        elif char == ":":
            if not text.startswith(":=", pos):
                raise TemplateError("expected :=")
            kind, pos = ":=", pos + 2
        elif char == '"':
            pos = _quoted(text, pos)
            kind = "string"
        elif char == "`":
            end = text.find("`", pos + 1)
            if end < 0:
                raise TemplateError("unterminated raw string")
            kind, pos = "raw", end + 1
        elif char == "'":
            raise TemplateError("character constants are not supported; use a string")
        elif char == "$":
            kind, pos = "variable", _name_end(text, pos + 1)
        elif char == "." and not text[pos + 1:pos + 2].isdigit():
            pos = _name_end(text, pos + 1)
            kind = "field" if pos > start + 1 else "dot"
        elif char in "+-." or char.isdigit():
            match = _NUMBER.match(text, pos)
            if not match or not _at_terminator(text, match.end()):
                raise TemplateError(f"bad number in an action at {text[pos:pos + 12]!r}")
            kind, pos = "number", match.end()
        elif char.isascii() and (char.isalnum() or char == "_"):
            pos = _name_end(text, pos)
            word = text[start:pos]
            kind = "keyword" if word in KEYWORDS else "bool" if word in ("true", "false") else "ident"
        else:
            raise TemplateError(f"unrecognized character {char!r} in an action")
        tokens.append(Token(kind, text[start:pos]))


def _name_end(text: str, pos: int) -> int:
    end = _NAME.match(text, pos).end()
    if not _at_terminator(text, end):
        raise TemplateError(f"bad character {text[end]!r} in an action")
    return end


def _at_terminator(text: str, pos: int) -> bool:
    return pos >= len(text) or text[pos] in _TERMINATORS or text.startswith("}}", pos)


def _quoted(text: str, pos: int) -> int:
    """The end of the Go string literal starting at `pos`."""
    i = pos + 1
    while i < len(text):
        char = text[i]
        if char == '"':
            return i + 1
        if char == "\n":
            break
        if char == "\\":
            escape = _ESCAPE.match(text, i)
            if not escape:
                raise TemplateError(f"bad escape {text[i:i + 2]!r} in a string")
            i = escape.end()
            continue
        i += 1
    raise TemplateError("unterminated string")
