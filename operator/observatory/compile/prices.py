"""The model price catalogue as recording rules, so prices change without touching any alert, and
the spend they price, recorded as it happens, so a price change never rewrites past spend.

Per model and token type two series: the listed price (`token_price_metric`) and what one token
adds to the bill (`token_cost_metric`). They differ for cached tokens: the GenAI conventions count
`gen_ai.usage.cache_read.input_tokens` and `..cache_creation.input_tokens` inside
`gen_ai.usage.input_tokens`, so every input token is already billed at the input price and a cached
one adds the difference to its own price (a cache read usually less than zero). One join then bills
input·p_in + read·(p_read − p_in) + write·(p_write − p_in) + output·p_out, which is
(input − read − write)·p_in + read·p_read + write·p_write + output·p_out: the vendors' formula,
cached tokens never counted twice, and no subtraction of series that exist only once a cache is used.

A price with a start date holds from that UTC day on: each recorded price series takes the value of
the latest entry that has started, at the moment the rule is evaluated; the spend rate
(`spend_rate_metric`, per token series, all its labels kept) is recorded with the prices of its
moment, so budgets summing it over a window price each minute at that minute's price.

What the spend was is recorded for reading (`spend_rules`, group `<prefix>.spend`): per namespace, model, token type and the
labels a stack chooses (`spec.defaultRules.spendLabels`), USD per second, over the last hour and over
the last day. Evaluation cost, per series and evaluation: the sum reads each token series once; the
hour reads the summed series' 60 one-minute samples (twice: mean and count), so the dashboards and the
1h budget agree to the cent; the day is 24 of those hours read at 0h…23h offsets, 24 samples, where a
1d window over the one-minute samples would read 1,440 every minute. A per-label-set view is a sum of
these few series at query time.
"""

from __future__ import annotations

import copy
import datetime
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Iterable, Sequence

import promql_parser as pp

from .. import promql
from .errors import CompileError
from .rules import Rule, RuleGroup, Tenant, object_name, owner_labels, prometheus_rules
from .signals import Signals, number

SPEND_RATE_WINDOW = "5m"  # at least two scrapes at any usual scrape interval
HOURS_PER_DAY = 24
MODELS_PER_GROUP = 125  # 8 rules each: a group far below the rule-file limit, so big catalogues split cleanly


@dataclass(frozen=True)
class ModelPrice:
    model: str
    input_usd_per_million: float
    output_usd_per_million: float
    cache_read_usd_per_million: float | None = None  # None: billed as ordinary input
    cache_creation_usd_per_million: float | None = None
    effective_from: datetime.date | None = None  # None: from the beginning
    provider: str | None = None  # gen_ai.provider.name; None: every provider without an entry of its own


# List prices (USD per million tokens) from the vendors' pricing pages, read 2026-12-01:
# OpenAI https://platform.openai.com/docs/pricing ("cached input"; caching is automatic, writes cost
# the input price), Anthropic https://docs.anthropic.com/en/docs/about-claude/pricing (5-minute cache
# writes 1.25x input, cache hits 0.1x), Google https://ai.google.dev/gemini-api/docs/pricing (context
# caching, prompts up to 200k tokens; storage is billed apart and not here). Where a vendor publishes no
# cache price for a model, its cached tokens are billed as input. Override or extend per stack.
DEFAULT_CATALOGUE = (
    ModelPrice("gpt-4o", 2.5, 10.0, cache_read_usd_per_million=1.25),
    ModelPrice("gpt-4o-mini", 0.15, 0.6, cache_read_usd_per_million=0.075),
    ModelPrice("gpt-4.1", 2.0, 8.0, cache_read_usd_per_million=0.5),
    ModelPrice("gpt-4.1-mini", 0.4, 1.6, cache_read_usd_per_million=0.1),
    ModelPrice("o3", 2.0, 8.0),
    ModelPrice("claude-sonnet-4", 3.0, 15.0, cache_read_usd_per_million=0.3, cache_creation_usd_per_million=3.75),
    ModelPrice("claude-opus-4", 15.0, 75.0, cache_read_usd_per_million=1.5, cache_creation_usd_per_million=18.75),
    ModelPrice("claude-3-5-haiku", 0.8, 4.0, cache_read_usd_per_million=0.08, cache_creation_usd_per_million=1.0),
    ModelPrice("gemini-2.5-pro", 1.25, 10.0, cache_read_usd_per_million=0.31),
    ModelPrice("gemini-2.5-flash", 0.3, 2.5),
)


