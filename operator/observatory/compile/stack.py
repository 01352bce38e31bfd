"""ObservabilityStack → Helm release plans (chart reference + values) for Phoenix, Langfuse and
the OpenTelemetry Collector. Pure: no I/O; the operator installs the plans and creates the Secret
named by `secret_name` with the keys `required_secrets` lists.

Secrets are only ever referenced (secretKeyRef / existingSecret), never put into values.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Mapping

from ..conventions import DEFAULT, Conventions
from ..models.stack import ObservabilityStack, Resources, SqliteStorage
from ..models.stackclass import ChartSource, ObservabilityStackClass
from ..redaction.rules import compile_policy
from .errors import CompileError
from .redaction import ottl_statements, ottl_string, transform_processor
from .stackclass import ceiling_errors, component_class, tenant_value_errors

Component = Literal["phoenix", "langfuse", "collector"]


@dataclass(frozen=True)
class ChartRef:
    """A chart in a classic repository (https), an OCI registry (oci://, without the chart name) or a local path."""

    name: str
    version: str | None
    repository: str | None = None
    path: str | None = None

    @property
    def reference(self) -> str:
        """What `helm install` takes as the chart argument."""
        if self.path:
            return self.path
        if self.repository and self.repository.startswith("oci://"):
            return f"{self.repository.rstrip('/')}/{self.name}"
        return self.name

    @property
    def repo_url(self) -> str | None:
        """`--repo` for classic repositories, else None."""
        if self.path or not self.repository or self.repository.startswith("oci://"):
            return None
        return self.repository


# Pinned upstream charts; tests check the versions against the upstream Chart.yaml files.
DEFAULT_CHARTS: Mapping[Component, ChartRef] = {
    "phoenix": ChartRef("phoenix-helm", "12.0.4", "oci://registry-1.docker.io/arizephoenix"),
    "langfuse": ChartRef("langfuse", "2.0.0", "oci://ghcr.io/langfuse/langfuse-k8s/charts"),
    "collector": ChartRef("opentelemetry-collector", "0.170.0", "https://open-telemetry.github.io/opentelemetry-helm-charts"),
}

COLLECTOR_IMAGE = "otel/opentelemetry-collector-contrib"
OTLP_GRPC_PORT, OTLP_HTTP_PORT = 4317, 4318
PHOENIX_UI_PORT, LANGFUSE_UI_PORT = 6006, 3000
PROMETHEUS_PORT, PROMETHEUS_PORT_NAME = 8889, "llm-metrics"
RESOURCE_POLICY_KEEP = {"helm.sh/resource-policy": "keep"}


@dataclass(frozen=True)
class ReleasePlan:
    component: Component
    name: str
    namespace: str
    chart: ChartRef
    values: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class SecretSpec:
    """One key the operator generates once and never changes.

    kind: `token` 32 random bytes, URL-safe base64; `hex32` 32 random bytes as 64 hex digits;
    `password` 24 random letters and digits; `langfuse-public-key` pk-lf-<uuid4>;
    `langfuse-secret-key` sk-lf-<uuid4>.
    """

    key: str
    kind: Literal["token", "hex32", "password", "langfuse-public-key", "langfuse-secret-key"]


# Keys of the generated Secret. Phoenix's chart reads each env var from the key of the same name.
PHOENIX_SECRET, PHOENIX_ADMIN_SECRET = "PHOENIX_SECRET", "PHOENIX_ADMIN_SECRET"
PHOENIX_ADMIN_PASSWORD = "PHOENIX_DEFAULT_ADMIN_INITIAL_PASSWORD"
LANGFUSE_SALT, LANGFUSE_ENCRYPTION_KEY = "langfuse-salt", "langfuse-encryption-key"
LANGFUSE_NEXTAUTH_SECRET = "langfuse-nextauth-secret"
LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY = "langfuse-public-key", "langfuse-secret-key"
LANGFUSE_USER_PASSWORD = "langfuse-user-password"
# phoenix-helm 12.0.4 values.yaml `resources`.
PHOENIX_CHART_RESOURCES: Mapping[str, Mapping[str, str]] = {"requests": {"cpu": "500m", "memory": "1Gi"},
                                                            "limits": {"cpu": "1000m", "memory": "2Gi"}}
# otelcol-contrib's image USER; SeaweedFS gets the uid its chart's examples use (fsGroup makes /data its own).
COLLECTOR_UID, SEAWEEDFS_UID = 10001, 1000


# --- names ------------------------------------------------------------------------------------

def release_name(stack: ObservabilityStack, component: Component) -> str:
    return f"{stack.name}-{component}"


def secret_name(stack: ObservabilityStack) -> str:
    """The Secret the operator generates and owns."""
    return f"{stack.name}-observatory-secrets"


def configmap_name(stack: ObservabilityStack) -> str:
    """The ConfigMap with OTEL_EXPORTER_OTLP_* settings apps `envFrom`."""
    return f"{stack.name}-otel"


def _service(name: str, stack: ObservabilityStack) -> str:
    if len(name) > 63:
        raise CompileError("metadata.name", f"too long: the Service name {name!r} would exceed 63 characters")
    return f"{name}.{stack.namespace}.svc.cluster.local"


def phoenix_host(stack: ObservabilityStack) -> str:
    # The chart names the Service <fullname>-svc; fullname is the release name when it contains "phoenix".
    return _service(f"{release_name(stack, 'phoenix')}-svc", stack)


def langfuse_url(stack: ObservabilityStack) -> str:
    spec = stack.spec.langfuse
    if spec.mode == "external":
        return spec.external.url.rstrip("/")
    return f"http://{_service(release_name(stack, 'langfuse') + '-web', stack)}:{LANGFUSE_UI_PORT}"


def collector_host(stack: ObservabilityStack) -> str:
    return _service(release_name(stack, "collector"), stack)  # fullnameOverride pins the Service name


def endpoints(stack: ObservabilityStack) -> dict[str, str]:
    """Status endpoints (camelCase keys as in ObservabilityStackStatus.endpoints)."""
    spec = stack.spec
    out = {"otlpGrpc": f"http://{collector_host(stack)}:{OTLP_GRPC_PORT}",
           "otlpHttp": f"http://{collector_host(stack)}:{OTLP_HTTP_PORT}"}
    if spec.phoenix.enabled:
        out["phoenixUI"] = f"http://{phoenix_host(stack)}:{PHOENIX_UI_PORT}"
    if spec.langfuse.enabled:
        out["langfuseUI"] = (spec.langfuse.dedicated.url if spec.langfuse.mode == "dedicated" and spec.langfuse.dedicated.url
                             else langfuse_url(stack))
    return out


def otel_configmap_data(stack: ObservabilityStack) -> dict[str, str]:
    """Data of the `<stack>-otel` ConfigMap: standard SDK variables pointing at the collector."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoints(stack)["otlpHttp"],
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "none",
    }


# --- auto-instrumentation ---------------------------------------------------------------------

# The OpenTelemetry Operator's Instrumentation kind (opentelemetry.io/v1alpha1; the CRD as of
# operator v0.158.0 is tests/fixtures/crds/opentelemetry.io_instrumentations.yaml).
INSTRUMENTATION_API_VERSION, INSTRUMENTATION_KIND = "opentelemetry.io/v1alpha1", "Instrumentation"
INSTRUMENTATION_CRD = "instrumentations.opentelemetry.io"


def instrumentation_name(stack: ObservabilityStack) -> str:
    """The Instrumentation pods name in `instrumentation.opentelemetry.io/inject-python`."""
    return f"{stack.name}-python"


def instrumentation_object(stack: ObservabilityStack, labels: Mapping[str, str],
                           stack_class: ObservabilityStackClass | None = None) -> dict[str, Any]:
    """The Instrumentation that points the namespace's Python apps at the stack's collector. Nothing
    of it comes from the tenant but the stack's name and namespace; the image, from the class.

    The operator injects Python with OTLP over http/protobuf (opentelemetry-operator
    internal/instrumentation/python.go getDefaultPythonEnvVars), so `exporter.endpoint` (which it
    sets as OTEL_EXPORTER_OTLP_ENDPOINT) is the collector's OTLP/HTTP port, as its
    docs/auto-instrumentation/README.md says for Python. Its auto-instrumentation
    loads every installed `opentelemetry_instrumentor` entry point unless listed in
    OTEL_PYTHON_DISABLED_INSTRUMENTATIONS (opentelemetry-python-contrib opentelemetry-instrumentation
    auto_instrumentation/_load.py), so the GenAI instrumentations (opentelemetry-instrumentation-openai-v2,
    -genai-anthropic, -google-genai, -vertexai, ...: instrumentation-genai/README.md) are on wherever
    installed: in the class's image, or the app's own packages (the operator's image has none of them,
    autoinstrumentation/python/requirements.txt at v0.158.0). They emit the current GenAI conventions only with OTEL_SEMCONV_STABILITY_OPT_IN=
    gen_ai_latest_experimental (instrumentation-genai/opentelemetry-instrumentation-openai-v2/README.rst).
    Logs stay off, as in the apps' ConfigMap: the collector has no logs pipeline (the operator's
    default is otlp). Message content is not captured (the instrumentations' default)."""
    python: dict[str, Any] = {"env": [{"name": "OTEL_SEMCONV_STABILITY_OPT_IN", "value": "gen_ai_latest_experimental"},
                                      {"name": "OTEL_LOGS_EXPORTER", "value": "none"}]}
    image = stack_class.spec.instrumentation.python_image if stack_class else None
    if image:
        python["image"] = image
    return {
        "apiVersion": INSTRUMENTATION_API_VERSION, "kind": INSTRUMENTATION_KIND,
        "metadata": {"name": instrumentation_name(stack), "namespace": stack.namespace, "labels": dict(labels)},
        "spec": {"exporter": {"endpoint": endpoints(stack)["otlpHttp"]}, "propagators": ["tracecontext", "baggage"],
                 "python": python},
    }


# --- secrets ----------------------------------------------------------------------------------

def required_secrets(stack: ObservabilityStack) -> dict[str, list[SecretSpec]]:
    """Keys the operator must generate once, by Secret name."""
    spec = stack.spec
    keys: list[SecretSpec] = []
    if spec.phoenix.enabled and spec.phoenix.auth:
        keys += [SecretSpec(PHOENIX_SECRET, "token"), SecretSpec(PHOENIX_ADMIN_SECRET, "token"),
                 SecretSpec(PHOENIX_ADMIN_PASSWORD, "password")]
    if _dedicated_langfuse(stack):
        keys += [SecretSpec(LANGFUSE_SALT, "token"), SecretSpec(LANGFUSE_ENCRYPTION_KEY, "hex32"),
                 SecretSpec(LANGFUSE_NEXTAUTH_SECRET, "token"),
                 SecretSpec(LANGFUSE_PUBLIC_KEY, "langfuse-public-key"), SecretSpec(LANGFUSE_SECRET_KEY, "langfuse-secret-key"),
                 SecretSpec(LANGFUSE_USER_PASSWORD, "password")]
    return {secret_name(stack): keys} if keys else {}


def langfuse_admin_email(stack: ObservabilityStack) -> str:
    """The owner headless initialisation creates in a dedicated Langfuse (a login name, not an address to mail)."""
    return f"admin@{stack.name}.{stack.namespace}.local"


def langfuse_login(stack: ObservabilityStack) -> dict[str, str] | None:
    """Where a tenant finds the login of its dedicated Langfuse, for the status: names only, never the password."""
    if not _dedicated_langfuse(stack):
        return None
    return {"email": langfuse_admin_email(stack), "secret": secret_name(stack), "passwordKey": LANGFUSE_USER_PASSWORD}


def _dedicated_langfuse(stack: ObservabilityStack) -> bool:
    return stack.spec.langfuse.enabled and stack.spec.langfuse.mode == "dedicated"


def _ref(name: str, key: str) -> dict[str, Any]:
    return {"secretKeyRef": {"name": name, "key": key}}


def _env_from_secret(env: str, name: str, key: str) -> dict[str, Any]:
    return {"name": env, "valueFrom": _ref(name, key)}


def _resources(resources: Resources | None, default: dict[str, Any]) -> dict[str, Any]:
    """The user's resources (replacing the default as a whole), else the default."""
    return resources.model_dump(exclude_none=True) if resources else default


def _every_key(resources: Resources | None, chart: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """Resources for a chart whose own defaults set every request and limit: Helm merges our map over them, so
    a key we left out would keep the chart's value, e.g. its 1000m cpu limit under a 3-CPU request, a pod the API
    server refuses. Every key is set instead: a request the spec leaves out is its limit (as Kubernetes defaults
    it), a limit it leaves out is its request; what the spec names neither way keeps the chart's value."""
    if resources is None:
        return {group: dict(values) for group, values in chart.items()}
    given = resources.model_dump(exclude_none=True)
    requests, limits = given.get("requests", {}), given.get("limits", {})
    return {"requests": {r: requests.get(r) or limits.get(r) or chart["requests"][r] for r in ("cpu", "memory")},
            "limits": {r: limits.get(r) or requests.get(r) or chart["limits"][r] for r in ("cpu", "memory")}}


def _sized(cpu: str, memory: str, memory_limit: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}


def _pod_security(uid: int) -> dict[str, Any]:
    """Pod securityContext: non-root with an explicit uid (kubelet cannot check runAsNonRoot against an image
    whose USER is a name, as Langfuse's `nextjs`), fsGroup so fresh volumes are writable, the runtime's seccomp."""
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def _container_security(read_only_root: bool) -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
            "readOnlyRootFilesystem": read_only_root}


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge; `override` wins, as Helm merges user values."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# --- Phoenix ----------------------------------------------------------------------------------

def phoenix_values(stack: ObservabilityStack, conventions: Conventions = DEFAULT) -> dict[str, Any]:
    spec = stack.spec.phoenix
    postgres = spec.storage.postgres
    sqlite = spec.storage.sqlite or SqliteStorage()  # the default when postgres is not set
    values: dict[str, Any] = {
        "service": {"type": "ClusterIP"},
        "ingress": {"enabled": False},
        "postgresql": {"enabled": False},
        "database": {"defaultRetentionPolicyDays": spec.retention_days},
        "auth": {
            "enableAuth": spec.auth,
            # The chart would generate the Secret with randAlphaNum on every render; the operator's
            # Secret, named here, holds one key per env var instead.
            "createSecret": False,
            "name": secret_name(stack),
            "secret": [{"key": k} for k in (PHOENIX_SECRET, PHOENIX_ADMIN_SECRET, PHOENIX_ADMIN_PASSWORD)] if spec.auth else [],
        },
    }
    if postgres:
        values["persistence"] = {"enabled": False}
        values["database"]["postgres"] = {"host": postgres.host, "port": postgres.port, "db": postgres.database,
                                          "user": postgres.user}
        values["additionalEnv"] = [_env_from_secret("PHOENIX_POSTGRES_PASSWORD", postgres.password_secret.name,
                                                    postgres.password_secret.key)]
    else:
        persistence = {"enabled": True, "size": sqlite.size}
        if sqlite.storage_class:
            persistence["storageClass"] = sqlite.storage_class
        if stack.spec.deletion_policy == "Retain":
            persistence["annotations"] = dict(RESOURCE_POLICY_KEEP)  # helm uninstall keeps the PVC
        values["persistence"] = persistence
    # The chart's own securityContext presets (values.yaml `securityContext.pod|container`, off by default):
    # uid 65532 as the nonroot image, fsGroup 65532 so it can write the SQLite PVC at /data, a read-only root
    # with emptyDirs for /tmp, /var/tmp, /var/log and the home directory.
    values["securityContext"] = {"pod": {"enabled": True}, "container": {"enabled": True}}
    values["resources"] = _every_key(spec.resources, PHOENIX_CHART_RESOURCES)
    return values


# --- Langfuse ---------------------------------------------------------------------------------

def langfuse_values(stack: ObservabilityStack, conventions: Conventions = DEFAULT) -> dict[str, Any]:
    """Values of a dedicated Langfuse; external mode has no release."""
    spec = stack.spec.langfuse
    if spec.mode != "dedicated":
        raise CompileError("spec.langfuse.mode", "langfuse values exist only in dedicated mode")
    dedicated = spec.dedicated
    secret = secret_name(stack)
    release = release_name(stack, "langfuse")
    org_id = stack.namespace
    project_id = f"{stack.namespace}-{stack.name}"
    langfuse: dict[str, Any] = {
        # Pinned through references: the chart would otherwise generate these, and a regenerated
        # salt or encryption key invalidates every API key and encrypted secret.
        "salt": _ref(secret, LANGFUSE_SALT),
        "encryptionKey": _ref(secret, LANGFUSE_ENCRYPTION_KEY),
        "nextauth": {"url": dedicated.url or langfuse_url(stack), "secret": _ref(secret, LANGFUSE_NEXTAUTH_SECRET)},
        "features": {"signUpDisabled": True},
        # Headless initialisation (https://langfuse.com/self-hosting/administration/headless-initialization,
        # langfuse/langfuse web/src/initialize.ts): at first start one organisation, its project with the API
        # key pair the collector uses, and an owner who can log in, since sign-up is off (the password needs 8+
        # characters; an existing user's is never changed). Secrets only by reference: values end up in the
        # release Secret.
        "additionalEnv": [
            {"name": "LANGFUSE_INIT_ORG_ID", "value": org_id},
            {"name": "LANGFUSE_INIT_ORG_NAME", "value": dedicated.organization or stack.namespace},
            {"name": "LANGFUSE_INIT_PROJECT_ID", "value": project_id},
            {"name": "LANGFUSE_INIT_PROJECT_NAME", "value": dedicated.project or stack.name},
            _env_from_secret("LANGFUSE_INIT_PROJECT_PUBLIC_KEY", secret, LANGFUSE_PUBLIC_KEY),
            _env_from_secret("LANGFUSE_INIT_PROJECT_SECRET_KEY", secret, LANGFUSE_SECRET_KEY),
            {"name": "LANGFUSE_INIT_USER_EMAIL", "value": langfuse_admin_email(stack)},
            {"name": "LANGFUSE_INIT_USER_NAME", "value": "Observatory admin"},
            _env_from_secret("LANGFUSE_INIT_USER_PASSWORD", secret, LANGFUSE_USER_PASSWORD),
            # The project's data retention (web/src/env.mjs, LANGFUSE_INIT_PROJECT_RETENTION); Langfuse applies it
            # only with an Enterprise licence and otherwise keeps event data for ever (docs: data-retention).
            *([{"name": "LANGFUSE_INIT_PROJECT_RETENTION", "value": str(dedicated.retention_days)}]
              if dedicated.retention_days else []),
        ],
        # Both images run as uid 1001 (`nextjs`/`expressjs` in langfuse/langfuse web/Dockerfile, worker/Dockerfile).
        # The root filesystem stays writable: the web entrypoint runs migrations and Next.js writes under /app,
        # and the chart offers no volume for them.
        "podSecurityContext": _pod_security(1001),
        "serviceAccount": {"automountServiceAccountToken": False},  # Langfuse never calls the Kubernetes API
        "securityContext": _container_security(read_only_root=False),
        "resources": _resources(dedicated.resources, _sized("1", "2Gi", "4Gi")),
    }
    values: dict[str, Any] = {"langfuse": langfuse}

    # Bundled stores: the chart names their auth Secrets statically; per-release names let two
    # stacks share a namespace.
    pg = dedicated.postgres
    if pg:
        values["postgresql"] = {"deploy": False, "host": pg.host, "port": pg.port,
                                "auth": {"username": pg.user, "database": pg.database,
                                         "existingSecret": pg.password_secret.name,
                                         "secretKeys": {"userPasswordKey": pg.password_secret.key}}}
    else:
        values["postgresql"] = {
            "settings": {"existingSecret": f"{release}-postgresql-auth"},
            "userDatabase": {"existingSecret": f"{release}-postgresql-auth"},
            "storage": {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": stack.spec.deletion_policy,
                                                                 "whenScaled": "Retain"}},
            # groundhog2k/postgres runs as 999 with a read-only root already; it lacks seccomp and sizes.
            "podSecurityContext": _pod_security(999),
            "resources": _sized("250m", "512Mi", "1Gi"),
            "initResources": _sized("50m", "64Mi", "128Mi"),
        }
    redis = dedicated.redis
    if redis:
        values["redis"] = {"deploy": False, "host": redis.host, "port": redis.port, "tls": {"enabled": redis.tls},
                           "auth": {"username": redis.user, "existingSecret": redis.password_secret.name,
                                    "existingSecretPasswordKey": redis.password_secret.key}}
    else:
        # valkey-io/valkey's security contexts are restrictive already; it has no default sizes.
        values["redis"] = {"auth": {"usersExistingSecret": f"{release}-redis-auth"},
                           "resources": _sized("100m", "256Mi", "512Mi"), "initResources": _sized("50m", "64Mi", "128Mi")}
    ch = dedicated.clickhouse
    if ch:
        values["clickhouse"] = {
            "deploy": False, "host": ch.host, "httpPort": ch.http_port, "nativePort": ch.native_port,
            "database": ch.database,
            "auth": {"username": ch.user, "existingSecret": ch.password_secret.name,
                     "existingSecretKey": ch.password_secret.key},
            # The chart builds CLICKHOUSE_MIGRATION_URL from host and nativePort.
            "migration": {"ssl": ch.tls},
            "cluster": {"enabled": ch.clustered},
        }
    s3 = dedicated.s3
    if s3:
        values["s3"] = {"deploy": False, "bucket": s3.bucket, "region": s3.region, "forcePathStyle": s3.force_path_style,
                        "accessKeyId": _ref(s3.access_key_id.name, s3.access_key_id.key),
                        "secretAccessKey": _ref(s3.secret_access_key.name, s3.secret_access_key.key)}
        if s3.endpoint:
            values["s3"]["endpoint"] = s3.endpoint
    else:
        values["s3"] = _seaweedfs_values(release)
    return values


