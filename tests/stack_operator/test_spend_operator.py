"""A stack's spendLabels in the operator: kopf in-process against the RBAC-enforcing emulator (schema
validation included), the real helm with the stand-in charts. The labels reach the stack's recorded
spend; hostile ones are refused by the apiserver (too many) or reported naming the field, with the
last good rules kept."""

from __future__ import annotations

from k8s.helm_support import STAND_IN_CHARTS, stack_operator

NS = "team-a"
STACKS, PROMETHEUSRULES = "observatory.dev/v1alpha1/observabilitystacks", "monitoring.coreos.com/v1/prometheusrules"
RULES = "observabilitystack-s1"


def stack(spend_labels: list[str]) -> dict:
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": "ObservabilityStack", "metadata": {"name": "s1", "namespace": NS},
            "spec": {"langfuse": {"enabled": False}, "defaultRules": {"spendLabels": spend_labels}}}


def condition(cluster, type_: str) -> dict:
    conditions = ((cluster.get(STACKS, "s1", NS) or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), {})


def spend_group(cluster) -> dict | None:
    rules = cluster.get(PROMETHEUSRULES, RULES, NS)
    groups = rules["spec"]["groups"] if rules else []
    return next((g for g in groups if g["name"] == "observatory.spend"), None)


async def test_spend_labels_reach_the_recorded_spend_and_hostile_ones_are_refused(acluster, helm):
    cluster = acluster
    async with stack_operator(cluster, helm, STAND_IN_CHARTS, namespaces=(NS,)):
        cluster.seed(stack(["team"]))
        group = await cluster.until(lambda: spend_group(cluster), timeout=30)
        assert [r["record"] for r in group["rules"]] == ["observatory:gen_ai_spend_usd:sum_rate5m",
                                                          "observatory:gen_ai_spend_usd:1h", "observatory:gen_ai_spend_usd:1d"]
        assert "gen_ai_token_type, team)" in group["rules"][0]["expr"]
        last_good = cluster.get(PROMETHEUSRULES, RULES, NS)

        # Six labels: the CRD's maxItems, enforced by the apiserver before the operator sees anything.
        # A merge patch: a PUT of the object read here could meet a 409 first (the operator may still
        # be writing the status of its first reconcile).
        code, body = cluster.request("PATCH", f"/apis/observatory.dev/v1alpha1/namespaces/{NS}/observabilitystacks/s1",
                                     {"spec": {"defaultRules": {"spendLabels": list("abcdef")}}},
                                     headers={"Content-Type": "application/merge-patch+json"})
        assert code == 422 and "spec.defaultRules.spendLabels" in body["message"], body
        assert cluster.get(STACKS, "s1", NS)["spec"]["defaultRules"]["spendLabels"] == ["team"]

        # Names the schema lets through but Prometheus or Observatory cannot use: reported, nothing rewritten.
        for labels, reason in ((["__name__"], "spec.defaultRules.spendLabels.0: label names starting with __ are reserved"),
                               (["observatory_hour"], "spec.defaultRules.spendLabels: observatory_hour is the label")):
            cluster.patch(STACKS, "s1", NS, {"spec": {"defaultRules": {"spendLabels": labels}}})
            ready = await cluster.until(lambda: (c := condition(cluster, "Ready")).get("reason") == "InvalidSpec"
                                        and reason in condition(cluster, "Degraded").get("message", "") and c, timeout=30)
            assert ready["status"] == "False"
            assert cluster.get(PROMETHEUSRULES, RULES, NS) == last_good
            cluster.patch(STACKS, "s1", NS, {"spec": {"defaultRules": {"spendLabels": ["team"]}}})
            await cluster.until(lambda: condition(cluster, "Ready").get("reason") != "InvalidSpec", timeout=30)