def from_spec(price: Any) -> ModelPrice:
    """The compile core's price from a validated `models.stack.ModelPrice`."""
    return ModelPrice(price.model, price.input_usd_per_million_tokens, price.output_usd_per_million_tokens,
                      price.cache_read_usd_per_million_tokens, price.cache_creation_usd_per_million_tokens,
                      price.effective_from, price.provider)


def _per_token(price: ModelPrice, c: Any) -> dict[str, tuple[float, float]]:
    """Token type → (listed USD per token, USD one such token adds to the bill)."""
    listed = {c.input_token_type: price.input_usd_per_million, c.output_token_type: price.output_usd_per_million,
              c.cache_read_token_type: price.cache_read_usd_per_million, c.cache_creation_token_type: price.cache_creation_usd_per_million}
    listed = {t: (p if p is not None else price.input_usd_per_million) / 1e6 for t, p in listed.items()}
    cached = (c.cache_read_token_type, c.cache_creation_token_type)
    return {t: (p, p - listed[c.input_token_type] if t in cached else p) for t, p in listed.items()}


def request_cost(price: ModelPrice, input_tokens: int, output_tokens: int, cache_read: int = 0, cache_creation: int = 0) -> float:
    """USD of one request by the vendor's formula; `input_tokens` includes the cached ones."""
    read = price.input_usd_per_million if price.cache_read_usd_per_million is None else price.cache_read_usd_per_million
    write = price.input_usd_per_million if price.cache_creation_usd_per_million is None else price.cache_creation_usd_per_million
    return ((input_tokens - cache_read - cache_creation) * price.input_usd_per_million + cache_read * read
            + cache_creation * write + output_tokens * price.output_usd_per_million) / 1e6


def price_of(catalogue: Iterable[ModelPrice], model: str, provider: str | None, day: datetime.date) -> ModelPrice | None:
    """The entry the rules price `provider`'s usage of `model` with on `day` (UTC): the latest started
    entry of that provider, else the latest started one without a provider; None: unpriced."""
    for wanted in dict.fromkeys((provider, None)):
        started = [p for p in catalogue if p.model == model and p.provider == wanted and (p.effective_from or day) <= day]
        if started:
            return max(started, key=lambda p: p.effective_from or datetime.date.min)
    return None


def _dated(values: list[tuple[datetime.date | None, float]]) -> pp.Expr:
    """A vector with the value of the latest entry started at evaluation time (none before the first)."""
    latest_first = sorted(values, key=lambda v: v[0] or datetime.date.min, reverse=True)
    terms = []
    for start, value in latest_first:
        if start is None:
            terms.append(f"vector({number(value)})")
        else:
            epoch = int(datetime.datetime.combine(start, datetime.time(), datetime.timezone.utc).timestamp())
            terms.append(f"(vector({number(value)}) and on () vector(time()) >= {epoch})")
    return promql.parse(" or ".join(terms))


def _model_and_provider(price: ModelPrice) -> tuple[str, str]:
    return price.model, price.provider or ""


def price_groups(catalogue: Iterable[ModelPrice], tenant: Tenant, spend_labels: Sequence[str] = ()) -> list[RuleGroup]:
    """The catalogue and the spend it prices; `spend_labels`: the stack's spec.defaultRules.spendLabels."""
    c = tenant.conventions
    catalogue = sorted(catalogue, key=_model_and_provider)
    by_model = [(model, list(entries)) for model, entries in groupby(catalogue, key=_model_and_provider)]
    groups = []
    for start in range(0, len(by_model), MODELS_PER_GROUP):
        rules = []
        for (model, provider), entries in by_model[start:start + MODELS_PER_GROUP]:
            per_token = [(e.effective_from, _per_token(e, c)) for e in entries]
            for token_type in per_token[0][1]:
                labels = {c.model_label: model, c.token_type_label: token_type, **({c.provider_label: provider} if provider else {})}
                for metric, index in ((c.token_price_metric, 0), (c.token_cost_metric, 1)):
                    rules.append(Rule(expr=_dated([(d, t[token_type][index]) for d, t in per_token]), record=metric, labels=labels))
        if start == 0:
            rules.append(spend_rate_rule(tenant, any(p.provider for p in catalogue)))
        suffix = f".{start // MODELS_PER_GROUP + 1}" if start else ""
        # Conventions.prices_interval (1m) is well inside the 5m lookback: the prices never go stale.
        groups.append(RuleGroup(name=f"{c.rule_group_prefix}.prices{suffix}", rules=tuple(rules), interval=c.prices_interval))
    # A group of its own: no budget reads it, so a budget's promtool test leaves it out (observatory test
    # runs the groups a test reaches); at the prices' interval, which its hour counts samples with.
    groups.append(RuleGroup(name=f"{c.rule_group_prefix}.spend", rules=tuple(spend_rules(tenant, spend_labels)),
                            interval=c.prices_interval))
    return groups


