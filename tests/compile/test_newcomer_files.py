"""Bad files end in exit 0 or 1 with FILE: messages, never a traceback or a hang (`observatory validate`).

Each case runs the CLI as a user does, in its own process, so a crash, a RecursionError or a hang shows
as what it is. Time limits are on the process's CPU time, which a busy machine does not inflate.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from observatory.loader import read

REPO = Path(__file__).resolve().parents[2]
SLO = ("apiVersion: observatory.dev/v1alpha1\nkind: SLO\nmetadata: {name: chat, namespace: team-a}\n"
       "spec:\n  objective: 99.5\n  indicator: {llm: {preset: availability}}\n")


def validate(path: Path, timeout: float = 120) -> tuple[int, str, str, float]:
    """Exit code, stdout, stderr and CPU seconds of `observatory validate -f PATH`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run([sys.executable, "-m", "observatory", "validate", "-f", str(path)], cwd=REPO,
                            capture_output=True, text=True, timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result.returncode, result.stdout, result.stderr, cpu


def alias_bomb() -> str:
    """Billion laughs: 9 ** 9 strings from 10 short lines, reached from a field the model walks."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "lols:\n" + "".join(f"  {line}\n" for line in lines) + SLO + "  labels: {bomb: *a9}\n"


def nested_values(depth: int) -> str:
    return SLO + "  labels: " + "{a: " * depth + "x" + "}" * depth + "\n"


# (case, file bytes, exit code, words the FILE: message must contain)
CASES = [
    ("not-utf8", SLO.replace("99.5", "\xff").encode("latin-1"), 1, ["not UTF-8", "line 5", "save the file as UTF-8"]),
    ("utf16", SLO.encode("utf-16"), 1, ["UTF-16", "save the file as UTF-8"]),
    ("utf8-bom", b"\xef\xbb\xbf" + SLO.encode(), 0, []),
    ("control-character", SLO.replace("chat,", "ch\x01at,").encode(), 1, ["control character", "line 3"]),
    ("nul-byte", SLO.encode() + b"\x00\n", 1, ["control character"]),
    ("alias-bomb", alias_bomb().encode(), 1, ["aliases"]),
    ("deep-flow-nesting", ("a: " + "[" * 5000 + "]" * 5000 + "\n").encode(), 1, ["nested"]),
    ("deep-block-nesting", "".join("  " * i + "a:\n" for i in range(900)).encode(), 1, ["nested"]),
    ("deep-values", nested_values(200).encode(), 1, ["nested"]),
    ("duplicate-key", SLO.replace("  objective: 99.5\n", "  objective: 99.5\n  objective: 99.9\n").encode(), 1,
     ['line 6: key "objective" already set in map']),
    ("duplicate-key-nested", SLO.replace("preset: availability}", "preset: availability, preset: latency}").encode(), 1,
     ['key "preset" already set in map']),
    ("syntax-error", SLO.replace("{llm:", "{llm: [").encode(), 1, ["not valid YAML", "line 6"]),
    ("not-a-mapping", b"- 1\n- 2\n", 1, ["document 1 is not a mapping"]),
    ("metadata-not-a-mapping", SLO.replace("{name: chat, namespace: team-a}", "[chat]").encode(), 1, ["metadata"]),
]


@pytest.mark.parametrize("data, code, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_file_ends_in_a_file_message(tmp_path: Path, data: bytes, code: int, words: list[str]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(data)
    returncode, out, err, _ = validate(path)
    assert "Traceback" not in err, err
    assert returncode == code, err
    if code:
        first = err.splitlines()[0]
        assert first.startswith(f"{path}: "), err
        for word in words:
            assert word in first, first
    else:
        assert out == "1 resource(s) valid\n", (out, err)


def test_an_endless_input_is_cut_off(tmp_path: Path) -> None:
    """`-f /dev/zero` (or any file past 64 MiB) ends with a FILE: message, not by filling memory."""
    returncode, _, err, _ = validate(Path("/dev/zero"))
    assert (returncode, err.splitlines()[0]) == (1, "/dev/zero: larger than 64 MiB: split it into several files"), err


def test_ten_thousand_documents_in_five_cpu_seconds(tmp_path: Path) -> None:
    """Reading and classifying 10,000 documents, end to end through the CLI (a folder of manifests)."""
    path = tmp_path / "many.yaml"
    config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: NAME, namespace: team-a}\ndata: {a: b, c: d}\n"
    path.write_text("".join("---\n" + config_map.replace("NAME", f"cm-{i}") for i in range(10_000)))
    returncode, out, err, cpu = validate(path)
    assert (returncode, out) == (0, "0 resource(s) valid\n"), err[-2000:]
    assert "skipped 10000 document(s)" in err
    print(f"10,000 documents: {cpu:.2f} CPU seconds")
    assert cpu <= 5, f"{cpu:.2f} CPU seconds"


def test_ten_thousand_slos_are_read_and_validated_in_five_cpu_seconds(tmp_path: Path) -> None:
    """YAML and the models for 10,000 SLOs; compiling them is the compile core's cost (bench/RESULTS.md)."""
    path = tmp_path / "many.yaml"
    path.write_text("".join("---\n" + SLO.replace("name: chat", f"name: chat-{i}") for i in range(10_000)))
    start = time.process_time()
    loaded = read([str(path)], None)
    cpu = time.process_time() - start
    assert (len(loaded.resources), loaded.problems) == (10_000, [])
    print(f"10,000 SLOs read: {cpu:.2f} CPU seconds")
    assert cpu <= 5, f"{cpu:.2f} CPU seconds"


def test_a_twenty_megabyte_file_in_five_cpu_seconds(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    padding = "x" * 1000
    config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n" + "".join(
        f"  k{i}: {padding}\n" for i in range(20_000))
    path.write_text(SLO + "---\n" + config_map)
    assert path.stat().st_size > 20_000_000
    returncode, out, err, cpu = validate(path)
    assert (returncode, out) == (0, "1 resource(s) valid\n"), err[-2000:]
    print(f"20 MB file: {cpu:.2f} CPU seconds")
    assert cpu <= 5, f"{cpu:.2f} CPU seconds"
