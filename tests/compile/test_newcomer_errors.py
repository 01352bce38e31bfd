"""Errors that teach: each common mistake of a first policy, through `observatory validate`, says how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from observatory.cli import main

SLO = """\
apiVersion: observatory.dev/v1alpha1
kind: SLO
metadata: {{name: chat, namespace: team-a}}
spec:
  objective: {objective}
  window: {window}
  indicator: {{llm: {{preset: {preset}}}}}
{extra}"""


def slo(objective: str = "99.5", window: str = "30d", preset: str = "availability", extra: str = "") -> str:
    return SLO.format(objective=objective, window=window, preset=preset, extra=extra)


def validate(tmp_path: Path, capsys, text: str, *args: str) -> tuple[int, str, str]:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    code = main(["validate", "-f", str(path), *args])
    out, err = capsys.readouterr()
    return code, out, err


# (case, document, field named, words the message must contain)
CASES = [
    ("duration", slo(window="30days"), "spec.window", ["use e.g. 5m or 1h30m"]),
    ("percent-sign", slo(objective='"99.5%"'), "spec.objective", ["write 99.5"]),
    ("fraction", slo(objective="0.995"), "spec.objective", ["looks like a fraction", "write 99.5"]),
    ("inline-secret", slo(extra="  routing:\n    receivers:\n    - name: chat\n"
                                "      slack: {apiURL: 'https://hooks.slack.com/services/T0/B0/x'}\n"),
     "spec.routing.receivers.0.slack.apiURL", ["reference a Secret: {name, key}"]),
    ("unknown-field-close", slo(extra="  objectve: 99\n"), "spec.objectve",
     ["closest match: objective", "valid fields:", "window", "indicator"]),
    ("unknown-field-far", slo(extra="  period: 30d\n"), "spec.period", ["valid fields:", "window"]),
    ("between-buckets", slo(preset="latency, latencyThresholdSeconds: 3"), "spec.indicator.llm.latencyThresholdSeconds",
     ["nearest bounds are 2.56 and 5.12"]),
]


@pytest.mark.parametrize("text, field, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_common_mistake_says_how_to_fix_it(tmp_path: Path, capsys, text: str, field: str, words: list[str]) -> None:
    code, _, err = validate(tmp_path, capsys, text)
    assert code == 1
    lines = [line for line in err.splitlines() if f"SLO/team-a/chat: {field}: " in line]
    assert lines, err
    for word in words:
        assert word in lines[0], lines[0]


def test_an_unknown_alertrule_field_lists_the_rule_types(tmp_path: Path, capsys) -> None:
    """The README's type table led a newcomer to `spec.type`; the error must show where the types go."""
    text = ("apiVersion: observatory.dev/v1alpha1\nkind: AlertRule\nmetadata: {name: a, namespace: team-a}\n"
            "spec: {severity: warning, type: cost, cost: {budgetUSD: 10}}\n")
    code, _, err = validate(tmp_path, capsys, text)
    assert code == 1
    assert "spec.type: unknown field; valid fields:" in err and "errorRate" in err and "cost" in err, err


def test_an_objective_of_a_fraction_is_refused_not_read_as_a_percentage(tmp_path: Path, capsys) -> None:
    """`objective: 0.995` meant 0.995 % (vector(0.00995)): an SLO that never alerts."""
    code, _, err = validate(tmp_path, capsys, slo(objective="0.995"))
    assert code == 1, err
    code, _, err = validate(tmp_path, capsys, slo(objective="1"))
    assert code == 0, err


def test_a_document_without_namespace_warns_and_is_an_error_when_strict(tmp_path: Path, capsys) -> None:
    text = slo().replace(", namespace: team-a", "")
    code, out, err = validate(tmp_path, capsys, text)
    assert code == 0, err
    assert "policy.yaml: warning: SLO/default/chat: metadata.namespace: not set; using default" in err, err
    assert "set metadata.namespace or pass -n" in err
    code, _, err = validate(tmp_path, capsys, text, "--strict")
    assert code == 1
    assert "policy.yaml: SLO/default/chat: metadata.namespace: not set" in err and "warning" not in err, err
    code, _, err = validate(tmp_path, capsys, text, "--strict", "-n", "team-a")
    assert (code, "namespace" in err) == (0, False), err
