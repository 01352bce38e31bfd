"""Hostile PromQL and PromQL-bound values (issue 13 items 5, 6, 7): what a tenant writes, where, and
the words the refusal must carry. Shared by the CLI tests, the operator-loop probe and the fuzz tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def alertrule(name: str, namespace: str = "team-a", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"severity": "warning", **spec}
    if not any(k in body for k in ("threshold", "errorRate", "latency", "cost", "quality", "drift", "anomaly", "absent")):
        body["threshold"] = {"expr": "sum(rate(llm_calls_total[5m]))", "value": 1}
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "AlertRule",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}


def threshold(name: str, expr: str, **spec: Any) -> dict[str, Any]:
    return alertrule(name, threshold={"expr": expr, "value": 1}, **spec)


def slo(name: str, namespace: str = "team-a", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"objective": 99, "indicator": {"llm": {"preset": "availability"}}, **spec}
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "SLO",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}


@dataclass(frozen=True)
class Attack:
    resource: dict[str, Any]
    field: str  # the field the refusal names
    words: tuple[str, ...]  # what the refusal must say (the limit or the reason)

    @property
    def name(self) -> str:
        return self.resource["metadata"]["name"]


def _sum(terms: int) -> str:
    return " + ".join(f"llm_calls_{i:05d}" for i in range(terms))


ATTACKS = [
    # Item 5: 16,000 unary minus signs overflow the native parser's stack (SIGSEGV).
    Attack(threshold("unary-16k", "-" * 16000 + "up"), "spec.threshold.expr", ("unary", "32")),
    Attack(threshold("unary-nested", ("-" * 16 + "(") * 60 + "up" + ")" * 60), "spec.threshold.expr", ("unary", "32")),
    # Item 6: nesting and term counts that made compiling take 10 s to minutes.
    Attack(threshold("parens-500", "(" * 500 + "up" + ")" * 500), "spec.threshold.expr", ("nested", "32")),
    Attack(threshold("abs-250", "abs(" * 250 + "up" + ")" * 250), "spec.threshold.expr", ("nested", "32")),
    Attack(threshold("sum-900", _sum(900)), "spec.threshold.expr", ("binary operators", "128")),
    Attack(alertrule("anomaly-sum-200", anomaly={"expr": _sum(200)}), "spec.anomaly.expr", ("binary operators", "128")),
    # Item 7: a metric-name matcher in the selector that narrows the built-in signals (a ValueError
    # traceback in the CLI; the operator retried for ever without a status).
    Attack(alertrule("name-selector", selector='{__name__=~".+"}', errorRate={"threshold": 0.1}), "spec.selector",
           ("__name__",)),
    Attack(alertrule("name-selector-latency", selector='{__name__="x"}', latency={"thresholdSeconds": 2}), "spec.selector",
           ("__name__",)),
    *(Attack(alertrule(f"name-selector-{kind.lower()}", selector='{__name__=~".+"}', **{kind: block}), "spec.selector",
             ("__name__",))
      for kind, block in (("cost", {"budgetUSD": 10}), ("quality", {"evaluation": "relevance", "minScore": 0.5}),
                          ("drift", {"ksThreshold": 0.2}), ("anomaly", {"signal": "tokenRate"}), ("absent", {}))),
    Attack(slo("name-selector-slo-latency", indicator={"llm": {"preset": "latency", "latencyThresholdSeconds": 2.56,
                                                               "selector": 'job{a="b"}'}}),
           "spec.indicator.llm.selector", ("metric name",)),
    Attack(slo("name-selector-slo", indicator={"llm": {"preset": "availability", "selector": '{__name__=~".+"}'}}),
           "spec.indicator.llm.selector", ("__name__",)),
    # Prometheus refuses comparisons between scalars without bool: the rule would never load.
    Attack(threshold("scalar-compare", "time() + scalar(sum(llm_calls_total))"), "spec.threshold.expr",
           ("scalar", "instant vector")),
    Attack(threshold("scalar-inner", 'llm_calls_total and on() vector(time() > 1)'), "spec.threshold.expr",
           ("BOOL",)),
    # The tenant label rewritten through a parenthesised target label.
    Attack(threshold("label-replace-paren", 'label_replace(llm_calls_total, ("namespace"), "team-b", "", "")'),
           "spec.threshold.expr", ("tenant label",)),
    Attack(threshold("label-join-paren", 'label_join(llm_calls_total, (("namespace")), ",", "job")'),
           "spec.threshold.expr", ("tenant label",)),
    Attack(threshold("label-replace-dunder", 'label_replace(llm_calls_total, "__name__", "x", "", "")'),
           "spec.threshold.expr", ("__name__", "reserved")),
    Attack(threshold("label-replace-invalid", 'label_replace(llm_calls_total, "bad-name", "x", "", "")'),
           "spec.threshold.expr", ("bad-name", "not a valid label name")),
    # Found here: a quoted label name (Prometheus 3 syntax, which the parser takes) was written back
    # unquoted and unescaped, so its text became matchers of their own: `a="x"` alone, unpinned.
    Attack(threshold("quoted-label-injection", 'sum(llm_calls_total{"a=\\"x\\" or b=\\"y\\", c"="c"})'),
           "spec.threshold.expr", ("not a valid label name",)),
    Attack(threshold("quoted-by-label", 'sum by ("a) or (x") (llm_calls_total)'), "spec.threshold.expr",
           ("not a valid label name",)),
    # A metric named like a template placeholder would be substituted by the template's argument.
    Attack(threshold("placeholder-name", "__arg_e__ + llm_calls_total"), "spec.threshold.expr", ("reserved",)),
    # Values that reach Prometheus unbounded.
    Attack(alertrule("interval-1ms", evaluationInterval="1ms"), "spec.evaluationInterval", ("10s",)),
    Attack(threshold("subquery-1ms", "max_over_time(llm_calls_total[1d:1ms])"), "spec.threshold.expr",
           ("step", "10s")),
    Attack(threshold("subquery-52w", "max_over_time(llm_calls_total[52w:1ms])"), "spec.threshold.expr",
           ("subquery range", "90d")),
    Attack(threshold("subquery-points", "max_over_time(llm_calls_total[30d:10s])"), "spec.threshold.expr",
           ("11000",)),
    Attack(threshold("range-100y", "max_over_time(llm_calls_total[100y])"), "spec.threshold.expr", ("range", "90d")),
    Attack(alertrule("cost-window-100y", cost={"budgetUSD": 10, "window": "100y"}), "spec.cost.window", ("90d",)),
    Attack(alertrule("drift-baseline-1y", drift={"ksThreshold": 0.2, "baseline": "1y"}), "spec.drift.baseline",
           ("90d",)),
    # Functions Prometheus only runs behind a feature flag: the rule file would not load.
    Attack(threshold("experimental", 'sort_by_label(llm_calls_total, "job")'), "spec.threshold.expr",
           ("experimental",)),
]


def good(name: str = "calls", namespace: str = "team-b") -> dict[str, Any]:
    """Another tenant's ordinary rule: it must compile whatever team-a sends."""
    return alertrule(name, namespace)
