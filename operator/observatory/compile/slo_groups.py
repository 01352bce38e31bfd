"""The namespace's shared SLO objects, each computed whole from all the SLOs that need it. Pure.

An SLO's rules live in one of SLO_SHARDS groups of its namespace and period (`group_key`, a hash
of its name), which also computes their windows and alerts; the ticket's long windows and the
budget in one object per namespace and period. `slo_member` renders one SLO's rules once per change
of it; `slo_group` assembles a group from its members' rendered rules without rendering or
measuring anything again, so that writing a group costs what joining lists costs. `observatory
render` and the operator both assemble groups here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import promql_parser as pp

from .. import promql
from ..conventions import Conventions
from ..models.slo import SLO
from .errors import CompileError
from .rules import (
    MAX_RULE_OBJECT_BYTES,
    Tenant,
    _size,
    object_name,
    owner_labels,
    prometheus_rules,
    rule_to_dict,
)
from .slo import (
    SLO_GROUP_INTERVAL,
    UNREAD_RECORDS_INTERVAL,
    burning,
    shard_text,
    slo_long_groups,
    slo_rules,
    slo_shard,
    slo_shard_rules,
    slo_windows_name,
)

GroupKey = tuple[str, str, str]  # namespace, period, shard
# A rule's nesting in a group object (spec.groups[i].rules[j]): `_size` indents it this deep. A list
# that is not empty closes on a line of its own, one level less deep (the windows' list always holds rules).
RULE_DEPTH = 5
RULES_CLOSING = 4 * (RULE_DEPTH - 1)


@dataclass(frozen=True)
class Member:
    """One SLO's rules as its group holds them."""

    name: str
    rules: tuple[dict[str, Any], ...]  # its own records
    size: int  # bytes its records add to the group object, as `rules._size` counts them
    digest: str  # of its rules: a group's hash is made of its members' digests
    uid: str = ""
    created: str = ""  # creationTimestamp: a full group keeps its oldest SLOs
    alerts: tuple[dict[str, Any], ...] = ()  # each reading this SLO alone; the group shares those alike


def group_key(slo: SLO) -> GroupKey:
    return slo.namespace, slo.spec.window, shard_text(slo_shard(slo.name))


def group_name(key: GroupKey, c: Conventions) -> str:
    _, period, shard = key
    return object_name(c.slo_rules_object_name, period, shard)


def slo_member(slo: SLO, conventions: Conventions, uid: str = "", created: str = "") -> Member:
    """`slo`'s rules, rendered; raises CompileError naming the field for an invalid spec."""
    tenant = Tenant(slo.namespace, conventions)
    rules = slo_rules(slo, tenant)
    return as_member(slo.name, tuple(rule_to_dict(rule, tenant) for rule in rules.records), uid, created,
                     tuple(rule_to_dict(rule, tenant) for rule in rules.alerts))


def _rules_size(rules: Iterable[dict[str, Any]]) -> int:
    # Each rule as `_size` dumps it inside the object: every line indented RULE_DEPTH levels deeper,
    # and a separator before it.
    dumped = [json.dumps(rule, indent=4) for rule in rules]
    return sum(len(d.encode()) + 4 * RULE_DEPTH * (d.count("\n") + 1) + 2 for d in dumped)


def _name_in_regex(name: str) -> int:
    """Bytes a name adds to a shared alert's `slo=~"…|…"` matcher at most: the `|`, the `~` of the
    first, and each escaped dot (`\\.`, escaped again in JSON)."""
    return len(name) + 2 + 2 * name.count(".")


def as_member(name: str, rules: tuple[dict[str, Any], ...], uid: str = "", created: str = "",
              alerts: tuple[dict[str, Any], ...] = ()) -> Member:
    """A member of rules already rendered (an operator keeps an invalid SLO's last good ones)."""
    size = _rules_size(rules)
    digest = hashlib.sha256("\n".join(json.dumps(rule, sort_keys=True) for rule in (*rules, *alerts)).encode()).hexdigest()
    return Member(name, rules, size, digest, uid, created, alerts)


def _alike(alert: dict[str, Any]) -> str:
    """What SLOs alerting alike have in common: everything but the SLO the expression reads."""
    return json.dumps({k: v for k, v in alert.items() if k != "expr"}, sort_keys=True)


def recovered(name: str, uid: str, objects: Iterable[dict[str, Any]], key: GroupKey, c: Conventions) -> Member:
    """The member `name` of group `key` as its live objects hold it: its records, and the alerts
    reading it (so that an invalid SLO keeps its last good rules), also as an older operator wrote
    them (an alert of its own, reading it by `slo="…"`)."""
    namespace, period, shard = key
    tenant = Tenant(namespace, c)
    records, alerts = [], []
    for rule in (rule for obj in objects for g in obj["spec"]["groups"] for rule in g["rules"]):
        if "record" in rule and (rule.get("labels") or {}).get(c.slo_label) == name:
            records.append(rule)
        elif "alert" in rule and c.slo_tier_label in (rule.get("labels") or {}):
            read = next(n for n in promql.nodes(promql.parse(rule["expr"])) if isinstance(n, pp.VectorSelector))
            slos = next((m for m in read.matchers.matchers if m.name == c.slo_label), None)
            if slos is None:
                continue
            names = [slos.value] if slos.op == pp.MatchOp.Equal else [n.replace("\\.", ".") for n in slos.value.split("|")]
            if name in names:
                tier = rule["labels"][c.slo_tier_label]
                alerts.append({**rule, "expr": tenant.pinned_text(burning(period, shard, tier, [name], c))})
    return as_member(name, tuple(records), uid, alerts=tuple(alerts))


