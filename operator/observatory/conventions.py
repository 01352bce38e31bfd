"""Every metric, label, rule-group and annotation name Observatory reads or writes.

The OpenTelemetry GenAI semantic conventions are still moving (for example counters such as
`gen_ai.client.inference.usage.input_tokens` are proposed), so the names of the signals are
data, overridable as a whole (`Conventions.from_mapping`) instead of literals spread through the
code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

# Bucket boundaries the GenAI semantic conventions recommend for gen_ai.client.operation.duration.
GENAI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
# Evaluation scores are normalised to [0, 1]; buckets every tenth.
EVALUATION_SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True)
class Conventions:
    # --- GenAI signals as exported to Prometheus (dots become underscores, units become suffixes).
    token_usage_metric: str = "gen_ai_client_token_usage"  # histogram: _bucket/_sum/_count
    operation_duration_metric: str = "gen_ai_client_operation_duration_seconds"  # histogram
    evaluation_score_metric: str = "gen_ai_evaluation_score"  # histogram of scores in [0, 1]
    model_label: str = "gen_ai_request_model"
    token_type_label: str = "gen_ai_token_type"
    input_token_type: str = "input"
    output_token_type: str = "output"
    # Cached input tokens, counted inside the input tokens; labelled by the collector (the GenAI
    # conventions name the attributes, not a token type for them).
    cache_read_token_type: str = "cache_read"
    cache_creation_token_type: str = "cache_creation"
    error_type_label: str = "error_type"
    evaluation_name_label: str = "gen_ai_evaluation_name"
    operation_duration_buckets: tuple[float, ...] = GENAI_DURATION_BUCKETS
    evaluation_score_buckets: tuple[float, ...] = EVALUATION_SCORE_BUCKETS

    # --- GenAI span attributes the collector reads (semantic conventions; the older name second).
    input_tokens_attribute: str = "gen_ai.usage.input_tokens"
    output_tokens_attribute: str = "gen_ai.usage.output_tokens"
    cache_read_tokens_attribute: str = "gen_ai.usage.cache_read.input_tokens"
    cache_creation_tokens_attribute: str = "gen_ai.usage.cache_creation.input_tokens"
    provider_attribute: str = "gen_ai.provider.name"
    legacy_provider_attribute: str = "gen_ai.system"  # replaced by gen_ai.provider.name
    provider_label: str = "gen_ai_provider_name"

    # --- Tenancy: the label every generated selector is pinned to.
    tenant_label: str = "namespace"

    # --- Series Observatory records.
    token_price_metric: str = "observatory:gen_ai_token_price_usd"  # listed USD per token
    token_cost_metric: str = "observatory:gen_ai_token_cost_usd"  # USD one token adds to the bill
    spend_rate_metric: str = "observatory:gen_ai_spend_usd:rate5m"  # USD per second, per token series
    # Spend summed by namespace, model, token type and a stack's spendLabels: USD per second, then USD
    # over the last hour and over the last day (tiled from 24 hours), for dashboards and summaries.
    spend_rate_sum_metric: str = "observatory:gen_ai_spend_usd:sum_rate5m"
    spend_hour_metric: str = "observatory:gen_ai_spend_usd:1h"
    spend_day_metric: str = "observatory:gen_ai_spend_usd:1d"
    spend_tile_label: str = "observatory_hour"  # only inside the day's rule: tells its hourly tiles apart
    # How often the price catalogue and the spend rate are recorded: budgets turn the spend rate's
    # sample count into the time it covers with it (the local stack records every few seconds).
    prices_interval: str = "1m"
    # Per SLO, errors per second divided by the error budget and requests per second over 5m, as one
    # series set told apart by slo_events_kind_label (errors, requests); and their means over each
    # longer window (burn_window_label), tiled from the shorter ones. Errors' mean over the requests'
    # mean is a burn rate.
    slo_events_metric: str = "observatory:slo_events:rate"
    slo_burn_rate_metric: str = "observatory:slo_burn_rate"  # per window (burn_window_label)
    slo_burning_metric: str = "observatory:slo_burning"  # per tier: a pair of windows is over its factor
    slo_objective_metric: str = "observatory:slo_objective:ratio"
    slo_min_events_metric: str = "observatory:slo_min_events"  # per tier, only where an SLO sets minEvents
    slo_budget_remaining_metric: str = "observatory:slo_error_budget_remaining:ratio"
    # Calendar budgets (compile/calendar.py): the wall-clock time of the budget's zone, its UTC offset
    # in parts (each the zone's transitions of a span of years, calendar_part_label) and the spend since
    # the period's start, per label set.
    calendar_local_time_metric: str = "observatory:calendar_local_time_seconds"
    calendar_offset_part_metric: str = "observatory:calendar_utc_offset_seconds:part"
    calendar_spend_metric: str = "observatory:gen_ai_spend_usd:calendar_period"
    signal_metric_prefix: str = "observatory:alert_signal"
    drift_cdf_metric_prefix: str = "observatory:drift_cdf"

    # --- Labels Observatory puts on what it generates.
    severity_label: str = "severity"
    slo_label: str = "slo"
    alertrule_label: str = "observatory_alertrule"
    slo_tier_label: str = "slo_tier"
    window_label: str = "window"
    burn_window_label: str = "burn_window"
    slo_events_kind_label: str = "observatory_events"
    slo_tile_label: str = "observatory_tile"  # only inside a window's rule: tells its tiles apart
    # Which of its namespace's groups computes an SLO's windows and alerts: on every series of the
    # SLO that its group reads, never on an alert.
    slo_shard_label: str = "observatory_shard"
    calendar_part_label: str = "observatory_part"
    managed_by_label: str = "app.kubernetes.io/managed-by"
    managed_by_value: str = "observatory"
    owner_kind_label: str = "observatory.dev/owner-kind"
    owner_name_label: str = "observatory.dev/owner-name"

    # --- Annotations on generated alerts.
    summary_annotation: str = "summary"
    description_annotation: str = "description"
    runbook_annotation: str = "runbook_url"
    # The burn-rate alerts' name, then the tier (SLOErrorBudgetBurnPage), unless a tier names its own:
    # one alert rule per group for all the SLOs alerting alike, told apart by the slo label.
    slo_alert_name: str = "SLOErrorBudgetBurn"

    # --- Rule groups and objects.
    rule_group_prefix: str = "observatory"
    prices_object_name: str = "observatory-llm-prices"
    slo_windows_object_name: str = "observatory-slo-windows"  # one per namespace and SLO period
    slo_rules_object_name: str = "observatory-slos"  # SLO_SHARDS per namespace and SLO period
    # A stack's Helm releases run as this ServiceAccount of its namespace, bound by a RoleBinding of
    # this name to the ClusterRole of this name that charts/observatory ships (observatory.rbac).
    stack_installer: str = "observatory-stack-installer"

    # --- Series and labels Prometheus itself writes: the state of every pending or firing alert.
    alerts_metric: str = "ALERTS"
    alert_state_label: str = "alertstate"

    # --- Grafana's dashboard sidecar loads a ConfigMap only when it carries these labels: the
    # kube-prometheus-stack chart sets its grafana subchart's sidecar to `grafana_dashboard: "1"`
    # (charts/kube-prometheus-stack/values.yaml, grafana.sidecar.dashboards.label/labelValue).
    dashboard_labels: Mapping[str, str] = field(default_factory=lambda: {"grafana_dashboard": "1"})

    # --- prometheus-operator loads a PrometheusRule only when its ruleSelector matches.
    rule_selector_labels: Mapping[str, str] = field(default_factory=lambda: {"release": "kube-prometheus-stack"})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "Conventions":
        """Defaults overridden by `values` (snake_case field names); unknown names are an error."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown convention(s): {', '.join(unknown)}")
        coerced = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return dataclasses.replace(cls(), **coerced)


DEFAULT = Conventions()