def _seaweedfs_values(release: str) -> dict[str, Any]:
    """The bundled SeaweedFS (seaweedfs/seaweedfs subchart, all-in-one) as a tenant may install it."""
    pod, container = _pod_security(SEAWEEDFS_UID), _container_security(read_only_root=False)
    return {
        # The subchart's ClusterRole/-Binding (templates/shared/cluster-role.yaml) lets the master pods of a
        # multi-pod SeaweedFS delete pods after a migration; the all-in-one pod runs no master that needs it
        # and does not even use that ServiceAccount. A tenant can create neither kind.
        "global": {"seaweedfs": {"createClusterRole": False,
                                 # Default "seaweedfs": two stacks in one namespace would share it.
                                 "serviceAccountName": f"{release}-s3",
                                 "automountServiceAccountToken": False}},
        "allInOne": {"s3": {"existingConfigSecret": f"{release}-s3-auth",
                            "createBucketsHook": {"resources": _sized("50m", "64Mi", "256Mi")}},
                     "serviceAccountName": f"{release}-s3",
                     "podSecurityContext": {"enabled": True, **pod},
                     "containerSecurityContext": {"enabled": True, **container}},
        # The bucket hook Job takes the filer's security contexts (templates/shared/post-install-bucket-hook.yaml).
        "filer": {"podSecurityContext": {"enabled": True, **pod},
                  "containerSecurityContext": {"enabled": True, **container}},
    }


