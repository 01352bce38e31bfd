"""PII redaction policy, shared by the collector config and the in-process SpanProcessor."""

from __future__ import annotations

from typing import Annotated, Literal

import re2  # google-re2: RE2 semantics, like the collector's Go regexp
from pydantic import Field, field_validator

from .common import CRModel

Action = Literal["redact", "hash", "mask", "drop"]
DetectorAction = Literal["redact", "hash", "mask", "drop", "off"]
_EMPTY_MATCH_PROBES = ("", "a", "a b", "0 1", "-", "\n")
AttributeKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-/:@]+$", max_length=256)]


class BuiltinDetectors(CRModel):
    """What to do with each built-in PII detector's matches; `off` disables a detector."""

    email: DetectorAction = Field(default="redact", description="E-mail addresses.")
    credit_card: DetectorAction = Field(default="redact", description="Payment card numbers (Visa, Mastercard, Amex, Discover prefixes; no Luhn check, RE2 cannot express it).")
    ssn: DetectorAction = Field(default="redact", description="US social security numbers (invalid areas 000, 666, 9xx excluded).")
    phone: DetectorAction = Field(default="redact", description="Phone numbers: North American formats with separators and compact E.164 (+ and 8-15 digits).")
    ip_address: DetectorAction = Field(default="redact", description="IPv4 addresses and uncompressed IPv6 addresses.")


class CustomPattern(CRModel):
    """An extra pattern, applied after the built-in detectors in list order."""

    name: str = Field(description="Name shown in the replacement marker, e.g. [REDACTED:employee-id].",
                      pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    regex: str = Field(description="RE2 regular expression (Go regexp syntax: no lookaround, no backreferences).",
                       min_length=1, max_length=2048)
    action: Action = Field(default="redact", description="redact: replace the match with [REDACTED:<name>]; hash: replace it with sha256:<hex of the match>; mask: keep the last 4 characters (matches of 4 or fewer characters are fully masked); drop: replace the whole attribute value with [DROPPED:<name>].")

    @field_validator("regex")
    @classmethod
    def _re2(cls, value: str) -> str:
        if "{{" in value or "}}" in value:
            # The collector chart renders its config through Helm's tpl, where {{ starts a template.
            raise ValueError("must not contain '{{' or '}}'")
        try:
            compiled = re2.compile(value)
        except re2.error as err:
            raise ValueError(f"not a valid RE2 expression: {err}") from None
        # Empty matches are replaced differently by Go and Python RE2 wrappers, and redact nothing.
        if any(m.group(0) == "" for sample in _EMPTY_MATCH_PROBES for m in compiled.finditer(sample)):
            raise ValueError("must not match the empty string")
        return value


class AttributeFilter(CRModel):
    """Attribute keys removed before any pattern runs."""

    allow: list[AttributeKey] = Field(default_factory=list, description="If set, only these span and event attribute keys are kept; every other key is deleted.")
    deny: list[AttributeKey] = Field(default_factory=list, description="Span and event attribute keys that are always deleted.")


class RedactionPolicy(CRModel):
    """PII redaction applied to string span attributes and span event attributes before export."""

    enabled: bool = Field(default=True, description="Turn redaction off entirely (not recommended).")
    detectors: BuiltinDetectors = Field(default_factory=BuiltinDetectors, description="Built-in detectors and their actions.")
    patterns: list[CustomPattern] = Field(default_factory=list, description="Custom RE2 patterns, applied after the built-in detectors in list order.")
    attributes: AttributeFilter = Field(default_factory=AttributeFilter, description="Attribute keys to keep or delete, applied first.")

    @field_validator("patterns")
    @classmethod
    def _unique_names(cls, patterns: list[CustomPattern]) -> list[CustomPattern]:
        names = [p.name for p in patterns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate pattern name(s): {', '.join(duplicates)}")
        return patterns
