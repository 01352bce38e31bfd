"""A minimal evaluator for the OTTL statements Observatory generates, with Go semantics.

It reproduces what the collector does with the transform processor's config: confmap turns
`$$` into `$`, OTTL unquotes string literals, Go's regexp (RE2, here google-re2) matches, and
`replace_all_patterns` with a hash function follows ottlfuncs.applyOptReplaceFunction (hash each
match's expanded replacement, then strings.ReplaceAll of the match text). Only the functions
the generator emits are supported; anything else fails loudly.
"""

from __future__ import annotations

import hashlib
from typing import Any

import re2


def _parse_args(text: str, i: int) -> tuple[list[Any], int]:
    """Arguments from just after '(' (or '[') up to the matching ')' (or ']')."""
    args: list[Any] = []
    closing = ")" if text[i - 1] == "(" else "]"
    while True:
        while text[i] == " ":
            i += 1
        if text[i] == closing:
            return args, i + 1
        if text[i] == '"':
            i += 1
            chars = []
            while text[i] != '"':
                if text[i] == "\\":
                    i += 1
                chars.append(text[i])
                i += 1
            args.append("".join(chars))
            i += 1
        elif text[i] == "[":
            items, i = _parse_args(text, i + 1)
            args.append(items)
        else:
            start = i
            while text[i] not in ",)]":
                i += 1
            args.append(("ident", text[start:i].strip()))
        while text[i] == " ":
            i += 1
        if text[i] == ",":
            i += 1


def parse(statement: str) -> tuple[str, list[Any]]:
    statement = statement.replace("$$", "$")  # confmap escape
    name, _, rest = statement.partition("(")
    args, end = _parse_args(statement, len(name) + 1)
    if statement[end:].strip():
        raise ValueError(f"unsupported trailing clause in {statement!r}")
    return name.strip(), args


def _expand(template: str, match) -> str:
    out, i = [], 0
    while i < len(template):
        if template.startswith("${", i):
            end = template.index("}", i)
            out.append(match.group(int(template[i + 2:end])) or "")
            i = end + 1
        else:
            out.append(template[i])
            i += 1
    return "".join(out)


def _replace(value: str, regex, replacement: str, fn: str | None, fmt: str | None) -> str:
    if not regex.search(value):
        return value
    if fn is None:  # regexp.ReplaceAllString
        return regex.sub(lambda m: _expand(replacement, m), value)
    if fn != "SHA256":
        raise ValueError(f"unsupported function {fn}")
    updated = value
    for match in regex.finditer(value):
        hashed = hashlib.sha256(_expand(replacement, match).encode()).hexdigest()
        updated = updated.replace(match.group(0), fmt % hashed if fmt else hashed)
    return updated


def run(statements: list[str], attributes: dict[str, Any]) -> dict[str, Any]:
    attrs = dict(attributes)
    for statement in statements:
        name, args = parse(statement)
        if args[0] != ("ident", "attributes"):
            raise ValueError(f"unsupported target in {statement!r}")
        if name == "keep_keys":
            attrs = {k: v for k, v in attrs.items() if k in args[1]}
        elif name == "delete_key":
            attrs.pop(args[1], None)
        elif name == "replace_all_patterns":
            assert args[1] == "value", statement
            regex = re2.compile(args[2])
            fn = args[4][1] if len(args) > 4 else None
            fmt = args[5] if len(args) > 5 else None
            attrs = {k: _replace(v, regex, args[3], fn, fmt) if isinstance(v, str) else v for k, v in attrs.items()}
        else:
            raise ValueError(f"unsupported function {name}")
    return attrs
