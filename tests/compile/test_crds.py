"""The CRDs are generated from the models, structural, valid for the API server, and current."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from observatory.cli import main
from observatory.crdgen import all_crds
from observatory.models import KINDS

REPO = Path(__file__).resolve().parents[2]
COMBINATORS = ("$ref", "anyOf", "oneOf", "allOf", "not", "$defs")


def walk(node: dict, path: str):
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def schemas():
    for file_name, crd in all_crds().items():
        yield file_name, crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_checked_in_crds_are_current(capsys) -> None:
    assert main(["crds", "--out", str(REPO / "crds"), "--check"]) == 0, capsys.readouterr().err


def test_every_kind_has_a_crd_file() -> None:
    assert sorted(p.name for p in (REPO / "crds").glob("*.yaml")) == sorted(all_crds())
    observatory_kinds = {crd["spec"]["names"]["kind"] for crd in all_crds().values() if crd["spec"]["group"] == "observatory.dev"}
    assert observatory_kinds == set(KINDS)


@pytest.mark.parametrize("file_name, schema", list(schemas()))
def test_schema_is_structural(file_name: str, schema: dict) -> None:
    for path, node in walk(schema, "root"):
        assert not set(COMBINATORS) & set(node), f"{path}: {set(COMBINATORS) & set(node)}"
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        assert not ("properties" in node and "additionalProperties" in node), path
        if node.get("type") == "object" and path != "root.metadata":
            assert "properties" in node or "additionalProperties" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert node.get(bound, True) is True, f"{path}: {bound} must be boolean"
    assert schema["properties"].get("metadata", {"type": "object"}) == {"type": "object"}


@pytest.mark.parametrize("file_name, schema", list(schemas()))
def test_every_field_is_described(file_name: str, schema: dict) -> None:
    undocumented = [path for path, node in walk(schema, "root")
                    if path != "root.metadata" and not path.endswith(("[]", "{}")) and not node.get("description")]
    assert not undocumented


@pytest.mark.parametrize("version", ["1.28", "1.33"])
@pytest.mark.parametrize("file_name", sorted(all_crds()))
def test_crd_validates_strictly(file_name: str, version: str) -> None:
    crd = yaml.safe_load((REPO / "crds" / file_name).read_text())
    kubernetes_validate.validate(crd, version, strict=True)


def test_crds_have_status_printer_columns_and_short_names() -> None:
    for crd in (c for c in all_crds().values() if c["spec"]["group"] == "observatory.dev"):
        version = crd["spec"]["versions"][0]
        columns = {c["name"] for c in version["additionalPrinterColumns"]}
        assert crd["spec"]["names"]["shortNames"]
        if crd["spec"]["names"]["kind"] == "ObservabilityStackClass":
            # The platform's, only read by the operator: no status, no namespace, the default-class annotation shown.
            assert crd["spec"]["scope"] == "Cluster" and "subresources" not in version and "status" not in \
                version["schema"]["openAPIV3Schema"]["properties"]
            assert columns == {"Default", "Age"}
            continue
        assert crd["spec"]["scope"] == "Namespaced"
        assert version["subresources"] == {"status": {}}
        assert {"Ready", "Reason", "Age"} <= columns


def _examples():
    for path in sorted((REPO / "examples").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith("observatory.dev/"):
                yield path.relative_to(REPO), doc


@pytest.mark.parametrize("path, doc", list(_examples()), ids=lambda v: str(v) if isinstance(v, Path) else "")
def test_examples_validate_against_the_crd_schema(path: Path, doc: dict) -> None:
    """What the API server would check; the models and the CRDs must agree on the examples."""
    crd = next(c for c in all_crds().values() if c["spec"]["names"]["kind"] == doc["kind"])
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    # OpenAPI v3 bounds are Draft 4's boolean exclusiveMinimum/Maximum.
    jsonschema.Draft4Validator(schema).validate(doc)


def test_the_crd_schema_catches_what_the_api_server_would() -> None:
    crd = all_crds()["observatory.dev_alertrules.yaml"]
    validator = jsonschema.Draft4Validator(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    bad = {"apiVersion": "observatory.dev/v1alpha1", "kind": "AlertRule", "metadata": {"name": "x"},
           "spec": {"severity": "urgent", "cost": {"budgetUSD": 0}}}
    messages = sorted(e.message for e in validator.iter_errors(bad))
    assert any("urgent" in m for m in messages) and any("minimum of 0" in m for m in messages)
