"""Reconcile 1,000 AlertRules and SLOs with `observatory run` against the apiserver emulator.

Run: .venv/bin/python bench/reconcile/bench_reconcile.py [--crs 1000] [--runs 3] [--steady 50]
Prints a Markdown section for bench/RESULTS.md.

Each run, on a fresh emulator: the operator (a real `observatory run` subprocess, all namespaces)
receives a burst of CRs created as fast as the emulator takes them (wall time, CR→PrometheusRule
latency from the emulator's own commit times, RSS, writes), then CRs created one at a time
(latency of an idle operator), then a restart (time to re-reconcile everything, writes: should be
0). The floor replays the exact write requests the operator made in the burst as raw HTTP
requests (urllib3, 1 and 8 threads, the faster counts) against a fresh emulator holding the same CRs:
the time the writes alone take. The burst's wall time also holds the emulator's work of creating
the CRs (they are created while the operator runs): the floor the ratio is judged against adds the
time the same creates take on the fresh emulator, so that the operator is charged only for its own
requests and thinking; the writes-only ratio is printed beside it.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from k8s import emulator as emu

# Commit times of ADDED objects, taken on the emulator's loop: (plural, namespace, name) -> seconds;
# an SLO's rules land as its part of a shared group: ("slo-rules", namespace, SLO name).
COMMITS: dict[tuple[str, str | None, str], float] = {}
# CRs whose status reports their current generation, seen on the same commits: the bench waits on
# this set instead of listing the emulator's objects on its loop, which would slow the emulator it times.
SETTLED: set[tuple[str, str | None, str]] = set()
_commit = emu.Emulator._commit


def _timed_commit(self, key, obj, event, old=None):
    now = time.perf_counter()
    cr = (key[0].plural, key[1], key[2])
    if event == "ADDED":
        COMMITS.setdefault(cr, now)
    if key[0].plural in ("alertrules", "slos"):
        if event != "DELETED" and (obj.get("status") or {}).get("observedGeneration") == obj["metadata"].get("generation"):
            SETTLED.add(cr)
        else:
            SETTLED.discard(cr)
    if event != "DELETED" and key[0].plural == "prometheusrules":
        for group in (obj.get("spec") or {}).get("groups") or []:
            for rule in group["rules"]:
                if "slo" in (rule.get("labels") or {}):
                    COMMITS.setdefault(("slo-rules", key[1], rule["labels"]["slo"]), now)
    return _commit(self, key, obj, event, old)


emu.Emulator._commit = _timed_commit  # bench-only instrumentation

NAMESPACES = 10
ROUTING = {"receivers": [{"name": "oncall", "severities": ["critical"],
                          "pagerduty": {"routingKey": {"name": "pagerduty", "key": "routingKey"}}}]}
ALERT_TYPES = (
    {"errorRate": {"threshold": 0.05, "window": "5m"}},
    {"latency": {"thresholdSeconds": 2.0}},
    {"threshold": {"expr": 'sum(rate(llm_calls_total{service="svc"}[5m]))', "value": 100}},
    {"cost": {"budgetUSD": 100, "window": "1d"}},
    {"absent": {}},
)
SLO_INDICATORS = ({"llm": {"preset": "availability"}}, {"llm": {"preset": "latency", "latencyThresholdSeconds": 2.56}})


def resource(i: int) -> dict:
    """Half AlertRules of five types, half SLOs of two presets, half with routing, 10 namespaces."""
    meta = {"name": f"r{i}" if i % 2 == 0 else f"s{i}", "namespace": f"bench-{i % NAMESPACES}"}
    if i % 2 == 0:
        spec = {"severity": "warning", **ALERT_TYPES[(i // 2) % len(ALERT_TYPES)]}
        kind = "AlertRule"
    else:
        spec = {"objective": 99.5, "indicator": SLO_INDICATORS[(i // 2) % len(SLO_INDICATORS)]}
        kind = "SLO"
    if i % 4 < 2:
        spec["routing"] = ROUTING
    return {"apiVersion": "observatory.dev/v1alpha1", "kind": kind, "metadata": meta, "spec": spec}


def rule_key(obj: dict) -> tuple[str, str, str]:
    meta = obj["metadata"]
    if obj["kind"] == "SLO":
        return "slo-rules", meta["namespace"], meta["name"]
    return "prometheusrules", meta["namespace"], f"{obj['kind'].lower()}-{meta['name']}"


def cr_key(obj: dict) -> tuple[str, str, str]:
    return ("alertrules" if obj["kind"] == "AlertRule" else "slos"), obj["metadata"]["namespace"], obj["metadata"]["name"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Operator:
    """`observatory run` as a subprocess pointed at the emulator."""

    def __init__(self, cluster: emu.Cluster, workdir: Path):
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "e",
            "clusters": [{"name": "e", "cluster": {"server": cluster.url}}],
            "users": [{"name": "u", "user": {"token": cluster.token()}}],  # the operator's ServiceAccount
            "contexts": [{"name": "e", "context": {"cluster": "e", "user": "u"}}]}))
        self.metrics_port = free_port()
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "OBSERVATORY_LOG_FORMAT": "plain",
               "OBSERVATORY_HEALTH_PORT": str(free_port()), "OBSERVATORY_METRICS_PORT": str(self.metrics_port)}
        cluster.clear_requests()
        with open(workdir / "operator.log", "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([sys.executable, "-m", "observatory", "run"], env=env,
                                         stdout=log, stderr=subprocess.STDOUT)
        wait(lambda: {"alertrules", "slos"} <= {r.resource.plural for r in cluster.requests if r.resource is not None
                                                and r.params.get("watch") == "true"}, 60)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def rss_mib(self) -> tuple[float, float]:
        """(current, peak) resident memory."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines())
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def reconciles(self) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("observatory_reconcile_total{"))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def wait(predicate, timeout: float, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {timeout}s")
        time.sleep(interval)
    return result


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def recorded_writes(cluster: emu.Cluster) -> list[dict]:
    writes = []
    for r in cluster.requests:
        if r.method not in emu.WRITE_METHODS or r.resource is None or cluster.answered(r) >= 400:
            continue  # a refused write (a 409 lost race, a 404 of a deleted object) changed nothing
        body = r.body.decode()
        if r.data and isinstance(r.data, dict) and (r.data.get("metadata") or {}).get("resourceVersion"):
            data = json.loads(json.dumps(r.data))
            del data["metadata"]["resourceVersion"]  # versions differ in the fresh emulator
            body = json.dumps(data)
        query = f"?{urllib.parse.urlencode(r.params)}" if r.params else ""  # the logged URL has no query
        method, content_type = r.method, r.headers.get("Content-Type")
        if method == "PUT":  # a replace needs the fresh emulator's resourceVersion: the same whole body as a merge patch
            method, content_type = "PATCH", "application/merge-patch+json"
        writes.append({"method": method, "path": r.url.path + query, "contentType": content_type, "body": body})
    return writes


def seed_all(cluster: emu.Cluster, objects: list[dict]) -> dict[tuple[str, str, str], str]:
    """Create the CRs; return their uids by cr_key."""
    return {cr_key(obj): cluster.seed(obj)["metadata"]["uid"] for obj in objects}


UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def with_uids(writes: list[dict], old: dict[tuple[str, str, str], str], new: dict[tuple[str, str, str], str]) -> list[dict]:
    """The writes with owner references to the fresh emulator's CRs: the recorded uids would
    name owners that do not exist there, and its garbage collector deletes such objects."""
    renamed = {old[key]: new[key] for key in old}
    return [dict(w, body=UID.sub(lambda m: renamed.get(m[0], m[0]), w["body"])) for w in writes]


def one_run(n: int, steady: int, workdir: Path) -> dict:
    COMMITS.clear()
    SETTLED.clear()
    objects = [resource(i) for i in range(n)]
    with emu.running_cluster(event_window=1_000_000) as cluster:
        for i in range(NAMESPACES):
            cluster.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"bench-{i}"}})
        operator = Operator(cluster, workdir)
        cluster.clear_requests()
        cpu_before, bench_cpu_before = operator.cpu_seconds(), time.process_time()
        uids = seed_all(cluster, objects)
        wait(lambda: len(SETTLED) == n, 600)
        done = time.perf_counter()
        operator_cpu, emulator_cpu = operator.cpu_seconds() - cpu_before, time.process_time() - bench_cpu_before
        start = min(COMMITS[cr_key(o)] for o in objects)
        latencies = [COMMITS[rule_key(o)] - COMMITS[cr_key(o)] for o in objects]
        rules_done = max(COMMITS[rule_key(o)] for o in objects)
        rss, peak = operator.rss_mib()
        time.sleep(1.0)  # let kopf's trailing annotation patches land before counting writes
        writes = recorded_writes(cluster)
        write_kinds = collections.Counter(cluster.write_counts())

        steady_latencies = []
        for i in range(n, n + steady):
            obj = resource(i)
            cluster.seed(obj)
            key = rule_key(obj)
            wait(lambda: key in COMMITS, 30, interval=0.002)  # noqa: B023 (called before `key` changes)
            steady_latencies.append(COMMITS[rule_key(obj)] - COMMITS[cr_key(obj)])
            time.sleep(0.05)
        operator.stop()

        restarted = Operator(cluster, workdir)
        restart_start = time.perf_counter()
        wait(lambda: restarted.reconciles() >= n + steady, 600, interval=0.1)
        restart_seconds = time.perf_counter() - restart_start
        time.sleep(1.0)
        restart_writes = sum(cluster.write_counts().values())
        restart_rss = restarted.rss_mib()[1]
        restarted.stop()

    floors, creates = {}, []
    path = workdir / "writes.json"
    for threads in (1, 8):
        with emu.running_cluster(event_window=1_000_000) as cluster:
            for i in range(NAMESPACES):
                cluster.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"bench-{i}"}})
            seeding = time.perf_counter()
            fresh_uids = seed_all(cluster, objects)
            creates.append(time.perf_counter() - seeding)
            path.write_text(json.dumps(with_uids(writes, uids, fresh_uids)))
            out = subprocess.run([sys.executable, str(Path(__file__).with_name("replay_writes.py")), cluster.url,
                                  str(path), str(threads), cluster.token()], capture_output=True, text=True, check=False)
            if out.returncode:
                raise RuntimeError(out.stderr[-2000:])
            floors[threads] = float(out.stdout.strip())
    return {
        "wall_rules": rules_done - start, "wall_status": done - start,
        "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
        "steady_p50": percentile(steady_latencies, 50), "steady_p95": percentile(steady_latencies, 95),
        "operator_cpu": operator_cpu, "emulator_cpu": emulator_cpu, "rss": rss, "peak_rss": peak, "writes": len(writes), "write_kinds": dict(write_kinds),
        "floor": min(floors.values()), "floor_1": floors[1], "floor_8": floors[8], "creates": min(creates),
        "restart_seconds": restart_seconds, "restart_writes": restart_writes, "restart_peak_rss": restart_rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--crs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steady", type=int, default=50)
    parser.add_argument("--one-run", action="store_true", help="one run in this process; its result as JSON")
    args = parser.parse_args()
    if args.one_run:
        with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as tmp:
            print(json.dumps(one_run(args.crs, args.steady, Path(tmp))))
        return
    runs = []
    for i in range(args.runs):
        # Each run in a process of its own: no run inherits another's heap (emulators, clients, threads).
        out = subprocess.run([sys.executable, __file__, "--one-run", "--crs", str(args.crs), "--steady", str(args.steady)],
                             capture_output=True, text=True, check=False)
        if out.returncode:
            raise RuntimeError(out.stderr[-3000:])
        result = json.loads(out.stdout)
        runs.append(result)
        print(f"run {i + 1}: " + json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}),
              file=sys.stderr)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    def each(key: str, fmt: str) -> str:
        return ", ".join(format(r[key], fmt) for r in runs)

    ratio = [r["wall_status"] / (r["floor"] + r["creates"]) for r in runs]
    writes_only = [r["wall_status"] / r["floor"] for r in runs]
    print(f"""## Operator reconcile: {args.crs} AlertRules and SLOs (bench/reconcile)

`observatory run` (subprocess, all namespaces) against the apiserver emulator (tests/k8s), a burst of
{args.crs} CRs (half AlertRules of five types, half SLOs, half with routing, {NAMESPACES} namespaces)
created as fast as the emulator takes them. Medians of {args.runs} runs (each run's value in brackets).
Latency is CR commit → commit of the PrometheusRule holding its rules, both timed on the emulator. The floor replays the operator's
exact write requests of the burst ({med('writes'):.0f}: {', '.join(f'{k} {v}' for k, v in sorted(runs[0]['write_kinds'].items()))})
as raw HTTP requests against a fresh emulator holding the same CRs (faster of 1 and 8 threads).

| measure | median | runs | goal |
|---|---|---|---|
| wall time, burst → all PrometheusRules | {med('wall_rules'):.2f} s | {each('wall_rules', '.2f')} | |
| wall time, burst → all statuses written | {med('wall_status'):.2f} s | {each('wall_status', '.2f')} | |
| floor: same writes replayed raw | {med('floor'):.2f} s | {each('floor', '.2f')} (1 thread: {each('floor_1', '.2f')}; 8: {each('floor_8', '.2f')}) | |
| the burst's {args.crs} creates alone | {med('creates'):.2f} s | {each('creates', '.2f')} | |
| ratio wall (statuses) / (creates + floor) | {statistics.median(ratio):.2f}× | {', '.join(f'{x:.2f}' for x in ratio)} | ≤ 1.5× |
| ratio wall (statuses) / floor (writes only) | {statistics.median(writes_only):.2f}× | {', '.join(f'{x:.2f}' for x in writes_only)} | |
| p50 / p95 latency in the burst | {med('p50') * 1000:.0f} / {med('p95') * 1000:.0f} ms | {each('p50', '.3f')} / {each('p95', '.3f')} s | |
| p50 / p95 latency, one CR at a time ({args.steady}) | {med('steady_p50') * 1000:.0f} / {med('steady_p95') * 1000:.0f} ms | {each('steady_p50', '.3f')} / {each('steady_p95', '.3f')} s | p50 ≤ 100 ms |
| CPU in the burst: operator / emulator process | {med('operator_cpu'):.1f} / {med('emulator_cpu'):.1f} s | {each('operator_cpu', '.1f')} / {each('emulator_cpu', '.1f')} | |
| operator RSS after the burst (peak) | {med('rss'):.0f} MiB ({med('peak_rss'):.0f}) | {each('peak_rss', '.0f')} | ≤ 200 MB |
| restart: all {args.crs + args.steady} re-reconciled | {med('restart_seconds'):.2f} s | {each('restart_seconds', '.2f')} | |
| restart: writes | {med('restart_writes'):.0f} | {each('restart_writes', '.0f')} | 0 |

Machine: {os.cpu_count()} cores; operator, emulator and bench share them.
""")


if __name__ == "__main__":
    main()
