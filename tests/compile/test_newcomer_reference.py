"""docs/reference.md is generated from the models (through the CRD schemas) and current."""

from __future__ import annotations

from pathlib import Path

from observatory.cli import main
from observatory.crdgen import all_crds
from observatory.refdoc import EXAMPLES

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "docs" / "reference.md"


def _paths(node: dict, prefix: str):
    """Every field path under node, as the reference writes them (`[]` for list items, `.<key>` for map values)."""
    for name, child in node.get("properties", {}).items():
        yield prefix + name
        inner, suffix = child, ""
        while "properties" not in inner:
            if isinstance(inner.get("items"), dict):
                inner, suffix = inner["items"], suffix + "[]"
            elif isinstance(inner.get("additionalProperties"), dict):
                inner, suffix = inner["additionalProperties"], suffix + ".<key>"
            else:
                break
        yield from _paths(inner, f"{prefix}{name}{suffix}.")


def test_checked_in_reference_is_current(capsys) -> None:
    """Regenerate with `make crds` (observatory reference --out docs/reference.md)."""
    assert main(["reference", "--out", str(REFERENCE), "--check"]) == 0, capsys.readouterr().err


def test_every_field_of_every_kind_has_a_row_with_its_description() -> None:
    text = REFERENCE.read_text()
    for crd in all_crds().values():
        if crd["spec"]["names"]["kind"] not in EXAMPLES:
            continue  # kopf's peering kinds
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for top in ("spec", "status"):
            if top not in schema["properties"]:
                continue
            for path in [top, *_paths(schema["properties"][top], f"{top}.")]:
                rows = [line for line in text.splitlines() if line.startswith(f"| `{path}` |")]
                assert rows, f"{crd['spec']['names']['kind']}: {path} missing"
                assert not rows[0].endswith("|  |"), f"{path} has no description"
