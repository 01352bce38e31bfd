"""`RedactingSpanProcessor`: redact PII in-process, before spans leave the application.

The SDK freezes a span's attributes when it ends (`Span.end` sets them immutable before
`on_end`), and `on_end` receives a fresh `ReadableSpan` built from that frozen mapping, so a
processor cannot edit the span in place. Instead this processor wraps the processor that
exports (e.g. `BatchSpanProcessor(exporter)`) and hands it a redacted copy: every path to
the exporter goes through the policy, including attributes set after `on_start` and event
attributes. Register only this wrapper on the provider, not the inner processor.
"""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor

from ..models.redaction import RedactionPolicy
from .rules import CompiledPolicy, Redactor, compile_policy


class RedactingSpanProcessor(SpanProcessor):
    def __init__(self, inner: SpanProcessor, policy: RedactionPolicy | CompiledPolicy | None = None):
        self._inner = inner
        compiled = policy if isinstance(policy, CompiledPolicy) else compile_policy(policy or RedactionPolicy())
        self._redactor = Redactor(compiled)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self._inner.on_end(self.redact(span))

    def redact(self, span: ReadableSpan) -> ReadableSpan:
        """A copy of `span` with span and event attributes filtered and redacted."""
        redact = self._redactor.attributes
        events = [Event(e.name, redact((e.attributes or {}).items()), e.timestamp) for e in span.events]
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=redact((span.attributes or {}).items()),
            events=events,
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)
