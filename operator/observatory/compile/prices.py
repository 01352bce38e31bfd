"""The model price catalogue as recording rules, so prices change without touching any alert."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import promql_parser as pp

from .rules import Rule, RuleGroup, Tenant, object_name, owner_labels, prometheus_rules
from .signals import number

PRICES_INTERVAL = "1m"  # well inside the 5m lookback, so the price series never goes stale
MODELS_PER_GROUP = 500  # keeps a group far below the rule-file limit, so big catalogues split cleanly


@dataclass(frozen=True)
class ModelPrice:
    model: str
    input_usd_per_million: float
    output_usd_per_million: float


# List prices (USD per million tokens) as published by the vendors in 2026; override per stack.
DEFAULT_CATALOGUE = (
    ModelPrice("gpt-4o", 2.5, 10.0),
    ModelPrice("gpt-4o-mini", 0.15, 0.6),
    ModelPrice("gpt-4.1", 2.0, 8.0),
    ModelPrice("gpt-4.1-mini", 0.4, 1.6),
    ModelPrice("o3", 2.0, 8.0),
    ModelPrice("claude-sonnet-4", 3.0, 15.0),
    ModelPrice("claude-opus-4", 15.0, 75.0),
    ModelPrice("claude-3-5-haiku", 0.8, 4.0),
    ModelPrice("gemini-2.5-pro", 1.25, 10.0),
    ModelPrice("gemini-2.5-flash", 0.3, 2.5),
)


def price_groups(catalogue: Iterable[ModelPrice], tenant: Tenant) -> list[RuleGroup]:
    c = tenant.conventions
    prices = sorted(catalogue, key=lambda p: p.model)
    groups = []
    for start in range(0, len(prices), MODELS_PER_GROUP):
        rules = []
        for price in prices[start:start + MODELS_PER_GROUP]:
            for token_type, per_million in ((c.input_token_type, price.input_usd_per_million),
                                            (c.output_token_type, price.output_usd_per_million)):
                rules.append(Rule(
                    expr=pp.parse(f"vector({number(per_million / 1e6)})"),
                    record=c.token_price_metric,
                    labels={c.model_label: price.model, c.token_type_label: token_type},
                ))
        suffix = f".{start // MODELS_PER_GROUP + 1}" if start else ""
        groups.append(RuleGroup(name=f"{c.rule_group_prefix}.prices{suffix}", rules=tuple(rules), interval=PRICES_INTERVAL))
    return groups


def price_objects(catalogue: Iterable[ModelPrice], tenant: Tenant, owner_kind: str, owner_name: str) -> list[dict[str, Any]]:
    c = tenant.conventions
    return prometheus_rules(object_name(c.prices_object_name), price_groups(catalogue, tenant), tenant,
                            owner_labels(c, owner_kind, owner_name))
