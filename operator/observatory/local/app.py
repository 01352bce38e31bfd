"""A synthetic LLM app: OpenTelemetry GenAI spans over OTLP/HTTP and the GenAI metrics for Prometheus.

Each request is a server span with a `chat <model>` client span carrying the GenAI semantic
conventions' attributes (plus OpenInference's `input.value`/`output.value`, which Phoenix shows),
and observations of the histograms the collector path produces (names from `Conventions`). Latency
is simulated: spans get the sampled duration as timestamps instead of sleeping, so one thread
sustains the request rate. Prompts carry PII at `pii_rate`; the app-side RedactingSpanProcessor
(on by default) removes it before export.

Needs the `opentelemetry-sdk` and `opentelemetry-exporter-otlp-proto-http` packages.
"""

from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
from prometheus_client import (
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

from ..conventions import DEFAULT, Conventions
from ..models.redaction import RedactionPolicy
from ..redaction.processor import RedactingSpanProcessor

# The GenAI semantic conventions' advisory buckets for gen_ai.client.token.usage.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
ERROR_TYPES = ("timeout", "rate_limited", "server_error")
SERVICE_NAME = "synthetic-llm-app"
SPANS_PER_REQUEST = 2  # the server span and its model call (`_spans`)


@dataclass(frozen=True)
class Model:
    name: str
    provider: str
    input_tokens: int  # mean per request, cached ones included (GenAI conventions)
    output_tokens: int
    cache_read_share: float = 0.0  # of the input tokens, read from the prompt cache
    cache_creation_share: float = 0.0  # of the input tokens, written to it


DEFAULT_MODELS = (
    # A shared system prompt: OpenAI caches automatically, Anthropic where the app marks it.
    Model("gpt-4o", "openai", 1200, 300, cache_read_share=0.5),
    Model("gpt-4o-mini", "openai", 800, 200),
    Model("claude-sonnet-4", "anthropic", 1500, 400, cache_read_share=0.6, cache_creation_share=0.1),
)


@dataclass(frozen=True)
class Knobs:
    rps: float = 5.0
    error_rate: float = 0.01
    latency_seconds: float = 0.8  # median; log-normal with sigma `latency_sigma`
    latency_sigma: float = 0.4
    models: tuple[Model, ...] = DEFAULT_MODELS
    token_multiplier: Mapping[str, float] = field(default_factory=dict)  # model → factor (cost spikes)
    evaluations: Mapping[str, float] = field(default_factory=lambda: {"answer_relevance": 0.85, "hallucination": 0.05})
    pii_rate: float = 0.2


@dataclass
class Stats:
    requests: int = 0
    errors: int = 0
    pii_prompts: int = 0
    tokens: dict[str, int] = field(default_factory=dict)  # "model/<token type>" → tokens
    pii_values: list[str] = field(default_factory=list)  # the raw PII sent, to prove none was stored


_PII_KINDS = {
    "email": lambda n: f"jane.doe{n}@example.com",
    "phone": lambda n: f"415-555-{n % 10000:04d}",
    "credit_card": lambda n: f"4111 1111 {n // 10000 % 10000:04d} {n % 10000:04d}",
    "ssn": lambda n: f"{123 + n % 500:03d}-45-{1000 + n % 9000:04d}",
    "ip_address": lambda n: f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}",
}
_QUESTIONS = ("How do I reset my password?", "Summarise my last three invoices.", "Why was my card charged twice?",
              "Translate my last message to German.", "What is your refund policy?")
MAX_PII_SAMPLES = 5000


