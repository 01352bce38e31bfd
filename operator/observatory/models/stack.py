"""ObservabilityStack: one CR gives a tenant Phoenix, Langfuse and an OpenTelemetry Collector."""

from __future__ import annotations

import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from .common import (
    K8S_NAME_PATTERN,
    AlertLabelName,
    Condition,
    CRModel,
    CustomResource,
    ObjectMeta,
    SecretKeyRef,
)
from .redaction import RedactionPolicy

MAX_SPEND_LABELS = 5
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$"
URL_PATTERN = r"^https?://[^\s/]+(/\S*)?$"
HOST_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$"
# The longest name whose derived names all fit: the Langfuse chart's StatefulSet
# <name>-langfuse-postgresql must stay within 52 characters, because the StatefulSet controller
# labels its pods controller-revision-hash=<statefulset>-<10-character hash> and label values end
# at 63 (https://github.com/kubernetes/kubernetes/issues/64023). Looser limits follow: Helm's 53 for
# the release <name>-collector, 63 for the bucket Job <name>-langfuse-bucket-hook and Services.
# tests/stack_operator/test_stack_names.py renders the real charts at this length.
MAX_NAME_LENGTH = 32
VALUES_DESCRIPTION = ("Helm values at the paths the stack's ObservabilityStackClass allows (spec.<component>.allowedValues; "
                      "none without a class), validated against the chart's values schema; the operator's computed values win.")
# Charts' values nest a dozen levels at most; every walk over tenant values (deny list, ceilings,
# schema) recurses, so deeper trees are refused here, measured without recursion.
MAX_VALUES_DEPTH = 32


