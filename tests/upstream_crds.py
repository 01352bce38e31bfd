"""The upstream prometheus-operator CRDs' schemas, as tests read them from the upstream directory."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

FILES = {"PrometheusRule": ("monitoring.coreos.com_prometheusrules.yaml", "v1"),
         "AlertmanagerConfig": ("monitoring.coreos.com_alertmanagerconfigs.yaml", "v1alpha1")}


class UpstreamLoader(yaml.SafeLoader):
    """YAML 1.1 reads a bare `=` (a matchType enum value upstream) as the obscure `value` type."""


UpstreamLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


@functools.cache
def upstream_schema(upstream_dir: Path, kind: str) -> dict:
    """The openAPIV3Schema of `kind` at the version Observatory writes."""
    file_name, version = FILES[kind]
    crd = yaml.load((upstream_dir / "crds" / file_name).read_text(), Loader=UpstreamLoader)
    return next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]
