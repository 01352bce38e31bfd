"""The redaction policy as OTTL statements for the collector's transform processor.

Semantics are those of `observatory.redaction.rules.apply_rule`, which the in-process
SpanProcessor uses; tests/stack evaluates these statements with RE2 and compares.
"""

from __future__ import annotations

from typing import Any

from ..redaction.rules import HASH_PREFIX, MASK, MASK_KEEP, CompiledPolicy, Rule, drop_marker, redact_marker

# Private-use code points bracket a match between the steps of `mask`: OTTL cannot compute
# "all but the last 4 characters" of an arbitrary match in one replacement.
MASK_OPEN, MASK_CLOSE = "\ue000", "\ue001"
_NOT_MARK = f"[^{MASK_OPEN}{MASK_CLOSE}]"


def ottl_string(text: str) -> str:
    """An OTTL string literal, with `$` doubled so the collector's ${env:...} expansion leaves it."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("$", "$$") + '"'


def _replace(regex: str, replacement: str, *extra: str) -> str:
    args = ["attributes", '"value"', ottl_string(regex), ottl_string(replacement), *extra]
    return f"replace_all_patterns({', '.join(args)})"


def rule_statements(rule: Rule) -> list[str]:
    if rule.action == "redact":
        return [_replace(rule.regex, redact_marker(rule.name))]
    if rule.action == "hash":
        return [_replace(rule.regex, "${0}", "SHA256", ottl_string(HASH_PREFIX + "%s"))]
    if rule.action == "drop":
        return [_replace(f"(?s)^.*(?:{rule.regex}).*$", drop_marker(rule.name))]
    return [  # mask
        _replace(rule.regex, MASK_OPEN + "${0}" + MASK_CLOSE),
        _replace(f"{MASK_OPEN}{_NOT_MARK}+?({_NOT_MARK}{{{MASK_KEEP}}}){MASK_CLOSE}", MASK + "${1}"),
        _replace(f"{MASK_OPEN}{_NOT_MARK}*{MASK_CLOSE}", MASK),
    ]


def ottl_statements(policy: CompiledPolicy) -> list[str]:
    """Statements for one attribute map (`attributes` of a span or of a span event), in order."""
    statements = []
    if policy.allow:
        statements.append(f"keep_keys(attributes, [{', '.join(ottl_string(k) for k in policy.allow)}])")
    statements += [f"delete_key(attributes, {ottl_string(k)})" for k in policy.deny]
    for rule in policy.rules:
        statements += rule_statements(rule)
    return statements


def transform_processor(policy: CompiledPolicy) -> dict[str, Any]:
    """`transform` processor config redacting span and span event attributes."""
    statements = ottl_statements(policy)
    return {
        # Fail closed: data a statement cannot process is rejected, never exported unredacted.
        "error_mode": "propagate",
        "trace_statements": [
            {"context": "span", "statements": statements},
            {"context": "spanevent", "statements": list(statements)},
        ],
    }
