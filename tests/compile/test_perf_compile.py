"""The compile core's fast paths give exactly what the slow ones they replace give."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from observatory.compile import compile_bundle
from observatory.compile.rules import _size
from observatory.loader import read

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("obj", [
    {}, [], {"a": []}, {"a": {}, "b": [[], [{}]], "c": [1, 2.5, None, True]},
    {"ünï": "cöde \"q\" \\ \n", "list": ["x", {"y": ["z", []]}]},
    ({"t": ("a", ("b",))}),
])
def test_size_is_the_length_of_indented_json(obj) -> None:
    assert _size(obj) == len(json.dumps(obj, indent=4).encode())


def test_size_of_every_rendered_example_is_the_length_of_its_indented_json() -> None:
    objects = compile_bundle([r for _, r in read([str(REPO / "examples")], None).resources])
    assert len(objects) >= 20
    for obj in objects:
        assert _size(obj) == len(json.dumps(obj, indent=4).encode()), obj["metadata"]["name"]