# --- OpenTelemetry Collector ------------------------------------------------------------------

SPAN_TOKEN_METRIC = "observatory.tokens.{}"  # renamed to the convention names in the metrics pipeline
SPAN_METRICS_NAMESPACE = "observatory.llm"


def _metric_names(c: Conventions) -> dict[str, Any]:
    """Rename span-derived metrics to the names the rules query (prometheus exporter suffixes off)."""
    token_sum = c.token_usage_metric + "_sum"
    token_sums = " or ".join(f'name == "{SPAN_TOKEN_METRIC.format(t)}"' for t in _token_attributes(c))
    statements = [
        f'set(name, "{token_sum}") where {token_sums}',
        f'set(name, "{c.operation_duration_metric}") where name == "{SPAN_METRICS_NAMESPACE}.duration"',
    ]
    return {"error_mode": "ignore", "metric_statements": [{"context": "metric", "statements": statements}]}


def _token_attributes(c: Conventions) -> dict[str, str]:
    """Token type → the span attribute counting it. Cached input tokens are also input tokens; the
    price catalogue bills them at their own rate without counting them twice (compile/prices.py)."""
    return {c.input_token_type: c.input_tokens_attribute, c.output_token_type: c.output_tokens_attribute,
            c.cache_read_token_type: c.cache_read_tokens_attribute,
            c.cache_creation_token_type: c.cache_creation_tokens_attribute}


