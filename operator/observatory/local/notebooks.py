"""`observatory local notebooks` (`make notebooks`): every notebook executed headless with this
interpreter's kernel (the project's venv), against the running local stack or one started for the
run, executed copies written next to the stack's data (the committed notebooks stay without outputs).

The kernel inherits this process's environment: OBSERVATORY_LOCAL_DIR tells the notebooks where the
stack is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

LOCAL_DIR_VARIABLE = "OBSERVATORY_LOCAL_DIR"
CELL_TIMEOUT_SECONDS = 180


@dataclass(frozen=True)
class Outcome:
    name: str
    ok: bool
    message: str  # the failing cell's error, or where the executed copy is
    figures: int = 0


def run_notebook(path: Path, out_dir: Path | None = None) -> Outcome:
    """Execute `path` in its own folder (the notebooks read ../examples); an error fails it."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_SECONDS, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
        ok, message = True, ""
    except CellExecutionError as err:
        ok, message = False, f"{err.ename}: {err.evalue}"  # its str() is the colored traceback
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    if ok and any(o.output_type == "error" for o in outputs):
        ok, message = False, "a cell raised an error"
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, out_dir / path.name)
        message = message or f"executed copy in {out_dir / path.name}"
    return Outcome(path.stem, ok, message, sum("image/png" in o.get("data", {}) for o in outputs))


def run_all(notebooks: list[Path], data_dir: Path, out_dir: Path | None, say=print) -> list[Outcome]:
    """Run `notebooks` against the stack whose data is in `data_dir`, one at a time, saying how each went."""
    os.environ[LOCAL_DIR_VARIABLE] = str(data_dir.resolve())
    outcomes = []
    for path in notebooks:
        say(f"running {path} ...")
        outcome = run_notebook(path, out_dir)
        say(f"{'PASS' if outcome.ok else 'FAIL'}  {outcome.name}: {outcome.message}")
        outcomes.append(outcome)
    return outcomes
