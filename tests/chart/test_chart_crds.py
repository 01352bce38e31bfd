"""The chart ships exactly the CRDs in crds/ (helm installs charts/observatory/crds/ on first install)."""

from __future__ import annotations

from chartlib import CHART_DIR

REPO = CHART_DIR.parents[1]


def _crd_files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.yaml"))}


def test_chart_crds_identical_to_crds_folder():
    source = _crd_files(REPO / "crds")
    assert source, "crds/ holds no CRDs; run `make crds`"
    assert _crd_files(CHART_DIR / "crds") == source
