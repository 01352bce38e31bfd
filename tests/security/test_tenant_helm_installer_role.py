"""The installer ClusterRole grants exactly what the real charts need inside one namespace.

The packaged Phoenix, Langfuse and OpenTelemetry Collector charts are rendered (`helm template`,
tests/stack/real_charts.py) with the values every example stack gives them; the kinds they render,
plus helm's own release records (Secrets) and the Namespace helm reads while running a hook, are
the installer's resources — no more (a kind dropped from the charts must leave the role), no fewer
(a kind the charts add fails here before it fails with 403 in a cluster).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from observatory.models import parse_resource
from observatory.rbac import INSTALLER_PERMISSIONS, MANAGE
from stack.real_charts import UpstreamLoader, render_stack

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "stacks").glob("*.yaml"))
# Not rendered by any chart, needed by helm itself (see their reasons in observatory.rbac).
HELM_ITSELF = {("", "secrets"), ("", "namespaces")}
# Not rendered by any chart: the stack reconcile's own object, written as the installer.
OPERATOR_ITSELF = {("opentelemetry.io", "instrumentations")}


def plurals(upstream_dir: Path) -> dict[tuple[str, str], str]:
    """(group, kind) -> plural of the upstream CRDs."""
    out = {}
    for path in sorted((upstream_dir / "crds").glob("*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=UpstreamLoader):
            if crd:
                out[(crd["spec"]["group"], crd["spec"]["names"]["kind"])] = crd["spec"]["names"]["plural"]
    return out


def test_the_installer_role_is_what_the_real_charts_render(helm, upstream_dir):
    crd_plurals = plurals(upstream_dir)
    rendered: set[tuple[str, str]] = set()
    for example in EXAMPLES:
        stack = parse_resource(yaml.safe_load(example.read_text()))
        for _plan, objects in render_stack(helm, upstream_dir, stack).values():
            for obj in objects:
                group = obj["apiVersion"].rpartition("/")[0]
                # Built-in kinds rendered here all pluralise with "s" (Deployment, Service, ...).
                rendered.add((group, crd_plurals.get((group, obj["kind"]), obj["kind"].lower() + "s")))
    granted = {(p.group, p.resource) for p in INSTALLER_PERMISSIONS}
    assert granted == rendered | HELM_ITSELF | OPERATOR_ITSELF
    # Everything a chart renders is installed, upgraded, pruned and uninstalled: the full set of verbs.
    assert all(p.verbs == MANAGE for p in INSTALLER_PERMISSIONS if (p.group, p.resource) in rendered)
