"""The namespace's shared SLO objects, each computed whole from all the SLOs that need it. Pure.

An SLO's own rules live in one of SLO_SHARDS groups of its namespace and period (`group_key`, a
hash of its name); the burn-rate windows in one object per namespace and period. `slo_member`
renders one SLO's rules once per change of it; `slo_group` assembles a group from its members'
rendered rules without rendering or measuring anything again, so that writing a group costs what
joining lists costs. `observatory render` and the operator both assemble groups here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..conventions import Conventions
from ..models.slo import SLO
from .errors import CompileError
from .rules import MAX_RULE_OBJECT_BYTES, Tenant, _size, object_name, owner_labels, prometheus_rules, rule_to_dict
from .slo import slo_rules, slo_shard, slo_window_groups, slo_windows_name

GroupKey = tuple[str, str, str]  # namespace, period, shard
# A rule's nesting in a group object (spec.groups[0].rules[i]): `_size` indents it this deep, and a
# list that is not empty closes on a line of its own, one level less deep.
RULE_DEPTH = 5
RULES_CLOSING = 4 * (RULE_DEPTH - 1)


@dataclass(frozen=True)
class Member:
    """One SLO's rules as its group holds them."""

    name: str
    rules: tuple[dict[str, Any], ...]
    size: int  # bytes its rules add to the group object, as `rules._size` counts them
    digest: str  # of its rules: a group's hash is made of its members' digests
    uid: str = ""
    created: str = ""  # creationTimestamp: a full group keeps its oldest SLOs


def group_key(slo: SLO) -> GroupKey:
    return slo.namespace, slo.spec.window, f"{slo_shard(slo.name):02d}"


def group_name(key: GroupKey, c: Conventions) -> str:
    _, period, shard = key
    return object_name(c.slo_rules_object_name, period, shard)


def slo_member(slo: SLO, conventions: Conventions, uid: str = "", created: str = "") -> Member:
    """`slo`'s rules, rendered; raises CompileError naming the field for an invalid spec."""
    tenant = Tenant(slo.namespace, conventions)
    return as_member(slo.name, tuple(rule_to_dict(rule, tenant) for rule in slo_rules(slo, tenant)), uid, created)


def as_member(name: str, rules: tuple[dict[str, Any], ...], uid: str = "", created: str = "") -> Member:
    """A member of rules already rendered (an operator keeps an invalid SLO's last good ones)."""
    dumped = [json.dumps(rule, indent=4) for rule in rules]
    # Each rule as `_size` dumps it inside the object: every line indented RULE_DEPTH levels deeper,
    # and a separator before it.
    size = sum(len(d.encode()) + 4 * RULE_DEPTH * (d.count("\n") + 1) + 2 for d in dumped)
    digest = hashlib.sha256("\n".join(json.dumps(rule, sort_keys=True) for rule in rules).encode()).hexdigest()
    return Member(name, rules, size, digest, uid, created)


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
    """The group `key` made of `members`: the oldest (then by name) that fit, their rules in name order."""
    namespace, period, shard = key
    name = group_name(key, c)
    labels = dict(sorted({**c.rule_selector_labels, **owner_labels(c, "Namespace", namespace)}.items()))
    rule_group = {"name": f"{c.rule_group_prefix}.slos.{period}.{shard}", "rules": []}
    obj = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
           "metadata": {"name": name, "namespace": namespace, "labels": labels}, "spec": {"groups": [rule_group]}}
    room = MAX_RULE_OBJECT_BYTES - _size(obj) - RULES_CLOSING
    admitted, left_out = [], []
    for member in sorted(members, key=lambda m: (m.created, m.name)):
        if member.size <= room:
            admitted.append(member)
            room -= member.size
        else:
            left_out.append(member)
    admitted.sort(key=lambda m: m.name)
    rule_group["rules"] = [rule for m in admitted for rule in m.rules]
    digest = hashlib.sha256(json.dumps([labels, rule_group["name"], [m.digest for m in admitted]]).encode()).hexdigest()[:20]
    return Group(key, name, obj if admitted else None, tuple(admitted), tuple(left_out), digest)


def groups_of(members: Iterable[tuple[SLO, Member]], c: Conventions) -> list[Group]:
    """Every group the SLOs fill, in key order."""
    by_key: dict[GroupKey, list[Member]] = {}
    for slo, member in members:
        by_key.setdefault(group_key(slo), []).append(member)
    return [slo_group(key, of_key, c) for key, of_key in sorted(by_key.items())]


def windows_objects(namespace: str, period: str, c: Conventions) -> list[dict[str, Any]]:
    """The burn-rate windows of every SLO of `period` in `namespace`."""
    tenant = Tenant(namespace, c)
    return prometheus_rules(slo_windows_name(period, c), slo_window_groups(period, tenant), tenant,
                            owner_labels(c, "Namespace", namespace))


def windows_keys(slos: Iterable[SLO]) -> list[tuple[str, str]]:
    return sorted({(slo.namespace, slo.spec.window) for slo in slos})
