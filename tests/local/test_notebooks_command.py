"""`make notebooks` (`observatory local notebooks`): notebooks executed with the project's venv as
their kernel, pointed at the running local stack, a pass/fail line each and the exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
from localhelpers import REPO, assert_stopped


def notebook(path: Path, source: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_notebooks_run_in_the_venv_against_the_running_stack(local_stack, tmp_path) -> None:
    folder, out, seen = tmp_path / "notebooks", tmp_path / "executed", tmp_path / "kernel.txt"
    folder.mkdir()
    notebook(folder / "good.ipynb", "import os, sys\nfrom pathlib import Path\n"
                                    f"Path({str(seen)!r}).write_text(sys.executable + '\\n' + os.environ['OBSERVATORY_LOCAL_DIR'])\n"
                                    "assert (Path(os.environ['OBSERVATORY_LOCAL_DIR']) / 'stack.json').exists()")
    notebook(folder / "bad.ipynb", "assert 1 + 1 == 3, 'boom'")
    result = subprocess.run([sys.executable, "-m", "observatory", "local", "notebooks", "--dir", str(folder),
                             "--data-dir", local_stack.info.data_dir, "--out", str(out)],
                            capture_output=True, text=True, cwd=REPO, timeout=300, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert f"using the local stack running in {local_stack.info.data_dir}" in lines
    assert "PASS  good: executed copy in " + str(out / "good.ipynb") in lines
    assert any(line.startswith("FAIL  bad: ") and "AssertionError: boom" in line for line in lines), result.stdout
    assert lines[-1] == "1 passed, 1 failed"
    # The kernel was this venv's interpreter, told where the stack is.
    assert seen.read_text().splitlines() == [sys.executable, str(Path(local_stack.info.data_dir).resolve())]
    assert nbformat.read(out / "good.ipynb", as_version=4).cells[0].execution_count == 1


def test_a_folder_without_notebooks_is_an_error(tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "observatory", "local", "notebooks", "--dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert result.returncode == 1 and f"no notebooks (*.ipynb) in {tmp_path}" in result.stderr


def test_without_a_running_stack_one_is_started_for_the_run_and_stopped(tmp_path, prometheus, alertmanager) -> None:
    folder, data, seen = tmp_path / "notebooks", tmp_path / "data", tmp_path / "stack.json"
    folder.mkdir()
    notebook(folder / "stack.ipynb", "import os, shutil\nfrom pathlib import Path\n"
                                     "shutil.copy(Path(os.environ['OBSERVATORY_LOCAL_DIR']) / 'stack.json', "
                                     f"{str(seen)!r})")
    result = subprocess.run([sys.executable, "-m", "observatory", "local", "notebooks", "--dir", str(folder),
                             "--data-dir", str(data), "-f", str(REPO / "examples")],
                            capture_output=True, text=True, cwd=REPO, timeout=400, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"no local stack runs in {data}: starting one in {data / 'notebooks-stack'}" in result.stdout
    assert result.stdout.splitlines()[-1] == "1 passed, 0 failed"
    info = json.loads(seen.read_text())  # the stack the notebook saw, gone now
    assert info["data_dir"] == str((data / "notebooks-stack").resolve())
    assert_stopped(info["pids"], info["ports"])
    assert not (data / "notebooks-stack" / "stack.json").exists()
