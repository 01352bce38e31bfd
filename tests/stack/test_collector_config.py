"""The collector config the real chart renders, checked against the otelcol-contrib 0.158.0 distribution the
chart runs (`../shared/upstream/otelcol/otelcol-contrib-0.158.0-manifest.yaml`; issue 12 scope D and item 10).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from real_charts import render_stack
from test_real_charts import STACKS, _stack

# type → (module, signals) from each component's metadata.yaml (`type`, `status.stability`). Collector core at
# tag v0.158.0 (open-telemetry/opentelemetry-collector, e.g. exporter/otlpexporter/metadata.yaml: type otlp_grpc,
# deprecated_type otlp); contrib modules as stored in open-telemetry/opentelemetry-collector-contrib
# (processor/deltatocumulativeprocessor, connector/sumconnector, ...). Connectors list their
# `<exporter signal>_to_<receiver signal>` pairs. Deprecated type names are left out: they are aliases
# due for removal.
ALL = ("traces", "metrics", "logs")
COMPONENTS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "receivers": {"otlp": ("otlpreceiver", ALL), "jaeger": ("jaegerreceiver", ("traces",)),
                  "zipkin": ("zipkinreceiver", ("traces",)), "prometheus": ("prometheusreceiver", ("metrics",))},
    "processors": {"memory_limiter": ("memorylimiterprocessor", ALL), "batch": ("batchprocessor", ALL),
                   "transform": ("transformprocessor", ALL), "filter": ("filterprocessor", ALL),
                   "resource": ("resourceprocessor", ALL), "deltatocumulative": ("deltatocumulativeprocessor", ("metrics",))},
    "exporters": {"otlp_grpc": ("otlpexporter", ALL), "otlp_http": ("otlphttpexporter", ALL),
                  "debug": ("debugexporter", ALL), "prometheus": ("prometheusexporter", ("metrics",))},
    "connectors": {"forward": ("forwardconnector", ("traces_to_traces", "metrics_to_metrics", "logs_to_logs")),
                   # Later contrib sources name it span_metrics (deprecated_type spanmetrics); the stored sources
                   # do not show which name v0.158.0 has, and the collector accepts both.
                   "spanmetrics": ("spanmetricsconnector", ("traces_to_metrics",)),
                   "sum": ("sumconnector", ("traces_to_metrics", "metrics_to_metrics", "logs_to_metrics"))},
    "extensions": {"health_check": ("healthcheckextension", ()), "basicauth": ("basicauthextension", ())},
}
# Components that emit delta sums: sum.go appendMetricsTo sets AggregationTemporalityDelta (spanmetrics emits
# cumulative by default). An OTLP receiver passes on whatever temporality the app chose.
DELTA_SOURCES = {"sum", "otlp"}


@pytest.fixture(scope="module")
def distribution(upstream_dir: Path) -> set[str]:
    manifest = yaml.safe_load((upstream_dir / "otelcol" / "otelcol-contrib-0.158.0-manifest.yaml").read_text())
    return {entry["gomod"].split()[0].rsplit("/", 1)[1] for section in COMPONENTS for entry in manifest[section]}


def rendered_config(helm: Path, upstream_dir: Path, key: str) -> dict[str, Any]:
    st = _stack(key)
    _, objects = render_stack(helm, upstream_dir, st)["collector"]
    (cm,) = [o for o in objects if o["kind"] == "ConfigMap"]
    return yaml.safe_load(cm["data"]["relay"])


def _type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def config_problems(config: dict[str, Any], distribution: set[str]) -> list[str]:
    problems = []
    for section, known in COMPONENTS.items():
        for component_id in config.get(section) or {}:
            entry = known.get(_type(component_id))
            if entry is None:
                problems.append(f"{section}.{component_id}: type not in the table (or a deprecated name)")
            elif entry[0] not in distribution:
                problems.append(f"{section}.{component_id}: {entry[0]} is not in otelcol-contrib 0.158.0")
    service = config["service"]
    pipelines = service["pipelines"]
    used: dict[str, set[str]] = {section: set() for section in COMPONENTS}
    connector_sides: dict[str, dict[str, set[str]]] = {}
    for name, pipeline in pipelines.items():
        signal = _type(name)
        for role in ("receivers", "processors", "exporters"):
            for component_id in pipeline.get(role) or []:
                is_connector = role != "processors" and component_id in (config.get("connectors") or {})
                section = "connectors" if is_connector else role
                used[section].add(component_id)
                if component_id not in (config.get(section) or {}):
                    problems.append(f"pipeline {name}: {role} {component_id} is not defined")
                    continue
                if is_connector:
                    connector_sides.setdefault(component_id, {"exporters": set(), "receivers": set()})[role].add(signal)
                    continue
                signals = COMPONENTS[section].get(_type(component_id), ("", ()))[1]
                if signal not in signals:
                    problems.append(f"pipeline {name}: {component_id} does not support {signal}")
    for connector, sides in connector_sides.items():
        pairs = COMPONENTS["connectors"].get(_type(connector), ("", ()))[1]
        if not sides["exporters"] or not sides["receivers"]:
            problems.append(f"connector {connector}: used on one side only")
        for out in sides["exporters"]:
            for into in sides["receivers"]:
                if f"{out}_to_{into}" not in pairs:
                    problems.append(f"connector {connector}: {out} to {into} is not supported")
    used["extensions"] = set(service.get("extensions") or [])
    for section in COMPONENTS:
        for component_id in config.get(section) or {}:
            if component_id not in used[section]:
                problems.append(f"{section}.{component_id}: defined but unused")
    for ext in used["extensions"] - set(config.get("extensions") or {}):
        problems.append(f"service.extensions: {ext} is not defined")
    for exporter in (config.get("exporters") or {}).values():
        authenticator = ((exporter or {}).get("auth") or {}).get("authenticator")
        if authenticator and authenticator not in used["extensions"]:
            problems.append(f"authenticator {authenticator} is not a service extension")
    # Listeners of receivers, exporters and extensions, and the collector's own metrics reader.
    ports = [int(p) for p in re.findall(r"\$\{env:MY_POD_IP\}:(\d+)", yaml.safe_dump(config))]
    ports += [reader["pull"]["exporter"]["prometheus"]["port"]
              for reader in ((service.get("telemetry") or {}).get("metrics") or {}).get("readers", []) if "pull" in reader]
    if len(ports) != len(set(ports)):
        problems.append(f"listening ports collide: {sorted(ports)}")
    return problems


def delta_problems(config: dict[str, Any]) -> list[str]:
    """Pipelines where delta sums reach the prometheus exporter without deltatocumulative before it."""
    problems = []
    for name, pipeline in config["service"]["pipelines"].items():
        if _type(name) == "metrics" and "prometheus" in pipeline["exporters"] and DELTA_SOURCES & {_type(r) for r in pipeline["receivers"]} \
                and "deltatocumulative" not in pipeline.get("processors", []):
            problems.append(f"pipeline {name}: delta sums reach the prometheus exporter as the last delta")
    return problems


@pytest.mark.parametrize("key", list(STACKS))
def test_collector_config_fits_the_distribution(key, helm, upstream_dir, distribution) -> None:
    assert config_problems(rendered_config(helm, upstream_dir, key), distribution) == []


@pytest.mark.parametrize("key", list(STACKS))
def test_token_counters_are_cumulative_where_prometheus_reads_them(key, helm, upstream_dir) -> None:
    config = rendered_config(helm, upstream_dir, key)
    assert delta_problems(config) == []
    pipelines = config["service"]["pipelines"]
    # The ConfigMap tells apps OTEL_METRICS_EXPORTER=otlp: a metrics pipeline must take OTLP in, redacted.
    (otlp,) = [p for n, p in pipelines.items() if _type(n) == "metrics" and "otlp" in p["receivers"]]
    assert otlp["processors"][:2] == ["memory_limiter", "transform/redact"]
    assert config["processors"]["transform/redact"]["metric_statements"][0]["context"] == "datapoint"


def test_checks_catch_a_broken_config(distribution) -> None:
    config = {"receivers": {"otlp": {}}, "processors": {"batch": {}},
              "exporters": {"prometheus": {}, "otlp/old": {}, "otlp_http/x": {}},
              "connectors": {"sum": {}, "spanmetrics": {}},
              "extensions": {"basicauth/x": {}},
              "service": {"extensions": [], "pipelines": {
                  "traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["prometheus", "sum", "nope"]},
                  "metrics": {"receivers": ["sum", "otlp"], "exporters": ["prometheus", "spanmetrics"]}}}}
    config["receivers"]["otlp"] = {"protocols": {"grpc": {"endpoint": "${env:MY_POD_IP}:8888"}}}
    config["service"]["telemetry"] = {"metrics": {"readers": [{"pull": {"exporter": {"prometheus": {"port": 8888}}}}]}}
    assert config_problems(config, distribution) == [
        "exporters.otlp/old: type not in the table (or a deprecated name)",
        "pipeline traces: prometheus does not support traces",
        "pipeline traces: exporters nope is not defined",
        "connector spanmetrics: used on one side only",
        "exporters.otlp/old: defined but unused",
        "exporters.otlp_http/x: defined but unused",
        "extensions.basicauth/x: defined but unused",
        "listening ports collide: [8888, 8888]",
    ]
    assert delta_problems(config) == ["pipeline metrics: delta sums reach the prometheus exporter as the last delta"]


@pytest.mark.parametrize("key", list(STACKS))
def test_the_prometheus_endpoint_is_exposed_where_the_service_monitor_scrapes(key, helm, upstream_dir) -> None:
    _, objects = render_stack(helm, upstream_dir, _stack(key))["collector"]
    config = rendered_config(helm, upstream_dir, key)
    port = int(config["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1])
    by_kind = {o["kind"]: o for o in objects}
    (container,) = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"]
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    service_ports = {p["name"]: p["targetPort"] for p in by_kind["Service"]["spec"]["ports"]}
    (endpoint,) = by_kind["ServiceMonitor"]["spec"]["endpoints"]
    assert container_ports[endpoint["port"]] == port and service_ports[endpoint["port"]] == port