def _values_depth_bounded(values: dict[str, Any]) -> dict[str, Any]:
    pending = [(values, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_VALUES_DEPTH:
            raise ValueError(f"values are nested deeper than {MAX_VALUES_DEPTH} levels; no chart needs that, flatten them")
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return values


HelmValues = Annotated[dict[str, Any], AfterValidator(_values_depth_bounded)]
# Fields that left the tenant's spec, and what to do instead (models.parse_resource words the error).
REMOVED_FIELDS = {
    ("spec", component, "chart"): "chart sources are chosen by the platform's ObservabilityStackClass now (spec.className "
                                  "names it); remove this field and ask the platform admin for a class with the chart you need"
    for component in ("phoenix", "langfuse", "collector")
}


class ResourceList(CRModel):
    """CPU and memory quantities."""

    cpu: str | None = Field(default=None, pattern=QUANTITY_PATTERN, description="CPU, e.g. 500m or 2.")
    memory: str | None = Field(default=None, pattern=QUANTITY_PATTERN, description="Memory, e.g. 512Mi.")


class Resources(CRModel):
    """Container resource requests and limits."""

    requests: ResourceList | None = Field(default=None, description="Guaranteed resources.")
    limits: ResourceList | None = Field(default=None, description="Maximum resources.")


class SqliteStorage(CRModel):
    """SQLite on a PersistentVolumeClaim."""

    size: str = Field(default="20Gi", pattern=QUANTITY_PATTERN, description="PVC size.")
    storage_class: str | None = Field(default=None, max_length=253, description="StorageClass; default: the cluster default.")


class ExternalPostgres(CRModel):
    """An existing PostgreSQL server; the password comes from a Secret."""

    host: str = Field(pattern=HOST_PATTERN, max_length=253, description="Hostname of the server.")
    port: int = Field(default=5432, ge=1, le=65535, description="Port.")
    database: str = Field(min_length=1, max_length=63, description="Database name.")
    user: str = Field(min_length=1, max_length=63, description="User name.")
    password_secret: SecretKeyRef = Field(description="Secret key holding the user's password.")


class PhoenixStorage(CRModel):
    """Exactly one of sqlite or postgres; default SQLite on a 20Gi PVC."""

    sqlite: SqliteStorage | None = Field(default=None, description="SQLite on a PVC.")
    postgres: ExternalPostgres | None = Field(default=None, description="External PostgreSQL.")

    @model_validator(mode="after")
    def _one(self) -> PhoenixStorage:
        if self.sqlite and self.postgres:
            raise ValueError("set either sqlite or postgres, not both")
        return self


class PhoenixSpec(CRModel):
    """Arize Phoenix: trace UI, evaluations, datasets."""

    enabled: bool = Field(default=True, description="Deploy Phoenix and export traces to it.")
    storage: PhoenixStorage = Field(default_factory=PhoenixStorage, description="Where Phoenix keeps its data.")
    retention_days: int = Field(default=30, ge=0, le=3650, description="Traces older than this are deleted; 0 keeps them forever.")
    resources: Resources | None = Field(default=None, description="Phoenix container resources; default: the chart's.")
    auth: bool = Field(default=True, description="Require login and API keys; secrets are generated once by the operator.")
    project_name: str | None = Field(default=None, min_length=1, max_length=128,
                                     description="Phoenix project the collector files spans under when the app sets none; default: the stack name.")
    values: HelmValues = Field(default_factory=dict, description=VALUES_DESCRIPTION)


class SecretPasswordRef(CRModel):
    """A Secret and the key inside it that holds a password."""

    name: str = Field(pattern=K8S_NAME_PATTERN, max_length=253, description="Secret name, in the stack's namespace.")
    key: str = Field(default="password", pattern=r"^[-._a-zA-Z0-9]+$", max_length=253, description="Key holding the password.")


class LangfusePostgres(CRModel):
    """External PostgreSQL for Langfuse (postgresql.deploy false)."""

    host: str = Field(pattern=HOST_PATTERN, max_length=253, description="Hostname.")
    port: int = Field(default=5432, ge=1, le=65535, description="Port.")
    database: str = Field(default="langfuse", min_length=1, max_length=63, description="Database name.")
    user: str = Field(default="langfuse", min_length=1, max_length=63, description="User name.")
    password_secret: SecretPasswordRef = Field(description="Secret holding the password.")


class LangfuseRedis(CRModel):
    """External Redis or Valkey for Langfuse (redis.deploy false)."""

    host: str = Field(pattern=HOST_PATTERN, max_length=253, description="Hostname.")
    port: int = Field(default=6379, ge=1, le=65535, description="Port.")
    user: str | None = Field(default="default", max_length=63, description="ACL user name; null to omit.")
    tls: bool = Field(default=False, description="Connect with TLS.")
    password_secret: SecretPasswordRef = Field(description="Secret holding the password.")


class LangfuseClickHouse(CRModel):
    """External ClickHouse for Langfuse (clickhouse.deploy false): no ClickHouse operator needed."""

    host: str = Field(pattern=HOST_PATTERN, max_length=253, description="Hostname.")
    http_port: int = Field(default=8123, ge=1, le=65535, description="HTTP port.")
    native_port: int = Field(default=9000, ge=1, le=65535, description="Native TCP port, used for migrations.")
    database: str = Field(default="default", min_length=1, max_length=63, description="Database name.")
    user: str = Field(default="default", min_length=1, max_length=63, description="User name.")
    clustered: bool = Field(default=False, description="The server is a ClickHouse cluster (ON CLUSTER DDL).")
    tls: bool = Field(default=False, description="Use TLS for migrations.")
    password_secret: SecretPasswordRef = Field(description="Secret holding the password.")


class LangfuseS3(CRModel):
    """External S3-compatible object storage for Langfuse (s3.deploy false)."""

    bucket: str = Field(min_length=3, max_length=63, description="Bucket name.")
    region: str = Field(default="auto", min_length=1, max_length=64, description="Region.")
    endpoint: str | None = Field(default=None, pattern=URL_PATTERN, description="Endpoint URL; default: AWS.")
    force_path_style: bool = Field(default=False, description="Path-style requests (MinIO, SeaweedFS).")
    access_key_id: SecretKeyRef = Field(description="Secret key holding the access key ID.")
    secret_access_key: SecretKeyRef = Field(description="Secret key holding the secret access key.")


class LangfuseDedicated(CRModel):
    """A Langfuse installed for this stack (with the bundled stores ≈4.6 vCPU, 8.5 GiB and 238 Gi of volumes requested; see docs/install.md)."""

    url: str | None = Field(default=None, pattern=URL_PATTERN,
                            description="Public URL of the Langfuse UI (NEXTAUTH_URL); default: the in-cluster service URL.")
    organization: str | None = Field(default=None, min_length=1, max_length=128, description="Name of the organisation created at first start; default: the namespace.")
    project: str | None = Field(default=None, min_length=1, max_length=128, description="Name of the project created at first start; default: the stack name.")
    postgres: LangfusePostgres | None = Field(default=None, description="External PostgreSQL; default: the chart's bundled one.")
    redis: LangfuseRedis | None = Field(default=None, description="External Redis; default: the chart's bundled Valkey.")
    clickhouse: LangfuseClickHouse | None = Field(default=None, description="External ClickHouse; default: the chart's, which needs the ClickHouse operator's CRDs.")
    s3: LangfuseS3 | None = Field(default=None, description="External object storage; default: the chart's bundled SeaweedFS.")
    resources: Resources | None = Field(default=None, description="Resources of the Langfuse web and worker containers.")
    retention_days: int = Field(
        default=30, ge=0, le=3650,
        description="Days Langfuse keeps traces, observations, scores and media of the stack's project (at least 3; 0 "
                    "keeps them for ever). Set at the project's creation; self-hosted Langfuse applies it only with an "
                    "Enterprise licence (LANGFUSE_EE_LICENSE_KEY), otherwise it keeps event data for ever.")

    @field_validator("retention_days")
    @classmethod
    def _langfuse_minimum(cls, days: int) -> int:
        if 0 < days < 3:
            raise ValueError(f"Langfuse keeps data at least 3 days, got {days}; write 3 or more, or 0 to keep it for ever")
        return days


class LangfuseKeySecret(CRModel):
    """Secret with a Langfuse project's API key pair."""

    name: str = Field(pattern=K8S_NAME_PATTERN, max_length=253, description="Secret name, in the stack's namespace.")
    public_key_key: str = Field(default="publicKey", pattern=r"^[-._a-zA-Z0-9]+$", description="Key holding the public key (pk-lf-...).")
    secret_key_key: str = Field(default="secretKey", pattern=r"^[-._a-zA-Z0-9]+$", description="Key holding the secret key (sk-lf-...).")


class LangfuseExternal(CRModel):
    """An existing, shared Langfuse."""

    url: str = Field(pattern=URL_PATTERN, description="Base URL, e.g. https://langfuse.example.com.")
    key_secret: LangfuseKeySecret = Field(description="The project's API keys.")


class LangfuseSpec(CRModel):
    """Langfuse: LLM tracing, prompt management, evaluations."""

    enabled: bool = Field(default=True, description="Export traces to Langfuse.")
    mode: Literal["dedicated", "external"] = Field(default="dedicated", description="dedicated installs the chart for this stack; external sends to an existing Langfuse.")
    dedicated: LangfuseDedicated = Field(default_factory=LangfuseDedicated, description="Settings of a dedicated Langfuse.")
    external: LangfuseExternal | None = Field(default=None, description="The existing Langfuse (external mode).")
    values: HelmValues = Field(default_factory=dict, description=VALUES_DESCRIPTION)

    @model_validator(mode="after")
    def _mode(self) -> LangfuseSpec:
        if self.mode == "external" and self.enabled and self.external is None:
            raise ValueError("mode external needs external.url and external.keySecret")
        if self.mode == "dedicated" and self.external is not None:
            raise ValueError("external is only valid with mode external")
        return self


class CollectorSpec(CRModel):
    """The OpenTelemetry Collector (contrib image) apps send OTLP to."""

    replicas: int = Field(default=1, ge=1, le=50, description="Collector replicas.")
    resources: Resources | None = Field(default=None, description="Collector container resources; default 200m/512Mi request, 1Gi limit.")
    redaction: RedactionPolicy = Field(default_factory=RedactionPolicy, description="PII redaction applied before any exporter.")
    values: HelmValues = Field(default_factory=dict, description=VALUES_DESCRIPTION)


class MetricsSpec(CRModel):
    """LLM metrics derived from spans, scraped by prometheus-operator."""

    span_metrics: bool = Field(default=True, description="Derive token usage, latency and call metrics from GenAI spans. Turn off if the apps export GenAI metrics themselves, to avoid counting twice.")
    service_monitor: bool = Field(default=True, description="Create a ServiceMonitor for the collector's Prometheus endpoint.")
    service_monitor_labels: dict[str, str] | None = Field(default=None, description="Labels the Prometheus serviceMonitorSelector needs; default: the operator's rule selector labels.")
    scrape_interval: str = Field(default="30s", pattern=r"^[0-9]+(s|m)$", description="Scrape interval.")


def _iso_date(value: Any) -> Any:
    """A YYYY-MM-DD string (the API server's `format: date`) or a YAML date, as a date."""
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-01-31") from None
    return value


class ModelPrice(CRModel):
    """Price of one model as the vendor bills it, from a date on. Cached input tokens are part of the
    input tokens (OpenTelemetry GenAI conventions): they are priced at their own rate instead of the
    input price, never twice."""

    model: str = Field(min_length=1, max_length=256, description="Model name as in gen_ai.request.model.")
    provider: str | None = Field(
        default=None, min_length=1, max_length=128,
        description="Provider as in gen_ai.provider.name (e.g. azure.ai.openai): this price applies to that provider's "
                    "usage of the model, where it wins over an entry without a provider. Default: every provider "
                    "without an entry of its own.")
    input_usd_per_million_tokens: float = Field(alias="inputUSDPerMillionTokens", ge=0, le=1e6, description="USD per million input tokens.")
    output_usd_per_million_tokens: float = Field(alias="outputUSDPerMillionTokens", ge=0, le=1e6, description="USD per million output tokens.")
    cache_read_usd_per_million_tokens: float | None = Field(
        default=None, alias="cacheReadUSDPerMillionTokens", ge=0, le=1e6,
        description="USD per million input tokens read from the prompt cache (gen_ai.usage.cache_read.input_tokens); default: the input price.")
    cache_creation_usd_per_million_tokens: float | None = Field(
        default=None, alias="cacheCreationUSDPerMillionTokens", ge=0, le=1e6,
        description="USD per million input tokens written to the prompt cache (gen_ai.usage.cache_creation.input_tokens); default: the input price.")
    effective_from: Annotated[datetime.date, BeforeValidator(_iso_date)] | None = Field(
        default=None, alias="effectiveFrom",
        description="First day (UTC, YYYY-MM-DD) this price applies; usage before it keeps the previous entry's price, so a price change never rewrites recorded spend. Default: from the beginning.")


class DefaultRules(CRModel):
    """The rule pack every stack gets unless it opts out."""

    enabled: bool = Field(default=True, description="Generate price recording rules and the default alerts.")
    daily_budget_usd: float | None = Field(default=None, alias="dailyBudgetUSD", gt=0, description="Alert when the day's spend exceeds this.")
    error_rate_threshold: float = Field(default=0.05, gt=0, le=1, description="Alert when the LLM error ratio over 5m exceeds this.")
    p95_latency_seconds: float = Field(default=10.0, gt=0, description="Alert when p95 LLM latency over 10m exceeds this.")
    # Each label multiplies the recorded spend series by its values: a few, bounded.
    spend_labels: list[AlertLabelName] = Field(
        default_factory=list, alias="spendLabels", max_length=MAX_SPEND_LABELS,
        description="Labels of the token series to record spend by, besides namespace, model and token type, e.g. "
                    "[team, gen_ai_provider_name]: USD over the last hour and day (observatory:gen_ai_spend_usd:1h, "
                    ":1d) per value of each.")

    @field_validator("spend_labels")
    @classmethod
    def _distinct(cls, labels: list[str]) -> list[str]:
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once; list each label once")
        return labels


class InstrumentationSpec(CRModel):
    """Auto-instrumentation of the namespace's Python apps by the OpenTelemetry Operator."""

    enabled: bool = Field(default=True, description=(
        "Where the OpenTelemetry Operator's Instrumentation CRD (opentelemetry.io/v1alpha1) is installed, create the "
        "Instrumentation <stack>-python exporting to this stack's collector with the GenAI semantic conventions; pods "
        "annotated instrumentation.opentelemetry.io/inject-python: <stack>-python get it. Off: none is created, and one "
        "created before is deleted."))


class ObservabilityStackSpec(CRModel):
    """Desired state of a tenant's LLM observability stack."""

    class_name: str | None = Field(default=None, pattern=K8S_NAME_PATTERN, max_length=253,
                                   description="ObservabilityStackClass whose charts, values and ceilings apply; default: the class annotated observatory.dev/is-default-class, else the operator's charts with no values allowed.")
    phoenix: PhoenixSpec = Field(default_factory=PhoenixSpec, description="Arize Phoenix.")
    langfuse: LangfuseSpec = Field(default_factory=LangfuseSpec, description="Langfuse.")
    collector: CollectorSpec = Field(default_factory=CollectorSpec, description="OpenTelemetry Collector.")
    metrics: MetricsSpec = Field(default_factory=MetricsSpec, description="Span-derived metrics and scraping.")
    pricing: list[ModelPrice] = Field(default_factory=list, description="Price catalogue; a model listed here replaces all of the operator's default entries for it (for that provider, where the entry names one), models not listed use the operator's defaults.")
    default_rules: DefaultRules = Field(default_factory=DefaultRules, description="Default rule pack (opt-out).")
    instrumentation: InstrumentationSpec = Field(default_factory=InstrumentationSpec, description="Auto-instrumentation of Python apps (opt-out).")
    deletion_policy: Literal["Retain", "Delete"] = Field(default="Retain", description="Retain keeps PVCs and generated Secrets when the stack is deleted; Delete removes them.")

    @model_validator(mode="after")
    def _unique_models(self) -> ObservabilityStackSpec:
        entries = [(p.model, p.provider, p.effective_from) for p in self.pricing]
        duplicates = sorted({f"{m}{f' of {p}' if p else ''} from {d or 'the beginning'}"
                             for m, p, d in entries if entries.count((m, p, d)) > 1})
        if duplicates:
            raise ValueError(f"pricing: more than one price for {', '.join(duplicates)}; give each entry of a model "
                             "(and provider) its own effectiveFrom")
        return self


class ComponentStatus(CRModel):
    """State of one component's Helm release."""

    release: str | None = Field(default=None, description="Helm release name.")
    chart: str | None = Field(default=None, description="Installed chart reference and version.")
    revision: int | None = Field(default=None, description="Helm release revision.")
    ready: bool = Field(default=False, description="The release is deployed and its workloads are ready.")
    message: str = Field(default="", description="Last error or progress message (secrets scrubbed).")


class ComponentsStatus(CRModel):
    """Per-component state."""

    phoenix: ComponentStatus | None = Field(default=None, description="Phoenix.")
    langfuse: ComponentStatus | None = Field(default=None, description="Langfuse (dedicated mode).")
    collector: ComponentStatus | None = Field(default=None, description="OpenTelemetry Collector.")


class Endpoints(CRModel):
    """Where apps and people reach the stack."""

    otlp_grpc: str | None = Field(default=None, description="OTLP/gRPC endpoint for applications.")
    otlp_http: str | None = Field(default=None, description="OTLP/HTTP endpoint for applications.")
    phoenix_ui: str | None = Field(default=None, alias="phoenixUI", description="Phoenix UI URL.")
    langfuse_ui: str | None = Field(default=None, alias="langfuseUI", description="Langfuse UI URL.")


class LangfuseLogin(CRModel):
    """Where the login of a dedicated Langfuse is: names only, the password stays in the Secret."""

    email: str = Field(description="The login email (sign-up is disabled; this user is created with the project).")
    secret: str = Field(description="Secret in the stack's namespace holding the password (generated once).")
    password_key: str = Field(description="Key of the password in that Secret.")


class InstrumentationStatus(CRModel):
    """Whether the stack's OpenTelemetry Operator Instrumentation exists, and why not."""

    created: bool = Field(description="The Instrumentation exists and exports to this stack's collector.")
    name: str | None = Field(default=None, description="Its name: the value of the pods' instrumentation.opentelemetry.io/inject-python annotation.")
    reason: str = Field(default="", description="Why it was not created (e.g. the CRD is not installed).")


class ObservabilityStackStatus(CRModel):
    """Observed state."""

    conditions: list[Condition] = Field(default_factory=list, description="Ready, Progressing, Degraded and per-component conditions.")
    class_name: str | None = Field(default=None, description="The ObservabilityStackClass applied; absent: the operator's built-in default.")
    observed_generation: int | None = Field(default=None, description="Last metadata.generation reconciled.")
    components: ComponentsStatus = Field(default_factory=ComponentsStatus, description="Per-component release state.")
    endpoints: Endpoints = Field(default_factory=Endpoints, description="Endpoints for apps and UIs.")
    config_map: str | None = Field(default=None, description="ConfigMap with OTEL_EXPORTER_OTLP_* settings for apps to envFrom.")
    langfuse_login: LangfuseLogin | None = Field(default=None, description="Where to find the login of a dedicated Langfuse.")
    instrumentation: InstrumentationStatus | None = Field(default=None, description="The OpenTelemetry Operator Instrumentation for Python apps.")


class ObservabilityStack(CustomResource):
    """Phoenix, Langfuse and an OpenTelemetry Collector for one tenant namespace, wired and PII-safe."""

    kind: Literal["ObservabilityStack"] = Field(description="ObservabilityStack")
    spec: ObservabilityStackSpec = Field(default_factory=ObservabilityStackSpec, description="Desired state.")
    status: ObservabilityStackStatus | None = Field(default=None, description="Observed state, written by the operator.")

    max_name_length: ClassVar[int | None] = MAX_NAME_LENGTH
    name_limit_reason: ClassVar[str] = (
        "the Helm releases and chart objects named after the stack (e.g. the StatefulSet "
        "<name>-langfuse-postgresql, at most 52) would exceed Kubernetes' and Helm's name limits; choose a shorter name")

    @field_validator("metadata")
    @classmethod
    def _name_fits_derived_names(cls, metadata: ObjectMeta) -> ObjectMeta:
        if len(metadata.name) > MAX_NAME_LENGTH:
            raise ValueError(f"name {metadata.name!r} has {len(metadata.name)} characters, at most {MAX_NAME_LENGTH} "
                             f"are allowed: {cls.name_limit_reason}")
        return metadata
