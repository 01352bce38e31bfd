"""SLO groups computed whole (issue 14 scope 2): each shared group (namespace, period, shard) is
made from all the SLOs that hash into it by one pure function, which `observatory render` and the
operator share; a group over prometheus-operator's size limit is an error naming its SLOs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from observatory.compile.slo import slo_shard

REPO = Path(__file__).resolve().parents[2]


def same_group_names(count: int, period_shard_of: str = "slo-0") -> list[str]:
    return [n for n in (f"slo-{i}" for i in range(200 * count)) if slo_shard(n) == slo_shard(period_shard_of)][:count]


def slo_document(name: str, description: str = "", namespace: str = "team-a") -> dict:
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "SLO", "metadata": {"name": name, "namespace": namespace},
            "spec": {"objective": 99.5, "indicator": {"llm": {"preset": "availability"}},
                     **({"description": description} if description else {})}}


def observatory(*args: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "observatory", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_a_full_group_is_an_error_naming_its_slos_in_validate_and_render_never_a_traceback() -> None:
    """200 SLOs with 1 KB descriptions hashing into one group pass 512 KiB: `loader.compile_all`
    assembled the groups outside any `try`, so validate and render died with a traceback."""
    names = same_group_names(200)
    stdin = yaml.safe_dump_all([slo_document(n, "x" * 1000) for n in names])
    for command in ("validate", "render"):
        result = observatory(command, "-f", "-", stdin=stdin)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
        group = f"observatory-slos-30d-{slo_shard(names[0]):02d}"
        problems = [line for line in result.stderr.splitlines() if f"PrometheusRule {group}" in line]
        assert problems, result.stderr
        # Every SLO left out of the full group is named, on the line of its own document.
        left_out = [n for n in names if any(f"SLO/team-a/{n}: " in line for line in problems)]
        assert left_out and names[0] not in left_out and len(left_out) < len(names)
        assert all("512 KiB" in line and "another namespace" in line for line in problems)


def same_group(count: int, objective: float = 99.0, description: str = "") -> list:
    from observatory.models import parse_resource
    return [parse_resource({**slo_document(n, description), "spec": {**slo_document(n, description)["spec"], "objective": objective}})
            for n in same_group_names(count)]


def test_a_group_is_made_of_all_its_slos_whatever_the_order_and_measured_as_the_object_is() -> None:
    """The group's object, and its digest, depend on its SLOs only, not on the order they come in;
    each SLO's size as counted from its own rules adds up to the object's measured size."""
    from observatory.compile.rules import _size
    from observatory.compile.slo_groups import RULES_CLOSING, group_key, slo_group, slo_member
    from observatory.conventions import Conventions
    c = Conventions()
    slos = same_group(3)
    members = [slo_member(s, c) for s in slos]
    key = group_key(slos[0])
    together = slo_group(key, members, c)
    assert together.object == slo_group(key, members[::-1], c).object
    assert together.digest == slo_group(key, [members[2], members[0], members[1]], c).digest
    assert [r["labels"]["slo"] for r in together.object["spec"]["groups"][0]["rules"]] == \
        [n for n in sorted(s.name for s in slos) for _ in range(4)]
    empty = _size({**together.object, "spec": {"groups": [{**together.object["spec"]["groups"][0], "rules": []}]}})
    assert empty + RULES_CLOSING + sum(m.size for m in members) == _size(together.object)
    # A changed SLO changes the group; without an SLO the group is the others'.
    changed = slo_member(same_group(3, objective=99.9)[1], c)
    assert slo_group(key, [members[0], changed, members[2]], c).digest != together.digest
    assert slo_group(key, [members[0], members[2]], c).object == slo_group(key, [members[2], members[0]], c).object
    assert slo_group(key, [], c).object is None


def test_a_full_group_keeps_its_oldest_slos_and_names_the_others() -> None:
    import dataclasses

    from observatory.compile.rules import MAX_RULE_OBJECT_BYTES
    from observatory.compile.slo_groups import group_key, slo_group, slo_member
    from observatory.conventions import Conventions
    c = Conventions()
    slos = same_group(200, description="x" * 1000)
    # Created in reverse name order: the oldest are the last names, and they stay.
    members = [dataclasses.replace(slo_member(s, c), created=f"2026-01-01T00:{599 - i:03d}") for i, s in enumerate(slos)]
    group = slo_group(group_key(slos[0]), members, c)
    assert group.left_out and group.admitted
    assert min(m.created for m in group.left_out) > max(m.created for m in group.admitted)
    assert len(yaml.safe_dump(group.object).encode()) < len(json.dumps(group.object, indent=4).encode()) <= MAX_RULE_OBJECT_BYTES
    message = str(group.error())
    assert message.startswith(f"metadata.namespace: PrometheusRule {group.name} would hold the rules of 200 SLOs, more than the 512 KiB")
    assert all(m.name in message for m in group.left_out) and not any(f" {m.name}," in message for m in group.admitted)