class SyntheticApp:
    def __init__(self, namespace: str, otlp_traces_url: str | None = None, project: str | None = None,
                 redaction: RedactionPolicy | None = None, redact: bool = True, knobs: Knobs | None = None,
                 conventions: Conventions = DEFAULT, seed: int = 0):
        self.namespace = namespace
        self.knobs = knobs = knobs or Knobs()
        self.stats = Stats()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._metrics_server = None
        self._target_file: Path | None = None
        c = conventions
        disable_created_metrics()  # the collector path exports no *_created series
        self.registry = CollectorRegistry()
        self.duration = Histogram(c.operation_duration_metric, "GenAI operation duration.",
                                  [c.model_label, c.error_type_label], registry=self.registry,
                                  buckets=c.operation_duration_buckets)
        # Labelled by provider as the collector's token sums are (compile/stack.py, _span_connectors).
        self.tokens = Histogram(c.token_usage_metric, "GenAI tokens used.", [c.model_label, c.token_type_label, c.provider_label],
                                registry=self.registry, buckets=TOKEN_BUCKETS)
        self.scores = Histogram(c.evaluation_score_metric, "GenAI evaluation scores in [0, 1].", [c.evaluation_name_label],
                                registry=self.registry, buckets=c.evaluation_score_buckets)
        self.conventions = c
        for model in knobs.models:  # series exist from the start, so the first errors count in rate()
            for error_type in ("", *ERROR_TYPES):
                self.duration.labels(model.name, error_type)
        self.provider = None
        if otlp_traces_url:
            resource = Resource.create({"service.name": SERVICE_NAME, "k8s.namespace.name": namespace,
                                        "openinference.project.name": project or namespace})
            self.provider = TracerProvider(resource=resource)
            exporter = BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_traces_url, timeout=10),
                                          max_queue_size=20000, schedule_delay_millis=500, max_export_batch_size=512)
            self.provider.add_span_processor(RedactingSpanProcessor(exporter, redaction) if redact else exporter)
            self.tracer = self.provider.get_tracer("observatory.local.app")

    # --- metrics endpoint ----------------------------------------------------------------

    def serve_metrics(self, targets_dir: Path | None = None) -> int:
        """Expose /metrics on a free port; announce it to the local Prometheus through `targets_dir`."""
        self._metrics_server, _ = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        port = self._metrics_server.server_port
        if targets_dir is not None:
            target = [{"targets": [f"127.0.0.1:{port}"],
                       "labels": {self.conventions.tenant_label: self.namespace, "service": SERVICE_NAME}}]
            self._target_file = targets_dir / f"{self.namespace}-{os.getpid()}-{port}.json"
            partial = self._target_file.with_suffix(".tmp")
            partial.write_text(json.dumps(target))
            partial.replace(self._target_file)  # Prometheus must never read half a file
        return port

    # --- requests ------------------------------------------------------------------------

    def _prompt(self, n: int) -> tuple[str, str | None]:
        question = self._random.choice(_QUESTIONS)
        if self._random.random() >= self.knobs.pii_rate:
            return question, None
        kind = self._random.choice(sorted(_PII_KINDS))
        value = _PII_KINDS[kind](n)
        return f"{question} For reference, my {kind.replace('_', ' ')} is {value}.", value

    def call(self) -> None:
        """One synthetic request: spans (if tracing) and metrics."""
        k = self.knobs
        r = self._random
        with self._lock:
            n = self.stats.requests
            self.stats.requests += 1
        model = k.models[n % len(k.models)] if len(k.models) > 1 else k.models[0]
        latency = k.latency_seconds * math.exp(r.gauss(0, k.latency_sigma))
        error_type = r.choice(ERROR_TYPES) if r.random() < k.error_rate else ""
        factor = k.token_multiplier.get(model.name, 1.0)
        input_tokens = max(1, round(model.input_tokens * factor * r.uniform(0.5, 1.5)))
        output_tokens = 0 if error_type else max(1, round(model.output_tokens * factor * r.uniform(0.5, 1.5)))
        c = self.conventions
        cached = {c.cache_read_tokens_attribute: round(input_tokens * model.cache_read_share),
                  c.cache_creation_tokens_attribute: round(input_tokens * model.cache_creation_share)}
        prompt, pii = self._prompt(n)
        scores = {name: min(1.0, max(0.0, r.gauss(mean, 0.08))) for name, mean in k.evaluations.items()}

        self.duration.labels(model.name, error_type).observe(latency)
        counts = {c.input_token_type: input_tokens, c.output_token_type: output_tokens,
                  c.cache_read_token_type: cached[c.cache_read_tokens_attribute],
                  c.cache_creation_token_type: cached[c.cache_creation_tokens_attribute]}
        counts = {token_type: count for token_type, count in counts.items() if count}
        if not error_type:
            for token_type, count in counts.items():
                self.tokens.labels(model.name, token_type, model.provider).observe(count)
            for name, score in scores.items():
                self.scores.labels(name).observe(score)
        with self._lock:
            self.stats.errors += bool(error_type)
            if pii:
                self.stats.pii_prompts += 1
                if len(self.stats.pii_values) < MAX_PII_SAMPLES:
                    self.stats.pii_values.append(pii)
            if not error_type:
                for token_type, count in counts.items():
                    key = f"{model.name}/{token_type}"
                    self.stats.tokens[key] = self.stats.tokens.get(key, 0) + count
        if self.provider:
            self._spans(model, prompt, latency, error_type, input_tokens, output_tokens, cached, scores, n)

    def _spans(self, model: Model, prompt: str, latency: float, error_type: str, input_tokens: int,
               output_tokens: int, cached: Mapping[str, int], scores: Mapping[str, float], n: int) -> None:
        end = time.time_ns()
        start = end - int(latency * 1e9) - 2_000_000
        root = self.tracer.start_span("POST /v1/answer", kind=SpanKind.SERVER, start_time=start, attributes={
            "http.request.method": "POST", "http.route": "/v1/answer", "enduser.id": f"user-{n % 97}",
            "openinference.span.kind": "CHAIN", "input.value": prompt})
        answer = "" if error_type else f"Here is what I found about: {prompt[:60]}"
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": model.provider,
            "gen_ai.request.model": model.name,
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": prompt}]}]),
            "openinference.span.kind": "LLM",
            "input.value": prompt,
            "gen_ai.usage.input_tokens": input_tokens,
            **{attribute: count for attribute, count in cached.items() if count},
        }
        if not error_type:
            attributes.update({
                "gen_ai.response.model": model.name,
                "gen_ai.usage.output_tokens": output_tokens,
                "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]),
                "output.value": answer,
            })
        child = self.tracer.start_span(f"chat {model.name}", context=set_span_in_context(root), kind=SpanKind.CLIENT,
                                       start_time=start + 1_000_000, attributes=attributes)
        if error_type:
            child.set_attribute("error.type", error_type)
            child.set_status(Status(StatusCode.ERROR, error_type))
            root.set_status(Status(StatusCode.ERROR, error_type))
        else:
            for name, score in scores.items():
                child.add_event("gen_ai.evaluation.result", {"gen_ai.evaluation.name": name,
                                                             "gen_ai.evaluation.score.value": round(score, 3)})
            root.set_attribute("output.value", answer)
        child.end(end_time=end - 1_000_000)
        root.end(end_time=end)

    def run(self, duration: float | None = None, stop: threading.Event | None = None) -> None:
        """Send requests at `knobs.rps` (re-read every request) until `duration` or `stop`."""
        stop = stop or threading.Event()
        started = next_at = time.monotonic()
        while not stop.is_set() and (duration is None or time.monotonic() - started < duration):
            self.call()
            now = time.monotonic()
            next_at = max(next_at + 1 / self.knobs.rps, now - 1)  # never burst more than a second's worth
            stop.wait(max(0.0, next_at - now))

    def flush(self) -> None:
        if self.provider:
            self.provider.force_flush()

    def close(self) -> None:
        if self._target_file:
            self._target_file.unlink(missing_ok=True)
            self._target_file = None
        if self.provider:
            self.provider.shutdown()
            self.provider = None
        if self._metrics_server:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None