def _provider_names(c: Conventions) -> dict[str, Any]:
    """Spans of instrumentations still on the old attribute get the new one, on the copy metrics are made of."""
    new, old = c.provider_attribute, c.legacy_provider_attribute
    return {"error_mode": "ignore", "trace_statements": [{"context": "span", "statements": [
        f'set(attributes["{new}"], attributes["{old}"]) where attributes["{new}"] == nil and attributes["{old}"] != nil']}]}


def _span_connectors(c: Conventions) -> dict[str, Any]:
    def tokens(token_type: str, attribute: str) -> dict[str, Any]:
        return {
            "source_attribute": attribute,
            "conditions": [f'attributes["{attribute}"] != nil'],
            # Spans carry no token-type attribute, so the default labels each series.
            "attributes": [{"key": "gen_ai.request.model", "default_value": "unknown"},
                           {"key": c.provider_attribute, "default_value": "unknown"},
                           {"key": "gen_ai.token.type", "default_value": token_type}],
        }

    return {
        "forward/genai": {},
        "spanmetrics": {
            "namespace": SPAN_METRICS_NAMESPACE,
            "histogram": {"unit": "s", "explicit": {"buckets": [f"{b:g}s" for b in c.operation_duration_buckets]}},
            "dimensions": [{"name": "gen_ai.request.model"}, {"name": "error.type"}],
        },
        "sum": {"spans": {SPAN_TOKEN_METRIC.format(t): tokens(t, attribute) for t, attribute in _token_attributes(c).items()}},
    }


