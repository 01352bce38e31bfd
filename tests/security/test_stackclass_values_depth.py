"""Tenant Helm values nested deeper than any chart needs are refused at the model, naming the field:
every walk over them (deny list, ceilings, schema checks) is recursive, and a tree past Python's
recursion limit would make the stack's handler fail on every retry without a status."""

from __future__ import annotations

import pytest
from observatory.compile.errors import CompileError
from observatory.models import parse_resource


def stack_with_values(depth: int) -> dict:
    values: dict = {"leaf": 1}
    for _ in range(depth - 1):
        values = {"a": values}
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStack",
            "metadata": {"name": "s", "namespace": "team-a"}, "spec": {"collector": {"values": {"podLabels": values}}}}


def test_values_as_deep_as_charts_use_are_accepted():
    parse_resource(stack_with_values(31))


@pytest.mark.parametrize("depth", [33, 3000])
def test_deeper_values_are_refused_naming_the_field(depth):
    with pytest.raises(CompileError) as refused:
        parse_resource(stack_with_values(depth))
    message = str(refused.value)
    assert "spec.collector.values: values are nested deeper than 32 levels" in message
