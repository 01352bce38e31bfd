"""OpenSLO v1 SLOs → Observatory SLOs.

The format of github:OpenSLO/OpenSLO README.md, `apiVersion: openslo/v1`: an `SLO` with an inline
`indicator` or an `indicatorRef` to an `SLI` document of the same files; its `ratioMetric` (good or
bad over total) or `thresholdMetric` with a Prometheus `metricSource` (its `spec.query`, directly
or through a `DataSource` of type Prometheus). Observatory counts events over a rolling window, so
Occurrences budgeting and rolling windows map; Timeslices, RatioTimeslices and calendar windows do
not. The target is a ratio (0–1) there, a percentage here. Each objective becomes an SLO, named after
the SLO (and the objective when there are several).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

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

API_VERSION = "openslo/v1"
DEFAULT_WINDOW = "30d"
# OpenSLO's duration-shorthand (README "duration-shorthand"): m, h, d, w map as they are; months,
# quarters and years have no fixed length and are taken as 30, 90 and 365 days, reported.
SHORTHAND = re.compile(r"^([0-9]{1,6})([mhdwMQY])$")
CALENDAR_DAYS = {"M": 30, "Q": 90, "Y": 365}
NOT_IMPORTED_KINDS = {
    "AlertPolicy": "alert policies are not imported: Observatory alerts with its page and ticket burn-rate tiers",
    "AlertCondition": "alert conditions are not imported: Observatory alerts with its page and ticket burn-rate tiers",
    "AlertNotificationTarget": "notification targets are not imported: route the alerts with the SLO's spec.routing",
    "Service": "services are not imported: an Observatory SLO stands alone in its namespace",
}


def import_openslo(sources: Iterable[Source], namespace: str | None = None) -> Result:
    collector = Collector()
    problems = collector.result.problems
    if (bad_namespace := namespace_problem(namespace)) is not None:
        problems.append(bad_namespace)
        return collector.result
    parsed: list[tuple[Reader, dict[str, Any]]] = []
    for source in sources:
        docs, read_problems = documents(source)
        problems.extend(read_problems)
        for index, data in enumerate(docs, 1):
            reader = Reader(source.name, index, problems)
            if not isinstance(data, dict) or data.get("apiVersion") != API_VERSION:
                version = data.get("apiVersion") if isinstance(data, dict) else None
                reader.report("apiVersion", f"not an OpenSLO {API_VERSION} document (got {version!r}); not imported")
            else:
                parsed.append((reader, data))
    if not namespace:
        problems.append(Problem("--namespace", 0, "", "OpenSLO documents have no namespace: pass --namespace", fatal=True))
        return collector.result
    catalogue = _Catalogue(parsed)
    for reader, data in parsed:
        kind = data.get("kind")
        if kind == "SLO":
            _slo(reader, data, namespace, catalogue, collector)
        elif kind in NOT_IMPORTED_KINDS:
            reader.report("kind", NOT_IMPORTED_KINDS[kind])
        elif kind not in ("SLI", "DataSource"):
            reader.report("kind", f"unknown OpenSLO kind {kind!r}; not imported")
    for name, (reader, _) in catalogue.slis.items():
        if name not in catalogue.used:
            reader.report("metadata.name", f"SLI {name!r} is not referenced by any SLO; nothing imported from it")
    return collector.result


class _Catalogue:
    """The SLI and DataSource documents, by name, that SLOs refer to."""

    def __init__(self, parsed: list[tuple[Reader, dict[str, Any]]]):
        self.slis: dict[str, tuple[Reader, dict[str, Any]]] = {}
        self.sources: dict[str, Any] = {}
        self.used: set[str] = set()
        for reader, data in parsed:
            name = (data.get("metadata") or {}).get("name") if isinstance(data.get("metadata"), dict) else None
            if data.get("kind") == "SLI" and isinstance(name, str):
                self.slis.setdefault(name, (reader, data))
            elif data.get("kind") == "DataSource" and isinstance(name, str):
                spec = data.get("spec") if isinstance(data.get("spec"), dict) else {}
                self.sources.setdefault(name, spec.get("type"))


def _slo(reader: Reader, data: dict[str, Any], namespace: str, catalogue: _Catalogue, collector: Collector) -> None:
    reader.unknown(data, "", ("apiVersion", "kind", "metadata", "spec"))
    metadata = reader.mapping(data.get("metadata"), "metadata")
    for key in sorted(set(metadata) & {"displayName", "labels", "annotations"}):
        reader.report(join("metadata", key), "not carried over to the imported SLO")
    raw_name = reader.string(metadata.get("name"), "metadata.name", required=True)
    spec = reader.mapping(data.get("spec"), "spec")
    reader.unknown(spec, "spec", ("description", "service", "indicator", "indicatorRef", "timeWindow", "budgetingMethod",
                                  "objectives", "alertPolicies"))
    if spec.get("service") is not None:
        reader.report("spec.service", "not carried over: an Observatory SLO is known by its name and namespace")
    for i, _policy in enumerate(reader.sequence(spec.get("alertPolicies"), "spec.alertPolicies")):
        reader.report(join("spec.alertPolicies", i), "not imported: Observatory alerts with its page and ticket burn-rate "
                                                     "tiers; set spec.alerting on the imported SLO")
    window = _window(reader, spec.get("timeWindow"))
    budgeting = _budgeting(reader, spec.get("budgetingMethod"))
    sli = _indicator(reader, spec, catalogue)
    objectives = reader.sequence(spec.get("objectives"), "spec.objectives")
    if not objectives:
        reader.report("spec.objectives", "is required")
    if raw_name is None or window is None or not budgeting or sli is None or not objectives:
        reader.report("", "SLO not imported")
        return
    description = reader.string(spec.get("description"), "spec.description")
    if description and len(description) > MAX_DESCRIPTION:
        reader.report("spec.description", f"longer than {MAX_DESCRIPTION} characters; cut")
    for i, objective in enumerate(objectives):
        path = join("spec.objectives", i)
        objective = reader.mapping(objective, path)
        wanted = raw_name
        if len(objectives) > 1:
            wanted = f"{raw_name}-{objective.get('displayName') if isinstance(objective.get('displayName'), str) else i + 1}"
        name = dns_name(reader, wanted, join(path, "displayName") if len(objectives) > 1 else "metadata.name")
        mapped = _objective(reader, objective, path, sli, catalogue.sources)
        if name is None or mapped is None:
            reader.report(path, "objective not imported")
            continue
        target, indicator, group_by = mapped
        out: dict[str, Any] = {"description": description[:MAX_DESCRIPTION]} if description else {}
        out.update(objective=target, window=window, indicator=indicator)
        if group_by:
            out["groupBy"] = group_by
        collector.add(reader, path, slo_document(name, namespace, out))


def _window(reader: Reader, value: Any) -> str | None:
    if value is None:
        reader.report("spec.timeWindow", f"not set: imported with Observatory's default rolling {DEFAULT_WINDOW}")
        return DEFAULT_WINDOW
    windows = reader.sequence(value, "spec.timeWindow")
    if len(windows) != 1:
        reader.report("spec.timeWindow", "must hold exactly one window")
        return None
    path = "spec.timeWindow[0]"
    window = reader.mapping(windows[0], path)
    reader.unknown(window, path, ("duration", "isRolling", "calendar"))
    if window.get("calendar") is not None or window.get("isRolling") is False:
        reader.report(path, "a calendar-aligned window is not expressible: Observatory's SLO windows are rolling")
        return None
    duration = reader.string(window.get("duration"), join(path, "duration"), required=True)
    if duration is None:
        return None
    match = SHORTHAND.match(duration)
    if not match:
        reader.report(join(path, "duration"), f"{duration!r} is not an OpenSLO duration such as 28d, 4w or 1M")
        return None
    count, unit = int(match.group(1)), match.group(2)
    result = f"{count * CALENDAR_DAYS[unit]}d" if unit in CALENDAR_DAYS else duration
    if unit in CALENDAR_DAYS:
        reader.report(join(path, "duration"), f"{duration} has no fixed length; imported as {result}")
    if (why := window_problem(result)) is not None:
        reader.report(join(path, "duration"), why)
        return None
    return result


def _budgeting(reader: Reader, value: Any) -> bool:
    if value == "Occurrences":
        return True
    if value in ("Timeslices", "RatioTimeslices"):
        reader.report("spec.budgetingMethod", f"{value} is not expressible: Observatory's budget counts events (Occurrences)")
    else:
        reader.report("spec.budgetingMethod", f"must be Occurrences, Timeslices or RatioTimeslices, got {value!r}")
    return False


def _indicator(reader: Reader, spec: dict[str, Any], catalogue: _Catalogue) -> tuple[Reader, str, dict[str, Any]] | None:
    """The SLI spec the SLO uses, with the reader and path to report its fields at."""
    inline, ref = spec.get("indicator"), spec.get("indicatorRef")
    if (inline is None) == (ref is None):
        reader.report("spec.indicator", "set exactly one of indicator and indicatorRef")
        return None
    if inline is not None:
        sli = reader.mapping(inline, "spec.indicator")
        reader.unknown(sli, "spec.indicator", ("metadata", "spec"))
        return reader, "spec.indicator.spec", reader.mapping(sli.get("spec"), "spec.indicator.spec")
    if not isinstance(ref, str) or ref not in catalogue.slis:
        reader.report("spec.indicatorRef", f"no SLI document named {ref!r} in the files given")
        return None
    catalogue.used.add(ref)
    sli_reader, sli = catalogue.slis[ref]
    sli_reader.unknown(sli, "", ("apiVersion", "kind", "metadata", "spec"))
    return sli_reader, "spec", sli_reader.mapping(sli.get("spec"), "spec")


def _objective(reader: Reader, objective: dict[str, Any], path: str, sli: tuple[Reader, str, dict[str, Any]],
               sources: dict[str, Any]) -> tuple[float, dict[str, Any], list[str]] | None:
    reader.unknown(objective, path, ("displayName", "op", "value", "target", "targetPercent", "timeSliceTarget",
                                     "timeSliceWindow", "indicator", "indicatorRef", "compositeWeight"))
    for key in ("timeSliceTarget", "timeSliceWindow", "compositeWeight"):
        if objective.get(key) is not None:
            reader.report(join(path, key), "only applies to Timeslices budgeting or composite SLOs; not imported")
    if objective.get("indicator") is not None or objective.get("indicatorRef") is not None:
        reader.report(path, "a composite SLO (an indicator per objective) is not expressible")
        return None
    target = _target(reader, objective, path)
    sli_reader, sli_path, spec = sli
    sli_reader.unknown(spec, sli_path, ("description", "ratioMetric", "thresholdMetric"))
    if ("ratioMetric" in spec) == ("thresholdMetric" in spec):
        sli_reader.report(sli_path, "set exactly one of ratioMetric and thresholdMetric")
        return None
    if "ratioMetric" in spec:
        for key in ("op", "value"):
            if objective.get(key) is not None:
                reader.report(join(path, key), "only applies to a thresholdMetric; not imported")
        mapped = _ratio(sli_reader, spec["ratioMetric"], join(sli_path, "ratioMetric"), sources)
    else:
        mapped = _threshold(sli_reader, spec["thresholdMetric"], join(sli_path, "thresholdMetric"), sources,
                            reader, objective, path)
    if target is None or mapped is None:
        return None
    return target, *mapped


def _target(reader: Reader, objective: dict[str, Any], path: str) -> float | None:
    ratio, percent = objective.get("target"), objective.get("targetPercent")
    if (ratio is None) == (percent is None):
        reader.report(path, "set exactly one of target and targetPercent")
        return None
    key = "target" if ratio is not None else "targetPercent"
    value = reader.number(objective[key], join(path, key))
    if value is None:
        return None
    value = value * 100 if key == "target" else value
    if not 0 < value < 100:
        reader.report(join(path, key), f"{objective[key]} is not above 0 and below {'1' if key == 'target' else '100'}")
        return None
    return percentage(value)


def _query(reader: Reader, value: Any, path: str, sources: dict[str, Any], *, counter: bool | None) -> queries.Counter | None:
    """The counter a Prometheus metricSource reads."""
    metric = reader.mapping(value, path)
    reader.unknown(metric, path, ("metricSource",))
    source_path = join(path, "metricSource")
    source = reader.mapping(metric.get("metricSource"), source_path)
    reader.unknown(source, source_path, ("metricSourceRef", "type", "spec"))
    kind = source.get("type")
    if kind is None and isinstance(source.get("metricSourceRef"), str):
        kind = sources.get(source["metricSourceRef"])
    if not isinstance(kind, str) or kind.lower() != "prometheus":
        reader.report(join(source_path, "type"), f"{kind!r} is not a Prometheus metric source: Observatory reads Prometheus")
        return None
    spec_path = join(source_path, "spec")
    spec = reader.mapping(source.get("spec"), spec_path)
    reader.unknown(spec, spec_path, ("query",))
    query_path = join(spec_path, "query")
    query = reader.string(spec.get("query"), query_path, required=True)
    if query is None:
        return None
    try:
        expr = queries.parse(query)
        if counter is False and not isinstance(expr, queries.pp.VectorSelector):
            counter = None  # a rate expression reads a counter whatever the flag says
        if counter is False:
            raise queries.NotExpressible("is not a counter (counter: false): Observatory's indicators rate counters")
        return queries.counter(expr, bare_is_counter=True)
    except queries.NotExpressible as err:
        reader.report(query_path, str(err))
        return None


def _ratio(reader: Reader, value: Any, path: str, sources: dict[str, Any]) -> tuple[dict[str, Any], list[str]] | None:
    ratio = reader.mapping(value, path)
    reader.unknown(ratio, path, ("counter", "good", "bad", "total", "rawType", "raw"))
    if ratio.get("raw") is not None or ratio.get("rawType") is not None:
        reader.report(join(path, "raw"), "a precomputed ratio is not expressible: Observatory counts bad and all events")
        return None
    counter = ratio.get("counter")
    if counter is not None and not isinstance(counter, bool):
        reader.report(join(path, "counter"), f"must be true or false, got {counter!r}")
        return None
    kinds = [k for k in ("good", "bad") if ratio.get(k) is not None]
    if len(kinds) != 1 or ratio.get("total") is None:
        reader.report(path, f"set total and exactly one of good and bad (got {', '.join(kinds) or 'neither'})")
        return None
    (kind,) = kinds
    events = _query(reader, ratio[kind], join(path, kind), sources, counter=counter)
    total = _query(reader, ratio["total"], join(path, "total"), sources, counter=counter)
    if events is None or total is None:
        return None
    if counter is None and not (events.aggregated or total.aggregated):
        reader.report(join(path, "counter"), "not set: the queries are taken as counters")
    try:
        return queries.bad_counter(events, total) if kind == "bad" else queries.good_events(events, total)
    except queries.NotExpressible as err:
        reader.report(join(path, kind), str(err))
        return None


def _threshold(reader: Reader, value: Any, path: str, sources: dict[str, Any], objective_reader: Reader,
               objective: dict[str, Any], objective_path: str) -> tuple[dict[str, Any], list[str]] | None:
    """Events compared with a threshold, expressible when they are a histogram's observations: the
    share at or below `value` is a latency indicator over its `_bucket` series."""
    op, bound = objective.get("op"), objective.get("value")
    if op not in ("lt", "lte"):
        objective_reader.report(join(objective_path, "op"), f"{op!r} is not expressible: Observatory's latency indicator counts "
                                                            "events at or below a bound as good (op: lte)")
        return None
    bound = objective_reader.number(bound, join(objective_path, "value"))
    counter = _query(reader, value, path, sources, counter=True)
    if bound is None or counter is None:
        return None
    name = counter.selector.name or ""
    if counter.aggregated or not name.endswith("_bucket") or any(m.name == "le" for m in counter.selector.matchers.matchers):
        reader.report(join(path, "metricSource.spec.query"), "is not a histogram's <name>_bucket series without an le matcher: "
                                                             "only histogram observations compared with a bound are expressible")
        return None
    if not 0 < bound < float("inf"):
        objective_reader.report(join(objective_path, "value"), f"{bound:g} must be above 0")
        return None
    if op == "lt":
        objective_reader.report(join(objective_path, "op"), "lt taken as lte: histogram buckets count observations at or "
                                                            "below their bound")
    objective_reader.report(join(objective_path, "value"), f"{bound:g} must be a bucket bound (le) of {name}: check it, "
                                                           "or every event counts as slow")
    indicator: dict[str, Any] = {"histogram": name[:-len("_bucket")], "thresholdSeconds": bound, "buckets": [bound]}
    if counter.selector.matchers.matchers:
        try:
            indicator["selector"] = queries.selector_text(counter.selector, named=False)
        except queries.NotExpressible as err:
            reader.report(join(path, "metricSource.spec.query"), str(err))
            return None
    return {"latency": indicator}, []
