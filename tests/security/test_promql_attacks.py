"""Issue 13 items 5, 6 and the PromQL parts of 7: hostile PromQL is refused naming the field, the
limit or the reason, and the fix; through the CLI and through the operator loop; nothing of it is
written, the other tenant is unaffected, and the process stays up.

Both run in subprocesses: before the fix, 16,000 unary minus signs crashed the native parser
(SIGSEGV), which must fail a test rather than end pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from promql_attacks import ATTACKS, Attack, good

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
# Every attack together must be refused well within this; before the fix one input alone took minutes.
BUDGET_SECONDS = 60


def test_cli_refuses_every_attack_naming_the_field(tmp_path: Path) -> None:
    policies = tmp_path / "policies.yaml"
    policies.write_text(yaml.safe_dump_all([a.resource for a in ATTACKS] + [good()]))
    result = subprocess.run([sys.executable, "-m", "observatory", "validate", "-f", str(policies)], capture_output=True, check=False,
                            text=True, cwd=REPO, timeout=BUDGET_SECONDS)
    assert result.returncode == 1, f"exit {result.returncode} (a negative code is a signal): {result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    for attack in ATTACKS:
        assert _refusal(attack, lines), f"{attack.name}: no line naming {attack.field} with {attack.words}:\n" + \
            "\n".join(line for line in lines if f"/{attack.name}:" in line)
    assert not any("/calls:" in line for line in lines), "the other tenant's rule was refused too"
    assert lines[-1] == f"{len(ATTACKS)} error(s)"


def _refusal(attack: Attack, lines: list[str]) -> bool:
    identity = f"{attack.resource['kind']}/{attack.resource['metadata']['namespace']}/{attack.name}: {attack.field}: "
    return any(identity in line and all(w in line for w in attack.words) for line in lines)


def test_render_prints_nothing_for_an_attack(tmp_path: Path) -> None:
    policies = tmp_path / "policies.yaml"
    policies.write_text(yaml.safe_dump_all([ATTACKS[0].resource, good()]))
    result = subprocess.run([sys.executable, "-m", "observatory", "render", "-f", str(policies)], capture_output=True, check=False,
                            text=True, cwd=REPO, timeout=BUDGET_SECONDS)
    assert result.returncode == 1 and result.stdout == "", result.stderr[-2000:]


@pytest.fixture(scope="module")
def operator_report() -> dict:
    """The operator loop given every attack in team-a and one ordinary rule in team-b."""
    resources = [a.resource for a in ATTACKS] + [good()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS / "controller"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, str(Path(__file__).with_name("promql_operator_probe.py")), str(BUDGET_SECONDS)],
                            input=json.dumps(resources), capture_output=True, check=False, text=True, env=env, timeout=BUDGET_SECONDS + 60)
    assert result.returncode == 0, f"the operator died (exit {result.returncode}): {result.stderr[-3000:]}"
    return json.loads(result.stdout)


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_operator_reports_invalid_naming_the_field_and_writes_nothing(operator_report: dict, attack: Attack) -> None:
    reported = operator_report["resources"][attack.name]
    assert reported["valid"], f"{attack.name}: no status written"
    valid = reported["valid"]
    assert (valid["status"], valid["reason"]) == ("False", "InvalidSpec")
    assert valid["message"].startswith(f"{attack.field}: ") and all(w in valid["message"] for w in attack.words), valid["message"]
    assert reported["status"]["prometheusRules"] == []


def test_operator_writes_no_rules_for_the_attacker_and_serves_the_other_tenant(operator_report: dict) -> None:
    assert operator_report["rules"]["team-a"] == []
    assert operator_report["resources"]["calls"]["valid"]["status"] == "True"
    assert operator_report["rules"]["team-b"] == ["alertrule-calls"]
