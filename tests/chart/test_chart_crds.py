"""The chart ships exactly the CRDs in crds/ (helm installs charts/observatory/crds/ on first install)."""

from __future__ import annotations

import pytest
from chartlib import CHART_DIR

REPO = CHART_DIR.parents[1]


def _crd_files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.yaml"))}


# Remove the marker when `make crds` writes charts/observatory/crds/ too (xfail is strict here, so
# the test turns red as soon as the copies exist, as a reminder).
@pytest.mark.xfail(reason="`make crds` does not write charts/observatory/crds/ yet", strict=True)
def test_chart_crds_identical_to_crds_folder():
    source = _crd_files(REPO / "crds")
    assert source, "crds/ holds no CRDs; run `make crds`"
    assert _crd_files(CHART_DIR / "crds") == source
