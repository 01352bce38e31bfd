"""Hostile input files: every one refused with a message naming the file and the reason, never a
traceback or a hang, nothing printed, exit 1."""

from __future__ import annotations

import pytest
from importer_helpers import observatory
from observatory.importers.common import MAX_DEPTH, MAX_DOCUMENTS, MAX_FILE_BYTES

# A billion laughs: 9 levels of 10 aliases each expand to 10^9 nodes from ~800 bytes.
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(8))

CASES = {
    "alias-bomb": (BOMB.encode(), "refused: more than 200000 YAML nodes with aliases expanded (an alias bomb?)"),
    "too-large": (b"#" * (MAX_FILE_BYTES + 1), f"larger than {MAX_FILE_BYTES // 1024} KiB; split it into several files"),
    "documents": (b"---\na: 1\n" * (MAX_DOCUMENTS + 1), f"refused: more than {MAX_DOCUMENTS} documents"),
    "nesting": (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), f"refused: nested deeper than {MAX_DEPTH} levels"),
    # Deeper than Python's recursion limit, where PyYAML's composer would raise RecursionError.
    "deep-nesting": (b"[" * 5000, f"refused: nested deeper than {MAX_DEPTH} levels"),
    "latin-1": ("service: caf\u00e9\n".encode("latin-1"), "not UTF-8 (invalid byte at offset 12); save the file as UTF-8"),
    "python-tag": (b"a: !!python/object/apply:os.system [echo pwned]\n", "invalid YAML: could not determine a constructor"),
}


@pytest.mark.parametrize("fmt", ["sloth", "openslo"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_file_is_refused_with_a_clear_error(tmp_path, fmt, case):
    data, message = CASES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(data)
    result = observatory("import", fmt, "-n", "team-a", str(path), timeout=60)
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert result.stdout == b""
    assert stderr.startswith(f"{path}: {message}"), stderr
    assert "Traceback" not in stderr


def test_stdin_is_bounded_too():
    result = observatory("import", "sloth", "-n", "team-a", "-", stdin=BOMB.encode())
    assert result.returncode == 1
    assert result.stderr.decode().startswith("-: refused: more than 200000 YAML nodes")


def test_unreadable_file_and_bad_flags_are_clear_errors(tmp_path):
    missing = observatory("import", "sloth", "-n", "team-a", str(tmp_path / "nope.yml"))
    assert (missing.returncode, missing.stderr.decode()) == (1, f"{tmp_path / 'nope.yml'}: cannot read: No such file or directory\n")
    spec = tmp_path / "ok.yml"
    spec.write_text("version: prometheus/v1\nservice: s\nslos: []\n")
    namespace = observatory("import", "sloth", "-n", "Team_A", str(spec))
    assert namespace.returncode == 1 and namespace.stderr.decode().startswith("--namespace: 'Team_A': String should match pattern")
    window = observatory("import", "sloth", "-n", "team-a", "--window", "365d", str(spec))
    assert window.returncode == 1
    assert window.stderr.decode() == "--window: 365d is not between 7d and 90d, the SLO windows Observatory supports\n"


def test_documents_of_the_wrong_shape_are_reported_not_crashed_on(tmp_path):
    path = tmp_path / "odd.yml"
    path.write_text("- a list\n---\nversion: prometheus/v1\nservice: [not, a, string]\nslos: {a: b}\n---\n"
                    "version: prometheus/v1\nservice: s\nlabels: {1: x, ok: 2}\nslos:\n- 7\n- {name: n, objective: .nan}\n")
    result = observatory("import", "sloth", "-n", "team-a", str(path))
    stderr = result.stderr.decode()
    assert result.returncode == 2 and result.stdout.strip() in (b"", b"[]"), stderr
    assert "Traceback" not in stderr
    lines = [line.removeprefix(f"{path}: ") for line in stderr.splitlines()]
    assert "document 1: not a Sloth document (version: prometheus/v1, or apiVersion: sloth.slok.dev/v1 with kind: " \
           "PrometheusServiceLevel); for OpenSLO use `observatory import openslo`" in lines
    assert "document 2: service: must be a string, got list" in lines
    assert "document 2: slos: must be a list; ignored" in lines
    assert "document 3: labels: must be a mapping with string keys; ignored" in lines
    assert "document 3: slos[0]: must be a mapping with string keys; ignored" in lines
    assert "document 3: slos[1].objective: must be a finite number, got nan" in lines
