"""Sloth's SLO specs → Observatory SLOs.

Both forms Sloth publishes (github:slok/sloth, v0.16): the `prometheus/v1` spec
(pkg/prometheus/api/v1/v1.go, snake_case keys) and the Kubernetes CRD `sloth.slok.dev/v1`
PrometheusServiceLevel (pkg/kubernetes/api/sloth/v1/types.go, the same fields in camelCase). Both
are percentages like Observatory's objective; the spec has no period (Sloth's
`--default-slo-period`, 30d, here `window`). Each SLO becomes `<service>-<name>`; its alerting
name names both tiers (Sloth tells them apart by a label, as Observatory does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, get_args

from pydantic import ValidationError

from ..compile.alertrule import reserved_labels
from ..conventions import Conventions
from ..models.common import Annotations, Severity
from ..models.slo import DEFAULT_TIER_SEVERITY, AlertTier
from . import queries
from .common import (
    MAX_DESCRIPTION,
    Collector,
    Problem,
    Reader,
    Result,
    Source,
    dns_name,
    documents,
    join,
    namespace_problem,
    percentage,
    slo_document,
    window_problem,
)

SPEC_VERSION = "prometheus/v1"
CRD_API_VERSION = "sloth.slok.dev/v1"
CRD_KIND = "PrometheusServiceLevel"
DEFAULT_WINDOW = "30d"  # Sloth's --default-slo-period (cmd/sloth/commands/generate.go)
SEVERITIES = get_args(Severity)
# Sloth's alert annotations that have an Observatory field; `runbook` is what Sloth's examples use.
_C = Conventions()
# Labels the compile core reserves (it refuses them); a tier's severity label maps to its severity.
RULE_LABELS = tuple(reserved_labels(_C))
ALERT_LABELS = tuple(name for name in RULE_LABELS if name != _C.severity_label)
ANNOTATION_FIELDS = {"summary": "summary", "description": "description", "runbook_url": "runbookUrl", "runbook": "runbookUrl"}

Keys = Callable[[str], str]


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def _snake(name: str) -> str:
    return name


def import_sloth(sources: Iterable[Source], namespace: str | None = None, window: str = DEFAULT_WINDOW) -> Result:
    collector = Collector()
    problems = collector.result.problems
    if (bad_namespace := namespace_problem(namespace)) is not None:
        problems.append(bad_namespace)
        return collector.result
    if (why := window_problem(window)) is not None:
        problems.append(Problem("--window", 0, "", why, fatal=True))
        return collector.result
    for source in sources:
        docs, read_problems = documents(source)
        problems.extend(read_problems)
        for index, data in enumerate(docs, 1):
            _document(Reader(source.name, index, problems), data, namespace, window, collector)
    return collector.result


def _document(reader: Reader, data: Any, namespace: str | None, window: str, collector: Collector) -> None:
    if isinstance(data, dict) and data.get("apiVersion") == CRD_API_VERSION and data.get("kind") == CRD_KIND:
        reader.unknown(data, "", ("apiVersion", "kind", "metadata", "spec", "status"))
        metadata = reader.mapping(data.get("metadata"), "metadata")
        for key in ("labels", "annotations"):
            if metadata.get(key):
                reader.report(join("metadata", key), "not carried over to the imported SLOs")
        namespace = namespace or reader.string(metadata.get("namespace"), "metadata.namespace")
        spec, base, key = reader.mapping(data.get("spec"), "spec"), "spec", _camel
        reader.unknown(spec, base, map(key, ("service", "labels", "slo_plugins", "slos")))
    elif isinstance(data, dict) and data.get("version") == SPEC_VERSION:
        spec, base, key = data, "", _snake
        reader.unknown(spec, base, ("version", "service", "labels", "slo_plugins", "slos"))
    else:
        reader.report("", f"not a Sloth document (version: {SPEC_VERSION}, or apiVersion: {CRD_API_VERSION} with kind: "
                          f"{CRD_KIND}); for OpenSLO use `observatory import openslo`")
        return
    if not namespace:
        reader.report("", "no namespace for its SLOs: pass --namespace", fatal=True)
        return
    service = reader.string(spec.get("service"), join(base, "service"), required=True)
    labels = reader.labels(spec.get("labels"), join(base, "labels"), RULE_LABELS)
    _plugins(reader, spec.get(key("slo_plugins")), join(base, key("slo_plugins")))
    slos = reader.sequence(spec.get("slos"), join(base, "slos"))
    if not slos:
        reader.report(join(base, "slos"), "no SLOs to import")
    for i, slo in enumerate(slos if service else []):
        _slo(reader, slo, join(join(base, "slos"), i), service, labels, key, namespace, window, collector)


def _plugins(reader: Reader, value: Any, path: str) -> None:
    if value:
        reader.report(path, "SLO plugins are not expressible: Observatory generates every rule itself; not imported")


def _slo(reader: Reader, value: Any, path: str, service: str, service_labels: dict[str, str], key: Keys,
         namespace: str, window: str, collector: Collector) -> None:
    slo = reader.mapping(value, path)
    reader.unknown(slo, path, map(key, ("name", "description", "objective", "plugins", "labels", "sli", "alerting")))
    raw_name = reader.string(slo.get("name"), join(path, "name"), required=True)
    name = dns_name(reader, f"{service}-{raw_name}", join(path, "name")) if raw_name else None
    objective = _objective(reader, slo.get("objective"), join(path, "objective"))
    indicator = _sli(reader, slo.get("sli"), join(path, "sli"), key)
    _plugins(reader, slo.get("plugins"), join(path, "plugins"))
    if name is None or objective is None or indicator is None:
        reader.report(path, "SLO not imported")
        return
    spec: dict[str, Any] = {}
    if description := reader.string(slo.get("description"), join(path, "description")):
        if len(description) > MAX_DESCRIPTION:
            reader.report(join(path, "description"), f"longer than {MAX_DESCRIPTION} characters; cut")
        spec["description"] = description[:MAX_DESCRIPTION]
    spec.update(objective=objective, window=window, indicator=indicator[0])
    if indicator[1]:
        spec["groupBy"] = indicator[1]
    if alerting := _alerting(reader, slo.get("alerting"), join(path, "alerting"), key):
        spec["alerting"] = alerting
    if labels := {**service_labels, **reader.labels(slo.get("labels"), join(path, "labels"), RULE_LABELS)}:
        spec["labels"] = labels
    collector.add(reader, path, slo_document(name, namespace, spec))


def _objective(reader: Reader, value: Any, path: str) -> float | None:
    objective = reader.number(value, path)
    if objective is not None and not 0 < objective < 100:
        reader.report(path, f"{objective:g} is not a percentage above 0 and below 100 (100 leaves no error budget)")
        return None
    return None if objective is None else percentage(objective)


def _sli(reader: Reader, value: Any, path: str, key: Keys) -> tuple[dict[str, Any], list[str]] | None:
    sli = reader.mapping(value, path)
    reader.unknown(sli, path, ("raw", "events", "plugin"))
    kinds = [k for k in ("raw", "events", "plugin") if sli.get(k) is not None]
    if len(kinds) != 1:
        reader.report(path, f"set exactly one of raw, events, plugin (got {', '.join(kinds) or 'none'})")
        return None
    if kinds == ["plugin"]:
        plugin = reader.mapping(sli["plugin"], join(path, "plugin"))
        reader.report(join(path, "plugin"), f"SLI plugin {plugin.get('id')!r} is not expressible: Observatory has no SLI "
                                            "plugins; write the queries the plugin generates as sli.events")
        return None
    if kinds == ["raw"]:
        reader.report(join(join(path, "raw"), key("error_ratio_query")),
                      "a precomputed error ratio is not expressible: Observatory's indicators count bad and all events "
                      "(ratio: two counters; latency: a histogram); write it as sli.events with error and total queries")
        return None
    events_path = join(path, "events")
    events = reader.mapping(sli["events"], events_path)
    reader.unknown(events, events_path, map(key, ("error_query", "total_query")))
    error_path, total_path = join(events_path, key("error_query")), join(events_path, key("total_query"))
    errors = reader.string(events.get(key("error_query")), error_path, required=True)
    total = reader.string(events.get(key("total_query")), total_path, required=True)
    if errors is None or total is None:
        return None
    try:
        total_counter = queries.counter(queries.parse(total))
    except queries.NotExpressible as err:
        reader.report(total_path, str(err))
        return None
    if not total_counter.aggregated:
        reader.report(total_path, "is not summed: Observatory sums the SLO's series (by the labels of groupBy)")
    try:
        return queries.bad_events(queries.parse(errors), total_counter)
    except queries.NotExpressible as err:
        reader.report(error_path, str(err))
        return None


def _alerting(reader: Reader, value: Any, path: str, key: Keys) -> dict[str, Any]:
    alerting = reader.mapping(value, path)
    reader.unknown(alerting, path, map(key, ("name", "labels", "annotations", "page_alert", "ticket_alert")))
    name = reader.string(alerting.get("name"), join(path, "name"))
    if name is not None and _invalid(AlertTier, {"name": name}, reader, join(path, "name")):
        name = None
    common_labels = reader.labels(alerting.get("labels"), join(path, "labels"), ALERT_LABELS)
    common_annotations = _annotations(reader, alerting.get("annotations"), join(path, "annotations"))
    tiers = {}
    for tier, field in (("page", "page_alert"), ("ticket", "ticket_alert")):
        tier_path = join(path, key(field))
        alert = reader.mapping(alerting.get(key(field)), tier_path)
        reader.unknown(alert, tier_path, ("disable", "labels", "annotations"))
        out: dict[str, Any] = {}
        if reader.flag(alert.get("disable"), join(tier_path, "disable")):
            out["enabled"] = False
        if name:
            out["name"] = name
        tier_labels = reader.labels(alert.get("labels"), join(tier_path, "labels"), ALERT_LABELS)
        labels = {**common_labels, **tier_labels}
        if (severity := labels.pop("severity", None)) is not None:
            if severity in SEVERITIES:
                out["severity"] = severity
            else:
                reader.report(join(join(tier_path if "severity" in tier_labels else path, "labels"), "severity"),
                              f"{severity!r} is not an Observatory severity ({', '.join(SEVERITIES)}); the {tier} alert keeps "
                              f"severity {DEFAULT_TIER_SEVERITY[tier]}: route on its other labels instead")
        if labels:
            out["labels"] = labels
        if annotations := {**common_annotations, **_annotations(reader, alert.get("annotations"), join(tier_path, "annotations"))}:
            out["annotations"] = annotations
        if out:
            tiers[tier] = out
    return tiers


def _annotations(reader: Reader, value: Any, path: str) -> dict[str, str]:
    out = {}
    for name, text in reader.mapping(value, path).items():
        where = join(path, name)
        target = ANNOTATION_FIELDS.get(name)
        if target is None:
            reader.report(where, "not expressible: Observatory's alerts carry summary, description and runbook_url "
                                 "annotations only; not imported")
        elif (text := reader.string(text, where)) is not None and not _invalid(Annotations, {target: text}, reader, where):
            if name == "runbook":
                reader.report(where, "imported as the runbook_url annotation")
            out[target] = text
    return out


def _invalid(model: type, data: dict[str, Any], reader: Reader, path: str) -> bool:
    """Whether `data` fails the model's own checks (reported, the value left out)."""
    try:
        model.model_validate(data)
    except ValidationError as err:
        reader.report(path, f"{err.errors()[0]['msg']}; not imported, Observatory's default used")
        return True
    return False