@dataclass(frozen=True)
class Group:
    """A group as written: the SLOs it admits, and those that did not fit."""

    key: GroupKey
    name: str
    object: dict[str, Any] | None  # None: no SLO in it, the group goes
    admitted: tuple[Member, ...]
    left_out: tuple[Member, ...]
    digest: str

    def error(self) -> CompileError:
        names = ", ".join(m.name for m in self.left_out)
        return CompileError("metadata.namespace", f"PrometheusRule {self.name} would hold the rules of "
                                                  f"{len(self.admitted) + len(self.left_out)} SLOs, more than the "
                                                  f"{MAX_RULE_OBJECT_BYTES // 1024} KiB prometheus-operator accepts in one "
                                                  f"rule file; left out: {names}; move some to another namespace")


def slo_group(key: GroupKey, members: Iterable[Member], c: Conventions) -> Group:
    """The group `key` made of `members`, the oldest (then by name) that fit: their records in name
    order, the windows and conditions of them all, then one alert rule per tier and way of alerting;
    their objectives, which no rule reads, in a slower group of the same object."""
    namespace, period, shard = key
    members = list(members)
    tenant = Tenant(namespace, c)
    name = group_name(key, c)
    labels = dict(sorted({**c.rule_selector_labels, **owner_labels(c, "Namespace", namespace)}.items()))
    # Read where one of its SLOs asks for a minimum (a left out one too: the group's size is measured before admitting).
    guarded = {r["labels"][c.slo_tier_label] for m in members for r in m.rules if r["record"] == c.slo_min_events_metric}
    windows = [rule_to_dict(rule, tenant) for rule in slo_shard_rules(period, shard, c, guarded)]
    rule_group = {"name": f"{c.rule_group_prefix}.slos.{period}.{shard}", "interval": SLO_GROUP_INTERVAL, "rules": windows}
    unread = {"name": f"{rule_group['name']}.objectives", "interval": UNREAD_RECORDS_INTERVAL, "rules": []}
    obj = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
           "metadata": {"name": name, "namespace": namespace, "labels": labels}, "spec": {"groups": [rule_group, unread]}}
    room = MAX_RULE_OBJECT_BYTES - _size(obj) - RULES_CLOSING  # the objectives' list, once it holds any
    admitted, left_out = [], []
    alike: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for member in sorted(members, key=lambda m: (m.created, m.name)):
        # An alert like one admitted adds the name to its matcher; another is a rule of its own.
        kinds = [_alike(alert) for alert in member.alerts]
        size = member.size + sum(_name_in_regex(member.name) + (0 if kind in alike else _rules_size([alert]))
                                 for kind, alert in zip(kinds, member.alerts))
        if size <= room:
            admitted.append(member)
            room -= size
            for kind, alert in zip(kinds, member.alerts):
                alike.setdefault(kind, (alert, []))[1].append(member.name)
        else:
            left_out.append(member)
    admitted.sort(key=lambda m: m.name)
    for _, names in alike.values():
        names.sort()
    alerts = [{**alert, "expr": tenant.pinned_text(burning(period, shard, alert["labels"][c.slo_tier_label], names, c))}
              for _, (alert, names) in sorted(alike.items(), key=lambda kv: (kv[1][0]["alert"], kv[0]))]
    records = [rule for m in admitted for rule in m.rules]
    rule_group["rules"] = [*(r for r in records if r["record"] != c.slo_objective_metric), *windows, *alerts]
    unread["rules"] = [r for r in records if r["record"] == c.slo_objective_metric]
    digest = hashlib.sha256(json.dumps([labels, rule_group["name"], SLO_GROUP_INTERVAL, UNREAD_RECORDS_INTERVAL, windows,
                                        [m.digest for m in admitted]]).encode()).hexdigest()[:20]
    return Group(key, name, obj if admitted else None, tuple(admitted), tuple(left_out), digest)


def groups_of(members: Iterable[tuple[SLO, Member]], c: Conventions) -> list[Group]:
    """Every group the SLOs fill, in key order."""
    by_key: dict[GroupKey, list[Member]] = {}
    for slo, member in members:
        by_key.setdefault(group_key(slo), []).append(member)
    return [slo_group(key, of_key, c) for key, of_key in sorted(by_key.items())]


def windows_objects(namespace: str, period: str, c: Conventions) -> list[dict[str, Any]]:
    """The ticket's long windows and the budget of every SLO of `period` in `namespace`."""
    tenant = Tenant(namespace, c)
    return prometheus_rules(slo_windows_name(period, c), slo_long_groups(period, c), tenant,
                            owner_labels(c, "Namespace", namespace))


def windows_keys(slos: Iterable[SLO]) -> list[tuple[str, str]]:
    return sorted({(slo.namespace, slo.spec.window) for slo in slos})
