"""A tenant's Grafana dashboards: an SLO overview and an LLM overview, as ConfigMaps for Grafana's
dashboard sidecar (which loads every ConfigMap carrying `Conventions.dashboard_labels`).

The panels are data first (`dashboards`: titles, units and PromQL trees), so that tests can run
every query against a real Prometheus; `dashboard_objects` writes them with Grafana's
foundation SDK. Every query is built from parsed templates and pinned to the tenant's namespace
like the rules are: a dashboard shows only its namespace's series. The SLO overview reads the
series the SLO rules record for the whole namespace, labelled by SLO, so it shows every SLO of
the namespace without naming any: a new SLO appears without rewriting the dashboard.

The ObservabilityStack owns them: there is one per tenant namespace, it already writes ConfigMaps
there as the namespace's installer (so the operator needs no ConfigMap access of its own), and
deleting it takes them along.

Panels use the data source chosen in the dashboard's `datasource` variable (any Prometheus
data source), never a uid that only one Grafana has.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import promql_parser as pp
from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus as gp
from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from .. import promql
from ..conventions import Conventions
from ..models.stack import ObservabilityStack
from .rules import Tenant, object_name, owner_labels
from .signals import Signals, number

RATE_WINDOW = "5m"
# Drift: the operation duration distribution of the last DRIFT_RECENT against the last DRIFT_BASELINE.
DRIFT_RECENT, DRIFT_BASELINE = "5m", "1h"
DATASOURCE_VARIABLE = "datasource"
PANEL_WIDTH, PANEL_HEIGHT = 12, 8  # two panels a row on Grafana's 24-column grid


@dataclass(frozen=True)
class Query:
    expr: pp.Expr  # pinned to the tenant
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    kind: str  # a key of PANEL_KINDS
    unit: str
    queries: tuple[Query, ...]


@dataclass(frozen=True)
class Dashboard:
    key: str  # the ConfigMap key (a file name to the sidecar) and part of the uid
    title: str
    panels: tuple[Panel, ...]


# Panel kinds: how a panel of each kind is drawn, and whether its queries are instant (a table
# shows the latest value per series) or ranges.
PANEL_KINDS: dict[str, tuple[Callable[[], Any], bool]] = {
    "timeseries": (timeseries.Panel, False),
    "table": (table.Panel, True),
}


def dashboards(tenant: Tenant, spend_labels: tuple[str, ...] = ()) -> tuple[Dashboard, ...]:
    """`spend_labels`: the stack's spec.defaultRules.spendLabels, which its recorded spend keeps."""
    return slo_overview(tenant), llm_overview(tenant, spend_labels)


def _query(tenant: Tenant, expr: pp.Expr, *legend_labels: str) -> Query:
    return Query(tenant.pin(expr), " ".join("{{" + label + "}}" for label in legend_labels))


def slo_overview(tenant: Tenant) -> Dashboard:
    c = tenant.conventions
    per_slo = (c.slo_label, c.window_label)

    def by_slo(metric: str, *more: str) -> pp.Expr:
        return promql.build(f"max by ({', '.join((*per_slo, *more))}) (__arg_s__)", {"s": promql.selector(metric)})

    objective = by_slo(c.slo_objective_metric)
    # ALERTS holds only pending and firing alerts: every SLO without one shows 0, not "no data".
    firing = promql.build(
        f"max by ({c.slo_label}, {c.slo_tier_label}) (__arg_a__) or on ({c.slo_label}) 0 * max by ({c.slo_label}) (__arg_o__)",
        {"a": promql.selector(c.alerts_metric, [promql.equal(c.alert_state_label, "firing"), promql.not_equal(c.slo_tier_label, "")]),
         "o": promql.selector(c.slo_objective_metric)})
    q = partial(_query, tenant)
    return Dashboard("slo-overview", f"SLOs · {tenant.namespace}", (
        Panel("Objective", "Each SLO's objective over its period (window).", "table", "percentunit",
              (q(objective, c.slo_label, c.window_label),)),
        Panel("Firing SLO alerts", "1 where an SLO's page or ticket alert fires, 0 where none does.", "table", "none",
              (q(firing, c.slo_label, c.slo_tier_label),)),
        Panel("Error budget remaining", "Share of each SLO's error budget left over its period; below 0 the SLO is missed.",
              "timeseries", "percentunit", (q(by_slo(c.slo_budget_remaining_metric), c.slo_label, c.window_label),)),
        Panel("Burn rate per window", "How many times faster than sustainable each SLO spends its budget, per alert window; "
              "1 spends exactly the budget over the period.", "timeseries", "none",
              (q(by_slo(c.slo_burn_rate_metric, c.burn_window_label), c.slo_label, c.burn_window_label),)),
    ))


