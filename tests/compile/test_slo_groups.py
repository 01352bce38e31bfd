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
    """200 SLOs with 1 KB descriptions of their own (so alerts of their own) hashing into one group
    pass 512 KiB: `loader.compile_all` assembled the groups outside any `try`, so validate and render
    died with a traceback."""
    names = same_group_names(200)
    stdin = yaml.safe_dump_all([slo_document(n, f"{n}: " + "x" * 1000) for n in names])
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
    """`count` SLOs of one group; `description` may name each (`{name}`)."""
    from observatory.models import parse_resource
    docs = [slo_document(n, description.format(name=n)) for n in same_group_names(count)]
    return [parse_resource({**d, "spec": {**d["spec"], "objective": objective}}) for d in docs]


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
    rules = together.object["spec"]["groups"][0]["rules"]
    objectives = together.object["spec"]["groups"][1]["rules"]
    names = sorted(s.name for s in slos)
    assert [r["labels"]["slo"] for r in rules if "slo" in r["labels"]] == names
    assert [r["labels"]["slo"] for r in objectives] == names
    # Alike, the three share one alert rule per tier, reading them all.
    alerts = [r for r in rules if "alert" in r]
    assert [a["alert"] for a in alerts] == ["SLOErrorBudgetBurnPage", "SLOErrorBudgetBurnTicket"]
    assert all(f'slo=~"{"|".join(names)}"' in a["expr"] for a in alerts)
    # Each SLO's size is that of its records; the alerts come once per way of alerting, and each
    # name in a shared one's matcher adds at most what `slo_group` allows for it.
    windows = [r for r in rules if "record" in r and "slo" not in r["labels"]]
    main, unread = together.object["spec"]["groups"]

    def size_with(kept: list, kept_unread: list) -> int:
        return _size({**together.object, "spec": {"groups": [{**main, "rules": kept}, {**unread, "rules": kept_unread}]}})
    empty = size_with(windows, [])
    assert size_with([r for r in rules if "record" in r], objectives) == empty + RULES_CLOSING + sum(m.size for m in members)
    alone = slo_group(key, members[:1], c).object
    one_alert_each = _size(alone) - empty - RULES_CLOSING - members[0].size
    assert one_alert_each < _size(together.object) - empty - RULES_CLOSING - sum(m.size for m in members) \
        <= one_alert_each + sum(2 * (len(m.name) + 2) for m in members[1:])
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
    slos = same_group(200, description="{name}: " + "x" * 1000)
    # Created in reverse name order: the oldest are the last names, and they stay.
    members = [dataclasses.replace(slo_member(s, c), created=f"2026-01-01T00:{599 - i:03d}") for i, s in enumerate(slos)]
    group = slo_group(group_key(slos[0]), members, c)
    assert group.left_out and group.admitted
    assert min(m.created for m in group.left_out) > max(m.created for m in group.admitted)
    assert len(yaml.safe_dump(group.object).encode()) < len(json.dumps(group.object, indent=4).encode()) <= MAX_RULE_OBJECT_BYTES
    message = str(group.error())
    assert message.startswith(f"metadata.namespace: PrometheusRule {group.name} would hold the rules of 200 SLOs, more than the 512 KiB")
    assert all(m.name in message for m in group.left_out) and not any(f" {m.name}," in message for m in group.admitted)


def test_an_alert_shared_by_slos_alerting_alike_reads_them_and_no_other(tmp_path: Path, promtool: Path) -> None:
    """`a.b` and `a8b` share a group (a dot is any character to a regular expression): both burn,
    `a8b` alerts its own way (its summary) and `a.b` like `a.c`, which does not burn. promtool sees
    one page for each burning SLO, each with its own summary: the shared rule reads `a.b` and `a.c`
    alone, not `a8b`; the shard label is nowhere on the alerts."""
    from observatory.compile import compile_bundle
    from observatory.models import parse_resource
    from promtool_cases import explain, run_promtool
    names = ["a.b", "a8b", next(n for n in (f"a.c{i}" for i in range(100)) if slo_shard(n) == slo_shard("a.b"))]
    assert len({slo_shard(n) for n in names}) == 1

    def slo(name: str) -> dict:
        alerting = {"page": {"annotations": {"summary": f"{name} burns"}}} if name == "a8b" else {}
        return {**slo_document(name), "spec": {"objective": 99.0, "window": "30d", "alerting": alerting, "indicator": {
            "ratio": {"errors": f'calls_failed{{service="{name}"}}', "total": f'calls{{service="{name}"}}'}}}}
    slos = [parse_resource(slo(n)) for n in names]
    burning = names[:2]
    series = [{"series": f'calls{{namespace="team-a", service="{n}"}}', "values": "0+600x60"} for n in names]
    series += [{"series": f'calls_failed{{namespace="team-a", service="{n}"}}', "values": "0+300x60" if n in burning else "0+0x60"}
               for n in names]

    def page(name: str, summary: str) -> dict:
        return {"exp_labels": {"alertname": "SLOErrorBudgetBurnPage", "namespace": "team-a", "slo": name, "window": "30d",
                               "slo_tier": "page", "severity": "critical"}, "exp_annotations": {"summary": summary}}
    expected = [page("a.b", "SLO a.b (99% over 30d) is burning its error budget fast"), page("a8b", "a8b burns")]
    test = {"interval": "1m", "input_series": series,
            "alert_rule_test": [{"eval_time": "30m", "alertname": "SLOErrorBudgetBurnPage", "exp_alerts": expected}]}
    outcome = run_promtool(slos, [test], "1m", tmp_path)
    assert outcome.ok, explain(outcome, tmp_path)
    [group] = [o for o in compile_bundle(slos) if o["metadata"]["name"].startswith("observatory-slos-")]
    pages = [r for r in group["spec"]["groups"][0]["rules"] if r.get("alert") == "SLOErrorBudgetBurnPage"]
    assert len(pages) == 2  # one shared by a.b and a.c, one of a8b's own


def test_an_invalid_slos_alerts_are_recovered_also_as_an_older_operator_wrote_them() -> None:
    """Before the groups computed their alerts, each SLO had its own, reading `slo="…"` without the
    shard: recovering it from such a group (an invalid SLO after an upgrade) must not fail, and
    gives the alert as the group now writes it."""
    from observatory.compile.slo_groups import group_key, recovered, slo_group, slo_member
    from observatory.conventions import Conventions
    c = Conventions()
    slo, other = same_group(2)
    key = group_key(slo)
    live = slo_group(key, [slo_member(slo, c), slo_member(other, c)], c).object
    assert recovered(slo.name, "u", [live], key, c).alerts == slo_member(slo, c).alerts
    older = json.loads(json.dumps(live))
    for rule in older["spec"]["groups"][0]["rules"]:
        if "alert" in rule:
            rule["expr"] = f'observatory:slo_burning{{namespace="team-a",slo="{slo.name}",slo_tier="{rule["labels"]["slo_tier"]}",window="30d"}}'
    member = recovered(slo.name, "u", [older], key, c)
    assert member.alerts == slo_member(slo, c).alerts and member.rules == slo_member(slo, c).rules
    assert recovered(other.name, "u", [older], key, c).alerts == ()