def _any_separator(prometheus_name: str) -> str:
    """RE2 matching an OTLP metric name that the prometheus exporter turns into `prometheus_name` ('.' → '_')."""
    return "^" + "[._]".join(re.escape(part) for part in prometheus_name.split("_")) + "$"


def collector_values(stack: ObservabilityStack, conventions: Conventions = DEFAULT) -> dict[str, Any]:
    spec = stack.spec
    c = conventions
    if not (spec.phoenix.enabled or spec.langfuse.enabled or spec.metrics.span_metrics):
        raise CompileError("spec", "nothing consumes traces: enable phoenix, langfuse or metrics.spanMetrics")
    secret = secret_name(stack)
    env: list[dict[str, Any]] = []
    exporters: dict[str, Any] = {"debug": None}
    extensions: dict[str, Any] = {}
    trace_exporters: list[str] = []
    policy = compile_policy(spec.collector.redaction)
    # The same policy for attributes of metric data points apps send (a metrics pipeline runs only these).
    processors: dict[str, Any] = {"transform/redact": {
        **transform_processor(policy), "metric_statements": [{"context": "datapoint", "statements": ottl_statements(policy)}]}}
    trace_processors = ["memory_limiter", "transform/redact"]

    if spec.phoenix.enabled:
        phoenix: dict[str, Any] = {"endpoint": f"{phoenix_host(stack)}:{OTLP_GRPC_PORT}", "tls": {"insecure": True}}
        if spec.phoenix.auth:
            # Phoenix accepts its admin secret as a bearer token for system access.
            env.append(_env_from_secret(PHOENIX_ADMIN_SECRET, secret, PHOENIX_ADMIN_SECRET))
            phoenix["headers"] = {"authorization": "Bearer ${env:PHOENIX_ADMIN_SECRET}"}
        exporters["otlp_grpc/phoenix"] = phoenix
        trace_exporters.append("otlp_grpc/phoenix")
        # Phoenix files spans by this resource attribute; `insert` keeps the app's own choice.
        processors["resource/phoenix-project"] = {"attributes": [
            {"key": "openinference.project.name", "value": spec.phoenix.project_name or stack.name, "action": "insert"}]}
        trace_processors.append("resource/phoenix-project")
    if spec.langfuse.enabled:
        if spec.langfuse.mode == "external":
            ks = spec.langfuse.external.key_secret
            env += [_env_from_secret("LANGFUSE_PUBLIC_KEY", ks.name, ks.public_key_key),
                    _env_from_secret("LANGFUSE_SECRET_KEY", ks.name, ks.secret_key_key)]
        else:
            env += [_env_from_secret("LANGFUSE_PUBLIC_KEY", secret, LANGFUSE_PUBLIC_KEY),
                    _env_from_secret("LANGFUSE_SECRET_KEY", secret, LANGFUSE_SECRET_KEY)]
        # basicauth sends `Authorization: Basic base64(public:secret)`, which Langfuse's OTLP endpoint expects.
        extensions["basicauth/langfuse"] = {"client_auth": {"username": "${env:LANGFUSE_PUBLIC_KEY}",
                                                            "password": "${env:LANGFUSE_SECRET_KEY}"}}
        exporters["otlp_http/langfuse"] = {"endpoint": f"{langfuse_url(stack)}/api/public/otel",
                                          "auth": {"authenticator": "basicauth/langfuse"},
                                          "headers": {"x-langfuse-ingestion-version": "4"}}
        trace_exporters.append("otlp_http/langfuse")
    trace_processors.append("batch")

    pipelines: dict[str, Any] = {"logs": None}
    connectors: dict[str, Any] = {}
    # The prometheus exporter adds a delta sum to the previous value only when the point's start timestamp is
    # the previous point's timestamp (exporter/prometheusexporter/accumulator.go, accumulateSum); otherwise it
    # shows the last delta. The sum connector's deltas carry no start timestamp (connector/sumconnector/sum.go,
    # appendMetricsTo), and SDKs may send deltas too: deltatocumulative keeps the running totals, summing the
    # deltas of a stream with one start time (processor/deltatocumulativeprocessor/internal/delta/delta.go).
    processors["deltatocumulative"] = {}
    app_metrics = ["memory_limiter", "transform/redact", "deltatocumulative", "batch"]
    if spec.metrics.span_metrics:
        connectors = _span_connectors(c)
        trace_exporters.append("forward/genai")
        processors["filter/genai"] = {"error_mode": "ignore",
                                      "traces": {"span": ['attributes["gen_ai.request.model"] == nil']}}
        processors["transform/genai-provider"] = _provider_names(c)
        processors["transform/metric-names"] = _metric_names(c)
        # Span-derived series take the GenAI metric names; app-sent metrics of those names would collide
        # with them in the exporter and count twice.
        processors["filter/genai-metrics"] = {"error_mode": "ignore", "metrics": {"metric": [
            f"IsMatch(name, {ottl_string(_any_separator(name))})" for name in (c.token_usage_metric, c.operation_duration_metric)]}}
        app_metrics.insert(2, "filter/genai-metrics")
        pipelines["traces/genai"] = {"receivers": ["forward/genai"], "processors": ["filter/genai", "transform/genai-provider"],
                                     "exporters": ["spanmetrics", "sum"]}
        pipelines["metrics/spans"] = {"receivers": ["spanmetrics", "sum"],
                                      "processors": ["memory_limiter", "deltatocumulative", "transform/metric-names", "batch"],
                                      "exporters": ["prometheus"]}
    # Apps export OTLP metrics too (the stack's ConfigMap sets OTEL_METRICS_EXPORTER=otlp).
    pipelines["metrics"] = {"receivers": ["otlp"], "processors": app_metrics, "exporters": ["prometheus"]}
    exporters["prometheus"] = {"endpoint": f"${{env:MY_POD_IP}}:{PROMETHEUS_PORT}", "add_metric_suffixes": False,
                               "resource_to_telemetry_conversion": {"enabled": False}}
    pipelines["traces"] = {"receivers": ["otlp"], "processors": trace_processors, "exporters": trace_exporters}

    config: dict[str, Any] = {
        "receivers": {"jaeger": None, "zipkin": None, "prometheus": None},
        "processors": processors,
        "exporters": exporters,
        "service": {"extensions": ["health_check", *sorted(extensions)], "pipelines": pipelines},
    }
    if extensions:
        config["extensions"] = extensions
    if connectors:
        config["connectors"] = connectors

    labels = dict(c.rule_selector_labels if spec.metrics.service_monitor_labels is None
                  else spec.metrics.service_monitor_labels)
    values: dict[str, Any] = {
        "mode": "deployment",
        "fullnameOverride": release_name(stack, "collector"),
        "image": {"repository": COLLECTOR_IMAGE},
        "command": {"name": "otelcol-contrib"},
        "replicaCount": spec.collector.replicas,
        "resources": _resources(spec.collector.resources, _sized("200m", "512Mi", "1Gi")),
        # The collector writes nothing to disk (no file storage or persistent queue is configured).
        "podSecurityContext": _pod_security(COLLECTOR_UID),
        "securityContext": _container_security(read_only_root=True),
        "ports": {
            **{name: {"enabled": False} for name in ("jaeger-compact", "jaeger-thrift", "jaeger-grpc", "zipkin")},
            PROMETHEUS_PORT_NAME: {"enabled": True, "containerPort": PROMETHEUS_PORT, "servicePort": PROMETHEUS_PORT,
                                   "protocol": "TCP"},
        },
        "extraEnvs": env,
        "serviceMonitor": {"enabled": spec.metrics.service_monitor,
                           "metricsEndpoints": [{"port": PROMETHEUS_PORT_NAME, "interval": spec.metrics.scrape_interval}],
                           "extraLabels": labels},
        "config": config,
    }
    return values


