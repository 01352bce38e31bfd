"""Has prometheus-operator accepted a PrometheusRule, or does a `Prometheus` at least select it?
Pure evaluation, no I/O.

prometheus-operator v0.93 reports, per Prometheus (or ThanosRuler) that selects a PrometheusRule,
whether it accepted the rules into its configuration: `status.bindings[].conditions[type=Accepted]`
(written with its feature gate StatusForConfigurationResources). Where it reports, that is the
verdict. Where it does not, only the selectors can be judged, and a match says "selected", not
"loaded": the rules may still be refused.

"Rule created but never loaded" is the most common support question for rule generators: the
Prometheus' `ruleSelector` wants labels the rule does not carry, or its `ruleNamespaceSelector`
leaves the rule's namespace out. Semantics follow the Prometheus CRD: a null `ruleSelector`
selects nothing and `{}` everything; a null `ruleNamespaceSelector` means the Prometheus' own
namespace only and `{}` every namespace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The apiserver labels every namespace with its own name (Kubernetes 1.21+).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Verdict:
    status: str  # "True" | "False" | "Unknown", as a condition status
    reason: str
    message: str


def unmet(selector: Mapping[str, Any], labels: Mapping[str, str]) -> list[str]:
    """The requirements of a (non-null) LabelSelector that `labels` fail, human-readable."""
    problems = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items()) if labels.get(k) != v]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), list(expr.get("values") or [])
        value = labels.get(key)
        ok = {"In": value in values, "NotIn": value not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}.get(op, False)
        if not ok:
            problems.append(f"{key} {op} ({', '.join(values)})" if values else f"{key} {op}")
    return problems


def _name(prometheus: Mapping[str, Any]) -> str:
    meta = prometheus.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def why_not_selected(prometheus: Mapping[str, Any], rule_labels: Mapping[str, str], rule_namespace: str,
                     namespace_labels: Mapping[str, str]) -> str | None:
    """None when `prometheus` loads the rule; otherwise what is missing."""
    spec = prometheus.get("spec") or {}
    rule_selector = spec.get("ruleSelector")
    if rule_selector is None:
        return "has no ruleSelector, so it loads no PrometheusRule"
    ns_selector = spec.get("ruleNamespaceSelector")
    own_namespace = (prometheus.get("metadata") or {}).get("namespace")
    if ns_selector is None and rule_namespace != own_namespace:
        return f"only loads rules from its own namespace {own_namespace} (ruleNamespaceSelector is unset)"
    if ns_selector is not None:
        ns_problems = unmet(ns_selector, {**namespace_labels, NAMESPACE_NAME_LABEL: rule_namespace})
        if ns_problems:
            return f"ruleNamespaceSelector needs namespace {rule_namespace} to have {', '.join(ns_problems)}"
    problems = unmet(rule_selector, rule_labels)
    if problems:
        return f"ruleSelector needs the rule to have {', '.join(problems)}"
    return None


def needs_namespace_labels(prometheuses: Sequence[Mapping[str, Any]]) -> bool:
    """Whether evaluating these needs the rule namespace's labels (so callers skip a read otherwise)."""
    return any((p.get("spec") or {}).get("ruleNamespaceSelector") for p in prometheuses)


# Bindings of these evaluate rules; Alertmanagers and agents bind other configuration.
RULE_EVALUATORS = {"prometheuses": "Prometheus", "thanosrulers": "ThanosRuler"}
NO_BINDINGS_NOTE = ("whether it accepted them is not known: prometheus-operator reports that in the "
                    "PrometheusRule's status only with its feature gate StatusForConfigurationResources")


def rules_verdict(prometheuses: Sequence[Mapping[str, Any]], rules: Sequence[Mapping[str, Any]],
                  rule_labels: Mapping[str, str], namespace_labels: Mapping[str, str]) -> Verdict:
    """The RulesLoaded condition for the live PrometheusRule objects `rules` (same labels, same
    namespace): what prometheus-operator reports of them, else what their selectors say."""
    return accepted(rules) or selected(prometheuses, rule_labels, (rules[0]["metadata"].get("namespace") or "") if rules else "",
                                       namespace_labels, [r["metadata"]["name"] for r in rules])


def _bindings(rule: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any] | None]]:
    """(evaluator, its Accepted condition) for every rule-evaluating binding of `rule`."""
    found = []
    for binding in (rule.get("status") or {}).get("bindings") or []:
        kind = RULE_EVALUATORS.get(binding.get("resource"))
        if kind:
            condition = next((c for c in binding.get("conditions") or [] if c.get("type") == "Accepted"), None)
            found.append((f"{kind} {binding.get('namespace')}/{binding.get('name')}", condition))
    return found


def accepted(rules: Sequence[Mapping[str, Any]]) -> Verdict | None:
    """The verdict of prometheus-operator's bindings; None when it reports none for any of `rules`."""
    if not any(_bindings(r) for r in rules):
        return None
    rejected, pending, accepting = [], [], set()
    for rule in rules:
        meta = rule["metadata"]
        name, generation = f"{meta.get('namespace')}/{meta['name']}", meta.get("generation")
        bindings = _bindings(rule)
        if not bindings:
            pending.append(f"no Prometheus has reported on PrometheusRule {name} yet")
        for evaluator, condition in bindings:
            if condition is None or (generation is not None and condition.get("observedGeneration") != generation):
                pending.append(f"{evaluator} has not reported on generation {generation} of PrometheusRule {name} yet")
            elif condition.get("status") == "True":
                accepting.add(evaluator)
            else:
                why = ": ".join(p for p in (condition.get("reason"), condition.get("message")) if p)
                rejected.append(f"{evaluator} rejected PrometheusRule {name}" + (f": {why}" if why else ""))
    if rejected:
        return Verdict("False", "Rejected", "; ".join(rejected))
    if pending:
        return Verdict("Unknown", "Pending", "; ".join(pending))
    names = ", ".join(f"{r['metadata'].get('namespace')}/{r['metadata']['name']}" for r in rules)
    return Verdict("True", "Accepted", f"{', '.join(sorted(accepting))} accepted PrometheusRule {names}")


def selected(prometheuses: Sequence[Mapping[str, Any]], rule_labels: Mapping[str, str], rule_namespace: str,
             namespace_labels: Mapping[str, str], rule_names: Sequence[str]) -> Verdict:
    """Whether a Prometheus selects PrometheusRules `rule_names` (same labels, same namespace)."""
    rules = ", ".join(f"{rule_namespace}/{n}" for n in rule_names)
    if not prometheuses:
        return Verdict("Unknown", "NoPrometheus", "no prometheus-operator Prometheus found to load the rules")
    reasons = {}
    for prometheus in sorted(prometheuses, key=_name):
        reason = why_not_selected(prometheus, rule_labels, rule_namespace, namespace_labels)
        if reason is None:
            return Verdict("Unknown", "Selected",
                           f"Prometheus {_name(prometheus)} selects PrometheusRule {rules}; {NO_BINDINGS_NOTE}")
        reasons[_name(prometheus)] = reason
    detail = "; ".join(f"{name} {reason}" for name, reason in reasons.items())
    return Verdict("False", "NotSelected", f"no Prometheus selects PrometheusRule {rules}: {detail}")
