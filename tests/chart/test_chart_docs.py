"""docs/install.md documents exactly the options values.schema.json accepts, with their defaults."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from chartlib import ALL_VALUES, CHART_DIR
from observatory.chartdocs import (
    RBAC_TABLE_END,
    RBAC_TABLE_START,
    SECRETS_TABLE_END,
    SECRETS_TABLE_START,
    TABLE_END,
    TABLE_START,
    UNINSTALL_END,
    UNINSTALL_START,
    rbac_table,
    secrets_table,
    uninstall_commands,
    value_keys,
    values_table,
    with_table,
)
from observatory.rbac import INSTALLER_PERMISSIONS, REQUIRED_PERMISSIONS

REPO = CHART_DIR.parents[1]
INSTALL_DOC = REPO / "docs" / "install.md"
SCHEMA = json.loads((CHART_DIR / "values.schema.json").read_text())


def _lookup(values: dict, dotted: str):
    for part in dotted.split("."):
        values = values[part]
    return values


def test_install_doc_table_is_generated_from_schema():
    document = INSTALL_DOC.read_text()
    expected = with_table(document, values_table(SCHEMA))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        INSTALL_DOC.write_text(expected)
    assert document == expected, "docs/install.md values table is stale; regenerate with UPDATE_GOLDEN=1"


def test_install_doc_rbac_table_is_generated_from_the_permissions():
    """Every rule the chart grants (tests/chart/test_chart_rbac.py: exactly the declared ones) is a row with its reason."""
    document = INSTALL_DOC.read_text()
    expected = with_table(document, rbac_table(), RBAC_TABLE_START, RBAC_TABLE_END)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        INSTALL_DOC.write_text(expected)
    assert document == expected, "docs/install.md RBAC table is stale; regenerate with UPDATE_GOLDEN=1"
    table = document.split(RBAC_TABLE_START)[1].split(RBAC_TABLE_END)[0]
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == \
        1 + len(REQUIRED_PERMISSIONS) + len(INSTALLER_PERMISSIONS)


def test_table_lists_exactly_the_schema_keys():
    table = INSTALL_DOC.read_text().split(TABLE_START)[1].split(TABLE_END)[0]
    documented = [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]
    assert documented == [key for key, _ in value_keys(SCHEMA)]
    assert "image.repository" in documented and "charts.collector.version" in documented


def test_schema_defaults_are_the_values_file():
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    for key, sub in value_keys(SCHEMA):
        assert "default" in sub, f"{key} has no default in values.schema.json"
        assert _lookup(values, key) == sub["default"], key


def test_every_option_has_a_description():
    def walk(schema, path):
        for name, sub in schema.get("properties", {}).items():
            assert sub.get("description"), f"{path}{name}"
            walk(sub, f"{path}{name}.")
    walk(SCHEMA, "")


# Options all-values.yaml sets to their default: turning them off would drop objects from the render.
KEPT_AT_DEFAULT = {"pdb.enabled"}


def test_all_values_file_sets_every_option():
    values = yaml.safe_load(ALL_VALUES.read_text())
    for key, sub in value_keys(SCHEMA):
        value = _lookup(values, key)
        assert key in KEPT_AT_DEFAULT or value != sub["default"], f"all-values.yaml leaves {key} at its default"


def test_with_table_needs_markers():
    with pytest.raises(ValueError, match="markers"):
        with_table("no table here", "| x |\n")


@pytest.mark.parametrize(("start", "end", "generate"), [(SECRETS_TABLE_START, SECRETS_TABLE_END, secrets_table),
                                                        (UNINSTALL_START, UNINSTALL_END, uninstall_commands)],
                         ids=["secrets", "uninstall"])
def test_install_doc_generated_blocks_are_current(start, end, generate):
    document = INSTALL_DOC.read_text()
    expected = with_table(document, generate(), start, end)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        INSTALL_DOC.write_text(expected)
    assert document == expected, "docs/install.md is stale; regenerate with UPDATE_GOLDEN=1"


def test_secrets_table_lists_every_receiver_and_stack_secret():
    table = secrets_table()
    for field in ("slack.apiURL", "pagerduty.routingKey", "webhook.url", "email.authPassword",
                  "langfuse.external.keySecret", "s3.secretAccessKey", "postgres.passwordSecret"):
        assert field in table, field


def test_uninstall_deletes_observatorys_crds_and_keeps_kopfs():
    """kopf's peering CRDs are cluster-wide and shared with every kopf operator of the cluster."""
    commands = uninstall_commands()
    (crd_line,) = [line for line in commands.splitlines() if line.startswith("kubectl delete crd")]
    shipped = sorted(path.name for path in (REPO / "crds").glob("*.yaml"))
    ours = [yaml.safe_load((REPO / "crds" / name).read_text())["metadata"]["name"] for name in shipped
            if not name.startswith("kopf.dev_")]
    assert sorted(crd_line.split()[3:]) == sorted(ours)
    assert "kopf.dev" not in commands and "-f charts/observatory/crds" not in commands
