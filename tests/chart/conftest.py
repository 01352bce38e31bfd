"""Fixtures: the chart rendered with default values and with every option set."""

from __future__ import annotations

from pathlib import Path

import pytest
from chartlib import ALL_VALUES, template


@pytest.fixture(scope="session")
def default_manifests(helm: Path) -> list[dict]:
    return template(helm)


@pytest.fixture(scope="session")
def all_manifests(helm: Path) -> list[dict]:
    return template(helm, "-f", str(ALL_VALUES))
