"""`observatory run`: the real process, configured by environment, against the emulator."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.request
from pathlib import Path

import yaml
from controller_harness import ALERTRULES, PROMETHEUSRULES, example, free_port, settled
from k8s.emulator import cluster_context


def kubeconfig(path: Path, server: str, token: str) -> Path:
    path.write_text(yaml.safe_dump({
        'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'emulator',
        'clusters': [{'name': 'emulator', 'cluster': {'server': server}}],
        'users': [{'name': 'tester', 'user': {'token': token}}],
        'contexts': [{'name': 'emulator', 'context': {'cluster': 'emulator', 'user': 'tester'}}]}))
    return path


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def serving(url: str, proc: asyncio.subprocess.Process) -> bool:
    """Whether `url` answers 200; a process that exited fails at once instead of at the timeout."""
    assert proc.returncode is None, f'observatory run exited with {proc.returncode}'
    try:
        return fetch(url)[0] == 200
    except OSError:  # not listening yet
        return False


async def test_observatory_run_reconciles_and_serves_health_and_metrics(tmp_path):
    health, metrics = free_port(), free_port()
    # The chart's RBAC for watchNamespaces=[team-a]: a Role there, the ClusterRole for cluster-scoped reads.
    async with cluster_context(operator_namespaces=('team-a',)) as cluster:
        env = {**os.environ, 'KUBECONFIG': str(kubeconfig(tmp_path / 'kubeconfig', cluster.url, cluster.token())),
               'OBSERVATORY_WATCH_NAMESPACES': 'team-a', 'OBSERVATORY_LOG_FORMAT': 'plain',
               'OBSERVATORY_RULE_SELECTOR_LABELS': json.dumps({'release': 'prometheus'}),
               'OBSERVATORY_HEALTH_PORT': str(health), 'OBSERVATORY_METRICS_PORT': str(metrics)}
        proc = await asyncio.create_subprocess_exec(sys.executable, '-m', 'observatory', 'run', env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            cluster.seed(example('alertrules/llm-error-rate.yaml'))
            cluster.seed(example('alertrules/llm-error-rate.yaml', namespace='team-b'))  # not watched
            # A new Python process on a busy machine takes many seconds to start: wait for it to serve
            # (the timeouts only bound a hang).
            await cluster.until(lambda: serving(f'http://127.0.0.1:{health}/healthz', proc), timeout=300)
            await cluster.until(lambda: settled(cluster, ALERTRULES, 'llm-error-rate', 'team-a'), timeout=120)
            rule = cluster.get(PROMETHEUSRULES, 'alertrule-llm-error-rate', 'team-a')
            assert rule['metadata']['labels']['release'] == 'prometheus'
            assert cluster.get(PROMETHEUSRULES, 'alertrule-llm-error-rate', 'team-b') is None
            # The status is written before the reconcile is counted, and the count before its duration
            # (a scrape may fall between them): wait for both.
            text = await cluster.until(lambda: (text := fetch(f'http://127.0.0.1:{metrics}/metrics')[1])
                                       and 'observatory_reconcile_total{kind="AlertRule",result="applied"} 1.0' in text
                                       and 'observatory_reconcile_duration_seconds_count{kind="AlertRule"} 1.0' in text
                                       and text, timeout=120)
            assert 'observatory_managed_objects{kind="AlertRule"} 2.0' in text
        finally:
            proc.terminate()
            output, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, output.decode()[-3000:]


async def test_observatory_run_rejects_bad_configuration():
    env = {**os.environ, 'OBSERVATORY_RULE_SELECTOR_LABELS': '[1]'}
    proc = await asyncio.create_subprocess_exec(sys.executable, '-m', 'observatory', 'run', env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 120)  # a new process starts slowly on a busy machine
    assert proc.returncode == 2
    assert 'OBSERVATORY_RULE_SELECTOR_LABELS: must be a JSON object of strings' in err.decode()


def test_replicas_get_distinct_stable_peering_priorities():
    from observatory.controller.app import peering_priority

    pods = [f'observatory-7d9f8c6b5-{suffix}' for suffix in ('x2k4p', 'q8z7m', 'b5n3r')]
    priorities = [peering_priority(pod) for pod in pods]
    assert len(set(priorities)) == len(pods)
    assert priorities == [peering_priority(pod) for pod in pods]
