"""The one definition of the PII detectors and of what each action does to a string.

The collector config (compile/stack) turns these rules into OTTL statements; the in-process
SpanProcessor applies them with `apply_rules`. Both use RE2 semantics, so they agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable

import re2

from ..models.redaction import RedactionPolicy

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_HEX4 = r"[0-9A-Fa-f]{1,4}"

# Order matters: card numbers and SSNs run before phone numbers so their digit groups are
# consumed by the more specific detector.
BUILTIN_DETECTORS: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
    # Visa / Mastercard (51-55, 2221-2720) / Discover in 4-4-4-4 groups, Amex in 4-6-5. No Luhn check.
    "credit_card": (r"\b(?:4[0-9]{3}|5[1-5][0-9]{2}|222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|27[01][0-9]|2720|6011|65[0-9]{2})"
                    r"(?:[ \-]?[0-9]{4}){3}\b|\b3[47][0-9]{2}[ \-]?[0-9]{6}[ \-]?[0-9]{5}\b"),
    "ssn": (r"\b(?:00[1-9]|0[1-9][0-9]|[1-578][0-9]{2}|6[0-57-9][0-9]|66[0-57-9])-(?:0[1-9]|[1-9][0-9])"
            r"-(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})\b"),
    "phone": (r"(?:\+[0-9]{1,3}[ .\-]?)?(?:\([0-9]{3}\)|\b[0-9]{3})[ .\-]?[0-9]{3}[ .\-][0-9]{4}\b"
              r"|\+[1-9][0-9]{7,14}\b"),
    "ip_address": rf"\b(?:{_OCTET}\.){{3}}{_OCTET}\b|\b(?:{_HEX4}:){{7}}{_HEX4}\b",
}

# Markers of what replaced a match; brackets and letters only, so no detector matches them again.
MASK = "****"
MASK_KEEP = 4
HASH_PREFIX = "sha256:"


def marker_name(detector: str) -> str:
    return detector.replace("_", "-")


def redact_marker(name: str) -> str:
    return f"[REDACTED:{name}]"


def drop_marker(name: str) -> str:
    return f"[DROPPED:{name}]"


@dataclass(frozen=True)
class Rule:
    """One detector with its action, in application order."""

    name: str
    regex: str
    action: str  # redact | hash | mask | drop


@dataclass(frozen=True)
class CompiledPolicy:
    allow: tuple[str, ...]
    deny: tuple[str, ...]
    rules: tuple[Rule, ...]


def compile_policy(policy: RedactionPolicy) -> CompiledPolicy:
    """The policy as an ordered rule list: attribute filter first, built-ins, then custom patterns."""
    if not policy.enabled:
        return CompiledPolicy((), (), ())
    rules = [Rule(marker_name(name), regex, getattr(policy.detectors, name))
             for name, regex in BUILTIN_DETECTORS.items() if getattr(policy.detectors, name) != "off"]
    rules += [Rule(p.name, p.regex, p.action) for p in policy.patterns]
    return CompiledPolicy(tuple(policy.attributes.allow), tuple(policy.attributes.deny), tuple(rules))


def _masked(match: str) -> str:
    return MASK + match[-MASK_KEEP:] if len(match) > MASK_KEEP else MASK


def apply_rule(rule: Rule, value: str, regex=None) -> str:
    regex = regex or re2.compile(rule.regex)
    if rule.action == "drop":
        return drop_marker(rule.name) if regex.search(value) else value
    if rule.action == "redact":
        return regex.sub(lambda m: redact_marker(rule.name), value)
    if rule.action == "hash":
        return regex.sub(lambda m: HASH_PREFIX + hashlib.sha256(m.group(0).encode()).hexdigest(), value)
    return regex.sub(lambda m: _masked(m.group(0)), value)


class Redactor:
    """Applies a compiled policy to attribute mappings; regexes compiled once."""

    def __init__(self, policy: CompiledPolicy):
        self.policy = policy
        self._compiled = [(rule, re2.compile(rule.regex)) for rule in policy.rules]

    def value(self, value: str) -> str:
        for rule, regex in self._compiled:
            value = apply_rule(rule, value, regex)
        return value

    def attributes(self, attributes: Iterable[tuple[str, object]]) -> dict[str, object]:
        """Filtered and redacted copy; only string values are rewritten, as in OTTL."""
        out = {}
        for key, value in attributes:
            if key in self.policy.deny or (self.policy.allow and key not in self.policy.allow):
                continue
            out[key] = self.value(value) if isinstance(value, str) else value
        return out
