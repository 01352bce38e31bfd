"""The offline CLI as CI pipelines use it: real subprocesses, real promtool."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ALERT = """\
apiVersion: observatory.dev/v1alpha1
kind: AlertRule
metadata:
  name: tokens-spike
spec:
  severity: warning
  threshold:
    expr: sum(rate(gen_ai_client_token_usage_sum[5m])) by (gen_ai_request_model)
    op: ">"
    value: 1000
"""


def observatory(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    # A bound against hangs, not a speed check: `test -f examples` runs promtool for minutes on a busy machine.
    return subprocess.run([sys.executable, "-m", "observatory", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO, timeout=900)


def test_render_reads_stdin_and_applies_the_default_namespace() -> None:
    result = observatory("render", "-f", "-", "--namespace", "team-z", stdin=ALERT)
    assert result.returncode == 0, result.stderr
    (rule,) = list(yaml.safe_load_all(result.stdout))
    assert rule["metadata"]["namespace"] == "team-z"
    expr = rule["spec"]["groups"][0]["rules"][0]["expr"]
    assert 'namespace="team-z"' in expr


def test_render_output_is_byte_identical_across_processes() -> None:
    first = observatory("render", "-f", "examples/alertrules", "examples/slos")
    second = observatory("render", "-f", "examples/slos", "-f", "examples/alertrules")
    assert first.returncode == 0 and first.stdout == second.stdout


def test_validate_reports_file_kind_namespace_name_field_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(ALERT.replace("value: 1000", "value: high") + "---\n" + ALERT.replace("tokens-spike", "other").replace(
        "sum(rate(gen_ai_client_token_usage_sum[5m])) by (gen_ai_request_model)", 'up{namespace="kube-system"}'))
    result = observatory("validate", "-f", str(bad), "-n", "team-a")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert f"{bad}: AlertRule/team-a/tokens-spike: spec.threshold.value: 'high' is a string; a number is expected: write a number, e.g. 99.5" in lines
    assert any(line.startswith(f"{bad}: AlertRule/team-a/other: spec.threshold.expr: selects namespace=\"kube-system\"") for line in lines)
    assert result.stdout == ""


def test_validate_accepts_the_examples() -> None:
    result = observatory("validate", "-f", "examples/")
    assert result.returncode == 0, result.stderr
    assert "resource(s) valid" in result.stdout


def test_test_command_runs_promtool_and_summarises(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(ALERT.replace("metadata:\n", "metadata:\n  namespace: team-a\n"))
    passing = tmp_path / "spike.test.yaml"
    passing.write_text(yaml.safe_dump({
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": 'gen_ai_client_token_usage_sum{namespace="team-a", gen_ai_request_model="gpt-4o"}',
                              "values": "0+120000x20"}],
            "alert_rule_test": [{"eval_time": "10m", "alertname": "TokensSpike", "exp_alerts": [{
                "exp_labels": {"namespace": "team-a", "gen_ai_request_model": "gpt-4o", "severity": "warning",
                               "observatory_alertrule": "tokens-spike"},
                "exp_annotations": {"summary": "2k > 1000"}}]}],
        }],
    }))
    result = observatory("test", "-f", str(policy), str(passing))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS  promtool check rules" in result.stdout and "2 passed, 0 failed" in result.stdout

    failing = tmp_path / "wrong.test.yaml"
    failing.write_text(passing.read_text().replace("2k > 1000", "1k > 1000"))
    result = observatory("test", "-f", str(policy), str(failing))
    assert result.returncode == 1
    assert f"FAIL  {failing}" in result.stdout and "1 passed, 1 failed" in result.stdout


def test_non_observatory_documents_are_skipped_with_a_note(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n" + ALERT)
    result = observatory("render", "-f", str(mixed))
    assert result.returncode == 0
    assert "skipped 1 document(s)" in result.stderr
    assert [d["kind"] for d in yaml.safe_load_all(result.stdout)] == ["PrometheusRule"]


def test_examples_render_and_their_promtool_tests_pass() -> None:
    result = observatory("test", "-f", "examples")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS  promtool check rules" in result.stdout and " 0 failed" in result.stdout


def _subcommands(parser, path=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _subcommands(sub, (*path, name))


def test_every_subcommand_help_says_what_it_does_and_its_defaults():
    from observatory.cli import parser

    commands = list(_subcommands(parser()))
    assert len(commands) >= 12
    for path, sub in commands:
        text = sub.format_help()
        assert sub.description, f"observatory {' '.join(path)} --help has no description"
        assert "(default: None)" not in text and "(default: False)" not in text, text
    (up,) = [sub for path, sub in commands if path == ("local", "up")]
    assert "(default: .local)" in " ".join(up.format_help().split())
