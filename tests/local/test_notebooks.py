"""The notebooks: committed without outputs, and executed headless against the local stack.

Each notebook asserts on its own results (a failing assert fails the cell, and so the test).
"""

from __future__ import annotations

import nbformat
import pytest
from localhelpers import REPO
from observatory.local.notebooks import LOCAL_DIR_VARIABLE, run_notebook

NOTEBOOKS = REPO / "notebooks"
NAMES = ("01-instrument-and-trace", "02-author-and-test-policies", "03-cost-and-drift")


def test_every_notebook_is_listed_and_stripped_of_outputs() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)
    for name in NAMES:
        notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        nbformat.validate(notebook)
        dirty = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
                 and (cell.outputs or cell.execution_count is not None)]
        assert dirty == [], f"{name}: cells {dirty} carry outputs; clear them before committing"
        assert set(notebook.metadata) <= {"kernelspec", "language_info"}, f"{name}: stray metadata"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_and_its_assertions_hold(name, local_stack, promtool, monkeypatch) -> None:
    """As `make notebooks` runs them (observatory.local.notebooks)."""
    monkeypatch.setenv(LOCAL_DIR_VARIABLE, local_stack.info.data_dir)
    outcome = run_notebook(NOTEBOOKS / f"{name}.ipynb")
    assert outcome.ok, outcome.message
    assert outcome.figures == {"01-instrument-and-trace": 0, "02-author-and-test-policies": 1, "03-cost-and-drift": 4}[name]
