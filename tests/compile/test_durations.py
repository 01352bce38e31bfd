"""Durations are accepted exactly when prometheus-operator's CRDs accept them (issue 12 item 6).

prometheus-operator's `Duration` type requires units largest first, each at most once
(`^(0|(([0-9]+)y)?(([0-9]+)w)?…(([0-9]+)ms)?)$`): a spec we call Valid must not get a 422 on the
PrometheusRule or AlertmanagerConfig it compiles to.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from observatory.models.common import Duration, duration_seconds
from pydantic import TypeAdapter, ValidationError
from upstream_crds import upstream_schema

CANDIDATES = ["30s", "5m", "1h30m", "90m", "1d", "2w", "1y", "1y2w3d4h5m6s7ms", "100ms", "1s500ms",
              "30s5m", "1m1m", "5m1h", "1ms1s", "1h1h", "0", "0s", "", "1", "m", "5M", "-5m", "1.5h", " 5m"]


def upstream_patterns(upstream_dir: Path) -> dict[str, str]:
    """Every duration pattern of the rule and Alertmanager CRDs, by the field it constrains."""
    patterns = {}
    for kind in ("PrometheusRule", "AlertmanagerConfig"):
        stack = [(kind, upstream_schema(upstream_dir, kind))]
        while stack:
            path, node = stack.pop()
            if isinstance(node, dict):
                if "ms)?" in str(node.get("pattern", "")):
                    patterns[path] = node["pattern"]
                stack += [(f"{path}.{k}", v) for k, v in node.items() if isinstance(v, (dict, list))]
            elif isinstance(node, list):
                stack += [(f"{path}[]", v) for v in node]
    return patterns


def accepted(text: str) -> bool:
    try:
        TypeAdapter(Duration).validate_python(text)
    except ValidationError:
        return False
    return True


def test_durations_are_accepted_exactly_as_prometheus_operator_accepts_them(upstream_dir: Path) -> None:
    patterns = upstream_patterns(upstream_dir)
    assert any(p.endswith("interval") for p in patterns) and any("groupWait" in p for p in patterns), patterns
    for field, pattern in sorted(patterns.items()):
        for text in CANDIDATES:
            upstream_ok = re.fullmatch(pattern.removeprefix("^").removesuffix("$"), text) is not None
            # Observatory's durations are also positive: "0", "0s" and "" are valid upstream, never here.
            assert accepted(text) == (upstream_ok and duration_seconds(text) > 0), (field, pattern, text)


@pytest.mark.parametrize("text", ["30s5m", "1m1m"])
def test_a_duration_out_of_unit_order_says_how_to_write_it(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        TypeAdapter(Duration).validate_python(text)
    assert "largest unit first" in str(info.value)