def llm_overview(tenant: Tenant, spend_labels: tuple[str, ...] = ()) -> Dashboard:
    c = tenant.conventions
    w = RATE_WINDOW
    per_model = Signals(tenant, group_by=(c.model_label,))
    total = per_model.rate_sum(per_model.operations(), w)
    errors = per_model.or_zero(per_model.rate_sum(per_model.failed_operations(), w), total)
    per_type = Signals(tenant, group_by=(c.model_label, c.token_type_label))
    per_evaluation = Signals(tenant, group_by=(c.evaluation_name_label,))
    score = c.evaluation_score_metric
    quality = promql.build("__arg_s__ / __arg_n__", {"s": per_evaluation.rate_sum(per_evaluation.metric(score + "_sum"), w),
                                                     "n": per_evaluation.rate_sum(per_evaluation.metric(score + "_count"), w)})
    duration = c.operation_duration_metric
    drift = promql.build(f"max by ({per_model.by()}) (abs(__arg_r__ - __arg_b__))",
                         {"r": per_model.cdf(duration, DRIFT_RECENT), "b": per_model.cdf(duration, DRIFT_BASELINE)})
    # The spend the price group records (compile/prices.py): a few summed series instead of every token series.
    spend = promql.build(f"sum by ({per_model.by()}) (__arg_s__) * {number(3600)}",
                         {"s": promql.selector(c.spend_rate_sum_metric)})
    q = partial(_query, tenant)
    model = c.model_label

    def spend_table(*labels: str) -> tuple[Query, ...]:
        by = Signals(tenant, group_by=labels).by()
        queries = [(q(promql.build(f"sum by ({by}) (__arg_s__)", {"s": promql.selector(metric)}), *labels), span)
                   for metric, span in ((c.spend_hour_metric, "last hour"), (c.spend_day_metric, "last day"))]
        return tuple(replace(query, legend=f"{query.legend} {span}") for query, span in queries)

    per_label_set = (Panel(f"Spend per {', '.join(spend_labels)}, last hour and day",
                           f"USD per value of the stack's spendLabels ({c.spend_hour_metric}, {c.spend_day_metric}).",
                           "table", "currencyUSD", spend_table(*spend_labels)),) if spend_labels else ()
    return Dashboard("llm-overview", f"LLM overview · {tenant.namespace}", (
        Panel("Requests", f"GenAI operations per second, per model ({w} rate).", "timeseries", "reqps", (q(total, model),)),
        Panel("Error ratio", "Share of GenAI operations that failed (an error.type was recorded), per model.", "timeseries",
              "percentunit", (q(promql.build("__arg_e__ / __arg_t__", {"e": errors, "t": total}), model),)),
        Panel("Latency p50 and p95", "Operation duration quantiles per model, from the duration histogram.", "timeseries", "s",
              tuple(Query(tenant.pin(per_model.quantile(quantile, duration, w)), f"{{{{{model}}}}} p{round(quantile * 100)}")
                    for quantile in (0.5, 0.95))),
        Panel("Tokens", "Tokens per second, per model and token type (input, output).", "timeseries", "short",
              (q(per_type.tokens_rate(w), model, c.token_type_label),)),
        Panel("Spend", "USD per hour, per model: token usage times the namespace's price catalogue "
              f"({c.token_price_metric}), at the prices of each moment; models without a price do not appear.",
              "timeseries", "currencyUSD", (q(spend, model),)),
        Panel("Spend per model, last hour and day", f"USD per model over the last hour and the last 24 hours, as recorded "
              f"({c.spend_hour_metric}, {c.spend_day_metric}): what the hour's budget compares.", "table", "currencyUSD",
              spend_table(model)),
        *per_label_set,
        Panel("Quality scores", "Average evaluation score per evaluation (scores in [0, 1]).", "timeseries", "percentunit",
              (q(quality, c.evaluation_name_label),)),
        Panel("Latency drift", f"Kolmogorov–Smirnov statistic of the operation duration distribution over the last "
              f"{DRIFT_RECENT} against the last {DRIFT_BASELINE}, per model: 0 same shape, 1 disjoint.", "timeseries", "none",
              (q(drift, model),)),
    ))


def dashboard_uid(stack: ObservabilityStack, key: str) -> str:
    """A uid unique per stack (namespace and name) and dashboard, within Grafana's 40 characters:
    the sidecar loads every namespace's dashboards into one Grafana."""
    digest = hashlib.sha256(f"{stack.namespace}/{stack.name}".encode()).hexdigest()[:16]
    return f"obs-{digest}-{key}"[:40]


def dashboard_json(board: Dashboard, stack: ObservabilityStack) -> str:
    """The dashboard as Grafana's JSON model, written by the foundation SDK; keys sorted, so the
    same dashboard always gives the same text."""
    source = DataSourceRef(type_val="prometheus", uid="${" + DATASOURCE_VARIABLE + "}")
    builder = (gd.Dashboard(board.title).uid(dashboard_uid(stack, board.key)).tags(["observatory", stack.namespace])
               .time("now-6h", "now").refresh("1m").readonly()
               .with_variable(gd.DatasourceVariable(DATASOURCE_VARIABLE).label("Data source").type("prometheus")))
    for number_, panel in enumerate(board.panels, start=1):
        make, instant = PANEL_KINDS[panel.kind]
        built = (make().id(number_).title(panel.title).description(panel.description).unit(panel.unit)
                 .datasource(source).span(PANEL_WIDTH).height(PANEL_HEIGHT))
        for ref, query in zip(string.ascii_uppercase, panel.queries):
            target = gp.Dataquery().ref_id(ref).expr(promql.render(query.expr)).legend_format(query.legend)
            built = built.with_target(target.instant().format(PromQueryFormat.TABLE) if instant else target.range())
        builder = builder.with_panel(built)
    return json.dumps(builder.build(), cls=JSONEncoder, sort_keys=True, indent=2) + "\n"


def dashboards_name(stack: ObservabilityStack) -> str:
    return object_name(stack.name, "dashboards")


def dashboard_objects(stack: ObservabilityStack, conventions: Conventions) -> list[dict[str, Any]]:
    """The stack's dashboards ConfigMap: one JSON file per dashboard, labelled for Grafana's sidecar."""
    tenant = Tenant(stack.namespace, conventions)
    labels = {**owner_labels(conventions, stack.kind, stack.name), **conventions.dashboard_labels}
    return [{
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": dashboards_name(stack), "namespace": stack.namespace, "labels": dict(sorted(labels.items()))},
        "data": {f"{board.key}.json": dashboard_json(board, stack)
                 for board in dashboards(tenant, tuple(stack.spec.default_rules.spend_labels))},
    }]
