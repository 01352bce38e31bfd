"""A stack's Grafana dashboards, as `observatory render` prints them: ConfigMaps Grafana's sidecar
loads, whose every panel query reads only the stack's namespace. (Their queries return data from a
real Prometheus: tests/local/test_dashboards_local.py; the operator applies them:
tests/controller/test_dashboards_controller.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from observatory import promql
from observatory.cli import main
from observatory.compile.dashboards import dashboard_objects, dashboards
from observatory.compile.rules import Tenant
from observatory.conventions import DEFAULT, Conventions
from observatory.models import parse_resource

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "examples" / "stacks" / "team-b-external.yaml"


def rendered_configmaps(capsys, *extra: str) -> list[dict]:
    assert main(["render", "-f", str(STACK), *extra]) == 0
    return [d for d in yaml.safe_load_all(capsys.readouterr().out) if d["kind"] == "ConfigMap"]


def targets(configmap: dict) -> list[tuple[str, str, dict]]:
    return [(key, panel["title"], target) for key, text in sorted(configmap["data"].items())
            for panel in json.loads(text)["panels"] for target in panel["targets"]]


def test_render_prints_an_slo_and_an_llm_dashboard_labelled_for_the_grafana_sidecar(capsys) -> None:
    (configmap,) = rendered_configmaps(capsys)
    meta = configmap["metadata"]
    assert (meta["name"], meta["namespace"]) == ("llm-dashboards", "team-b")
    # kube-prometheus-stack's grafana sidecar selects grafana_dashboard: "1" (its values.yaml).
    assert meta["labels"]["grafana_dashboard"] == "1"
    assert meta["labels"]["observatory.dev/owner-kind"] == "ObservabilityStack"
    boards = {key: json.loads(text) for key, text in configmap["data"].items()}
    assert sorted(boards) == ["llm-overview.json", "slo-overview.json"]
    titles = {key: [p["title"] for p in board["panels"]] for key, board in boards.items()}
    assert titles == {
        "slo-overview.json": ["Objective", "Firing SLO alerts", "Error budget remaining", "Burn rate per window"],
        "llm-overview.json": ["Requests", "Error ratio", "Latency p50 and p95", "Tokens", "Spend",
                              "Spend per model, last hour and day", "Quality scores", "Latency drift"],
    }
    for board in boards.values():
        assert board["templating"]["list"][0]["type"] == "datasource"
        assert {p["datasource"]["uid"] for p in board["panels"]} == {"${datasource}"}
        assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    assert len({b["uid"] for b in boards.values()}) == 2 and all(len(b["uid"]) <= 40 for b in boards.values())


def test_every_panel_query_parses_and_selects_only_the_stack_namespace(capsys) -> None:
    (configmap,) = rendered_configmaps(capsys)
    found = targets(configmap)
    assert len(found) == 14
    for key, title, target in found:
        expr = promql.parse(target["expr"])
        promql.check_tenant(expr, "namespace", "team-b")
        for selector in promql.selectors(expr):
            pins = [m for m in selector.matchers.matchers if m.name == "namespace"]
            assert [(m.op, m.value) for m in pins] == [(promql.equal("namespace", "").op, "team-b")], (key, title)


def test_the_sidecar_label_and_the_tenant_label_follow_the_conventions(tmp_path, capsys) -> None:
    conventions = tmp_path / "conventions.yaml"
    conventions.write_text(yaml.safe_dump({"dashboard_labels": {"dashboards.example.com/load": "yes"},
                                           "tenant_label": "k8s_namespace_name"}))
    (configmap,) = rendered_configmaps(capsys, "--conventions", str(conventions))
    labels = configmap["metadata"]["labels"]
    assert labels["dashboards.example.com/load"] == "yes" and "grafana_dashboard" not in labels
    for _key, _title, target in targets(configmap):
        assert 'k8s_namespace_name="team-b"' in target["expr"] and 'namespace="' not in target["expr"]


def test_dashboards_are_deterministic_and_differ_only_by_namespace() -> None:
    document = yaml.safe_load(STACK.read_text())
    stack = parse_resource(document)
    first, again = dashboard_objects(stack, DEFAULT), dashboard_objects(stack, DEFAULT)
    assert first == again
    other = parse_resource({**document, "metadata": {**document["metadata"], "namespace": "team-z"}})
    text = "".join(dashboard_objects(other, DEFAULT)[0]["data"].values())
    assert "team-b" not in text and 'namespace=\\"team-z\\"' in text
    # One Grafana loads every namespace's dashboards: each stack's have uids of their own.
    renamed = parse_resource({**document, "metadata": {**document["metadata"], "name": "llm-2"}})
    uids = [{json.loads(text)["uid"] for text in dashboard_objects(s, DEFAULT)[0]["data"].values()}
            for s in (stack, other, renamed)]
    assert len(set().union(*uids)) == 6


@pytest.mark.parametrize("board", dashboards(Tenant("team-b", DEFAULT)), ids=lambda b: b.key)
def test_the_panels_as_data_carry_pinned_trees(board) -> None:
    """The trees tests/local runs are the ones the JSON holds."""
    assert board.panels and all(panel.queries for panel in board.panels)
    for panel in board.panels:
        for query in panel.queries:
            promql.check_tenant(query.expr, DEFAULT.tenant_label, "team-b")


def test_conventions_reject_unknown_dashboard_settings() -> None:
    with pytest.raises(ValueError, match="unknown convention"):
        Conventions.from_mapping({"dashboard_label": "grafana_dashboard"})


def test_the_json_reads_back_as_grafanas_dashboard_model(capsys) -> None:
    """The foundation SDK's model of Grafana's dashboard schema takes every panel and query back."""
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    plugins.register_default_plugins()  # panel and query kinds, as the SDK decodes them
    (configmap,) = rendered_configmaps(capsys)
    for text in configmap["data"].values():
        board = json.loads(text)
        model = Dashboard.from_json(board)
        assert model.uid == board["uid"] and model.templating.list_val[0].type_val == "datasource"
        assert [(p.title, p.type_val, [t.expr for t in p.targets]) for p in model.panels] == \
            [(p["title"], p["type"], [t["expr"] for t in p["targets"]]) for p in board["panels"]]