# --- plans ------------------------------------------------------------------------------------

def chart_ref(component: Component, override: ChartSource | None,
              defaults: Mapping[Component, ChartRef] | None = None) -> ChartRef:
    """The operator-wide chart (mirror) for a component, overridden field by field by the stack's class."""
    base = (defaults or {}).get(component) or DEFAULT_CHARTS[component]
    if override is None:
        return base
    if override.path:
        return replace(base, path=override.path, repository=None, version=override.version or base.version,
                       name=override.name or base.name)
    return replace(base, repository=override.repository or base.repository, name=override.name or base.name,
                   version=override.version or base.version, path=None if override.repository else base.path)


COMPUTED = {"phoenix": phoenix_values, "langfuse": langfuse_values, "collector": collector_values}


def release_plans(stack: ObservabilityStack, conventions: Conventions = DEFAULT,
                  charts: Mapping[Component, ChartRef] | None = None, stack_class: ObservabilityStackClass | None = None,
                  schemas: Mapping[Component, Mapping[str, Mapping[str, Any]]] | None = None) -> list[ReleasePlan]:
    """The Helm releases of a stack under its class (None: the built-in default), in install order
    (backends before the collector). `schemas` are the charts' values schemas by component ("" the
    chart's, an alias a subchart's), where the caller could read them.

    Values are layered as Helm merges them, each over the one before: the chart's defaults, the class's
    base values, the tenant's (only at paths the class allows), the computed ones. The computed values
    come last because they are what the operator guarantees (wiring, Secrets by reference, security
    contexts, redaction); a tenant value at a computed path is refused rather than silently lost, while
    a platform value there is the platform's own default that the operator overrides."""
    spec = stack.spec
    components: list[Component] = [c for c, on in (("phoenix", spec.phoenix.enabled), ("langfuse", _dedicated_langfuse(stack)),
                                                   ("collector", True)) if on]
    errors = ceiling_errors(stack, stack_class)
    computed = {c: COMPUTED[c](stack, conventions) for c in components}
    for component in COMPUTED:  # a disabled component's values too: enabling it must not be the way in
        errors += tenant_value_errors(component, getattr(spec, component).values, stack_class, computed.get(component, {}),
                                      (schemas or {}).get(component))
    if errors:
        raise CompileError(errors)
    plans = []
    for component in components:
        platform = component_class(stack_class, component)
        values = _merge(_merge(platform.values, getattr(spec, component).values), computed[component])
        plans.append(ReleasePlan(component, release_name(stack, component), stack.namespace,
                                 chart_ref(component, platform.chart, charts), values))
    return plans