def spend_rate_rule(tenant: Tenant, per_provider: bool = False) -> Rule:
    """USD per second of every token series of the namespace, at the prices of the moment. With
    `per_provider` prices, a token series of a provider with a price of its own for the model takes
    it; `or` adds the others at the price without a provider (both sides keep the token series' labels,
    so a series priced by its provider is never priced twice)."""
    c = tenant.conventions
    signals = Signals(tenant, None, ())
    tokens = signals.metric(c.token_usage_metric + "_sum")
    priced = f"rate(__arg_tokens__[{SPEND_RATE_WINDOW}]) * on ({c.tenant_label}, {c.model_label}, {c.token_type_label}{{}}) group_left ()"
    if not per_provider:
        expr = promql.build(f"{priced.format('')} __arg_cost__", {"tokens": tokens, "cost": signals.metric(c.token_cost_metric)})
    else:
        expr = promql.build(f"{priced.format(', ' + c.provider_label)} __arg_own__ or {priced.format('')} __arg_any__",
                            {"tokens": tokens, "own": signals.metric(c.token_cost_metric, promql.not_equal(c.provider_label, "")),
                             "any": signals.metric(c.token_cost_metric, promql.equal(c.provider_label, ""))})
    return Rule(expr=expr, record=c.spend_rate_metric)


def spend_rules(tenant: Tenant, labels: Sequence[str]) -> list[Rule]:
    """Spend per namespace, model, token type and `labels`: USD per second, over the last hour and over
    the last day. The day's hourly tiles are told apart by a label while they are summed, so an hour
    without a series (a model first used an hour ago) adds nothing instead of dropping the day. A
    group's rules run in order at one evaluation time (prometheus docs/configuration/recording_rules.md),
    so each reads the one before it as just recorded, and whole-hour offsets land on the hour's samples."""
    c = tenant.conventions
    if c.spend_tile_label in labels:
        raise CompileError("spec.defaultRules.spendLabels", f"{c.spend_tile_label} is the label Observatory tells the "
                                                            "day's hourly tiles apart with; choose another label")
    signals = Signals(tenant, None, (c.model_label, c.token_type_label, *labels))
    day = promql.tiles_sum(c.spend_tile_label, [f'__arg_h__{f" offset {h}h" if h else ""}' for h in range(HOURS_PER_DAY)])
    return [
        Rule(expr=promql.build(f"sum by ({signals.by()}) (__arg_s__)", {"s": signals.metric(c.spend_rate_metric)}),
             record=c.spend_rate_sum_metric),
        Rule(expr=signals.cost("1h", rate_metric=c.spend_rate_sum_metric), record=c.spend_hour_metric),
        Rule(expr=promql.build(day, {"h": signals.metric(c.spend_hour_metric)}),
             record=c.spend_day_metric),
    ]


def price_objects(catalogue: Iterable[ModelPrice], tenant: Tenant, owner_kind: str, owner_name: str) -> list[dict[str, Any]]:
    """The namespace's price catalogue. Every cost rule of a namespace needs the same one, and it
    takes ~5 ms to build: built once per inputs (at most `_PRICE_OBJECTS_KEPT` kept), each caller
    gets a copy of its own."""
    catalogue = tuple(catalogue)
    # Conventions hold mappings, so they cannot be hashed; their repr names every field's value.
    key = (catalogue, repr(tenant), owner_kind, owner_name)
    objects = _PRICE_OBJECTS.get(key)
    if objects is None:
        c = tenant.conventions
        objects = prometheus_rules(object_name(c.prices_object_name), price_groups(catalogue, tenant), tenant,
                                   owner_labels(c, owner_kind, owner_name))
        if len(_PRICE_OBJECTS) >= _PRICE_OBJECTS_KEPT:
            _PRICE_OBJECTS.clear()
        _PRICE_OBJECTS[key] = objects
    return copy.deepcopy(objects)


_PRICE_OBJECTS_KEPT = 256  # namespaces with cost rules, per catalogue
_PRICE_OBJECTS: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
