"""One PII corpus through both redaction paths: the in-process RedactingSpanProcessor and the
OTTL statements generated into the collector config (evaluated with RE2 in ottl_sim). Both must
meet the corpus expectations and agree byte for byte under every action."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import ottl_sim
from observatory.compile.stack import collector_values
from observatory.models.redaction import RedactionPolicy
from observatory.models.stack import ObservabilityStack
from observatory.redaction.processor import RedactingSpanProcessor

CORPUS = yaml.safe_load((Path(__file__).parent / "pii_corpus.yaml").read_text())
DETECTORS = ("email", "creditCard", "ssn", "phone", "ipAddress")
CUSTOM = [{"name": "employee-id", "regex": r"\bEMP-[0-9]{6}\b", "action": "hash"},
          {"name": "ticket", "regex": r"(?i)ticket #[0-9]+", "action": "mask"},
          {"name": "secret", "regex": r"sk-[A-Za-z0-9]{8,}", "action": "drop"}]
POLICIES = {
    "default": {},
    **{action: {"detectors": dict.fromkeys(DETECTORS, action)} for action in ("redact", "hash", "mask", "drop")},
    "custom": {"detectors": {"email": "mask", "creditCard": "hash", "ssn": "drop", "phone": "off", "ipAddress": "redact"},
               "patterns": CUSTOM, "attributes": {"deny": ["user.id"]}},
    "allow-list": {"patterns": CUSTOM, "attributes": {"allow": ["text", "count"]}},
}
EXTRA = ["EMP-123456 opened Ticket #4411 with key sk-abcdefgh1234", "EMP-1234567 is not an id", "ticket #12",
         "same card twice 4111111111111111 and 4111111111111111", "mask me 10.0.0.1 and a@b.io",
         "prompt line one\nmy ssn is 123-45-6789 EMP-654321\nthird line sk-zyxwvuts99"]


def attributes(text: str) -> dict[str, Any]:
    return {"text": text, "count": 7, "user.id": "u-42", "tags": ("a@b.io",), "flag": True}


def via_processor(policy: RedactionPolicy, attrs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(RedactingSpanProcessor(SimpleSpanProcessor(exporter), policy))
    with provider.get_tracer("corpus").start_as_current_span("llm") as span:
        # Attributes set after start and on events must be redacted too.
        span.set_attributes(attrs)
        span.add_event("gen_ai.content.prompt", attrs)
    (finished,) = exporter.get_finished_spans()
    return dict(finished.attributes), dict(finished.events[0].attributes)


def collector_statements(policy_spec: dict[str, Any]) -> dict[str, list[str]]:
    """The transform processor's statements per context, taken from the generated Helm values."""
    stack = ObservabilityStack.model_validate({
        "apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStack",
        "metadata": {"name": "s", "namespace": "n"}, "spec": {"collector": {"redaction": policy_spec}}})
    config = collector_values(stack)["config"]
    assert config["service"]["pipelines"]["traces"]["processors"][1] == "transform/redact"
    groups = config["processors"]["transform/redact"]["trace_statements"]
    return {g["context"]: g["statements"] for g in groups}


@pytest.mark.parametrize("name", POLICIES)
def test_processor_and_collector_agree(name: str) -> None:
    spec = POLICIES[name]
    policy = RedactionPolicy.model_validate(spec)
    statements = collector_statements(spec)
    assert set(statements) == {"span", "spanevent"}
    changed = 0
    for text in [entry["text"] for entry in CORPUS] + EXTRA:
        attrs = attributes(text)
        span_attrs, event_attrs = via_processor(policy, attrs)
        assert ottl_sim.run(statements["span"], attrs) == span_attrs, text
        assert ottl_sim.run(statements["spanevent"], attrs) == event_attrs, text
        changed += span_attrs.get("text") != text
    assert changed >= 20, "the policy redacted almost nothing; the corpus or the policy is broken"


@pytest.mark.parametrize("entry", CORPUS, ids=lambda e: e["text"][:40] or "empty")
def test_corpus_default_policy(entry: dict[str, Any]) -> None:
    statements = collector_statements({})["span"]
    processed, _ = via_processor(RedactionPolicy(), {"text": entry["text"]})
    collected = ottl_sim.run(statements, {"text": entry["text"]})
    for out in (processed["text"], collected["text"]):
        if "pii" in entry:
            assert f"[REDACTED:{entry['pii']}]" in out
        else:
            assert out == entry["text"]


def test_corpus_size_and_near_misses() -> None:
    assert len(CORPUS) >= 40
    assert sum("pii" not in e for e in CORPUS) >= 15
    assert {e["pii"] for e in CORPUS if "pii" in e} == {"email", "credit-card", "ssn", "phone", "ip-address"}


def test_action_semantics() -> None:
    text = "card 4111 1111 1111 1111, mail jo@x.io"
    def one(action: str) -> str:
        policy = RedactionPolicy.model_validate({"detectors": dict.fromkeys(DETECTORS, action)})
        return via_processor(policy, {"t": text})[0]["t"]
    assert one("redact") == "card [REDACTED:credit-card], mail [REDACTED:email]"
    assert one("mask") == "card ****1111, mail ****x.io"
    digest = hashlib.sha256(b"jo@x.io").hexdigest()
    assert one("hash").endswith(f"mail sha256:{digest}")
    assert one("drop") == "[DROPPED:email]"  # the first matching rule replaces the whole value
    off = RedactionPolicy.model_validate({"enabled": False})
    assert via_processor(off, {"t": text})[0]["t"] == text
    assert collector_statements({"enabled": False})["span"] == []


def test_attribute_filters() -> None:
    policy = RedactionPolicy.model_validate({"attributes": {"deny": ["user.id"]}})
    span_attrs, event_attrs = via_processor(policy, attributes("hi"))
    assert "user.id" not in span_attrs and "user.id" not in event_attrs and span_attrs["count"] == 7
    policy = RedactionPolicy.model_validate({"attributes": {"allow": ["text"]}})
    assert via_processor(policy, attributes("hi"))[0] == {"text": "hi"}


def test_simulator_rejects_what_it_cannot_evaluate() -> None:
    with pytest.raises(ValueError, match="unsupported function"):
        ottl_sim.run(['truncate_all(attributes, 10)'], {})
    with pytest.raises(ValueError, match="trailing clause"):
        ottl_sim.run(['delete_key(attributes, "a") where name == "x"'], {})
