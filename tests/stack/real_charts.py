"""Render the real upstream charts (`../shared/upstream/charts/packaged/`) with the values `release_plans()` gives.

`helm template` runs the charts' own templates offline, so tests see exactly the objects `helm install`
would send to the API server for a stack. Test hooks are skipped: the operator never runs `helm test`.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from observatory.compile.stack import ReleasePlan, release_plans
from observatory.compile.stackclass import resolve_class
from observatory.models.stack import ObservabilityStack

PACKAGED = {"phoenix": "phoenix-helm-12.0.4.tgz", "langfuse": "langfuse-2.0.0.tgz",
            "collector": "opentelemetry-collector-0.170.0.tgz"}
# The Langfuse chart renders its ClickHouse objects only when the ClickHouse operator's API is served;
# the collector's ServiceMonitor only when prometheus-operator's is.
# The ObservabilityStackClasses the case files declare, by name: a case stack renders under its class.
CASE_CLASSES = {d["metadata"]["name"]: d for path in sorted((Path(__file__).parent / "cases").glob("*.yaml"))
                for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == "ObservabilityStackClass"}
API_VERSIONS = ("clickhouse.com/v1alpha1/ClickHouseCluster", "clickhouse.com/v1alpha1/KeeperCluster",
                "monitoring.coreos.com/v1/ServiceMonitor")


def helm_template(helm: Path, upstream: Path, plan: ReleasePlan) -> list[dict[str, Any]]:
    """The objects the packaged upstream chart renders for one release plan."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values:
        yaml.safe_dump(plan.values, values)
        values.flush()
        args = [str(helm), "template", plan.name, str(upstream / "charts" / "packaged" / PACKAGED[plan.component]),
                "--namespace", plan.namespace, "--skip-tests", "--values", values.name]
        for api in API_VERSIONS:
            args += ["--api-versions", api]
        result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"helm template {plan.component}: {result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def _render(helm: Path, upstream: Path, stack_json: str) -> dict[str, tuple[ReleasePlan, list[dict[str, Any]]]]:
    stack = ObservabilityStack.model_validate_json(stack_json)
    plans = release_plans(stack, stack_class=resolve_class(stack, CASE_CLASSES))
    return {plan.component: (plan, helm_template(helm, upstream, plan)) for plan in plans}


def render_stack(helm: Path, upstream: Path, stack: ObservabilityStack) -> dict[str, tuple[ReleasePlan, list[dict[str, Any]]]]:
    """Plan and rendered objects by component (cached: each chart renders in about a second)."""
    return _render(helm, upstream, stack.model_dump_json(by_alias=True, exclude_none=True))


class UpstreamLoader(yaml.SafeLoader):
    """Upstream CRDs contain `=` as a plain scalar, which PyYAML's safe loader reads as the `value` tag."""


UpstreamLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def pod_specs(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The pod spec(s) an object creates pods from."""
    spec = obj.get("spec") or {}
    if obj["kind"] == "Pod":
        yield spec
    elif obj["kind"] == "CronJob":
        yield spec["jobTemplate"]["spec"]["template"]["spec"]
    elif obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        yield spec["template"]["spec"]
