"""Rules per SLO and `observatory render` time for 1,000 SLOs.

Run: .venv/bin/python bench/render/bench_render.py [--slos 1000] [--runs 5]
Prints a Markdown section for bench/RESULTS.md. Times are medians of several runs in one process
(compile only) and of several `observatory render` subprocesses (end to end, YAML included).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from observatory import promql
from observatory.compile import compile_bundle, contribution, shared_objects
from observatory.compile.rules import count_rules
from observatory.models import parse_resource

SLOTH_RULES_PER_SLO = 17  # 8 SLI recordings, 7 metadata recordings, 2 alerts (Sloth's documented output)
INDICATORS = (
    {"ratio": {"errors": 'http_requests_total{service="svc-{i}",code=~"5.."}', "total": 'http_requests_total{service="svc-{i}"}'}},
    {"llm": {"preset": "availability", "selector": '{service_name="svc-{i}"}'}},
    {"llm": {"preset": "latency", "latencyThresholdSeconds": 2.56, "selector": '{service_name="svc-{i}"}'}},
    {"llm": {"preset": "quality", "evaluation": "answer_relevance", "minScore": 0.7, "selector": '{service_name="svc-{i}"}'}},
)


def slo_documents(count: int) -> list[dict]:
    docs = []
    for i in range(count):
        indicator = yaml.safe_load(yaml.safe_dump(INDICATORS[i % len(INDICATORS)]).replace("{i}", str(i)))
        docs.append({
            "apiVersion": "observatory.dev/v1alpha1", "kind": "SLO",
            "metadata": {"name": f"slo-{i}", "namespace": f"team-{i % 20}"},
            "spec": {"objective": 99.5, "window": ("7d", "28d", "30d", "90d")[i % 4], "indicator": indicator},
        })
    return docs


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slos", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    docs = slo_documents(args.slos)

    per_slo = []
    for doc in docs[: len(INDICATORS)]:
        _, member = contribution(parse_resource(doc))  # its rules, as its group holds them
        (kind, block), = doc["spec"]["indicator"].items()
        per_slo.append((f"{kind} {block['preset']}" if "preset" in block else kind, len(member.rules)))
    shared = [o for o in shared_objects([parse_resource(docs[0])]) if not o["metadata"]["name"].startswith("observatory-slos-")]
    shared_rules = sum(count_rules(shared))

    compile_times = []
    for _ in range(args.runs):
        promql.clear_caches()  # each run from scratch, as `observatory render` runs
        started = time.perf_counter()
        objects = compile_bundle([parse_resource(d) for d in docs])
        compile_times.append(time.perf_counter() - started)
    recording, alerting = count_rules(objects)
    rule_objects = [o for o in objects if o["kind"] == "PrometheusRule"]
    groups = sum(len(o["spec"]["groups"]) for o in rule_objects)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "slos.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        render_times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "observatory", "render", "-f", str(path)], check=True, stdout=subprocess.DEVNULL)
            render_times.append(time.perf_counter() - started)

    rules_per_slo = (recording + alerting) / args.slos
    print(f"### Render: {args.slos} SLOs (medians of {args.runs} runs)\n")
    print("| measure | value |\n|---|---|")
    print(f"| rules per SLO (all {args.slos}, shared ones included) | {rules_per_slo:.2f} ({recording} recording + {alerting} alerting) |")
    for kind, rules in per_slo:
        print(f"| rules of one SLO, {kind} indicator | {rules} |")
    print(f"| rules shared by the SLOs of one namespace and period | {shared_rules} |")
    print(f"| PrometheusRules / rule groups for all {args.slos} | {len(rule_objects)} / {groups} |")
    print(f"| Sloth, for comparison | {SLOTH_RULES_PER_SLO} |")
    print(f"| compile core, in process | {statistics.median(compile_times):.2f} s ({statistics.median(compile_times) / args.slos * 1000:.2f} ms per SLO) |")
    print(f"| `observatory render` end to end (process start, parse, compile, YAML) | {statistics.median(render_times):.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
