"""PII redaction: built-in detectors (shared with the collector config) and an OTel SpanProcessor.

`observatory.redaction.processor` needs the `opentelemetry-sdk` (extra `app`); this package's
root and `rules` need only google-re2, so the compile core can import them.
"""
