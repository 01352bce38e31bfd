"""API failures are retried with backoff and converge; a restart re-reconciles without writing."""

from __future__ import annotations

import asyncio
import http.server
import threading

import kubernetes
import pytest
from controller_harness import (
    ALERTRULES,
    PROMETHEUSRULES,
    SLOS,
    at_generation,
    condition,
    example,
    handled,
    names,
    running_operator,
    settled,
    threshold_rule,
)
from k8s.emulator import cluster_context
from observatory.controller.kube import ApiProblem, Kube
from observatory.conventions import DEFAULT


def requests_to(cluster, method: str, plural: str) -> int:
    return sum(1 for r in cluster.requests
               if r.method == method and r.resource is not None and r.resource.plural == plural)


@pytest.mark.parametrize('method, path, status, rule', [
    ('PATCH', r'/prometheusrules/', 500, 'llm-error-rate'),   # the apply
    ('PATCH', r'/prometheusrules/', 409, 'llm-error-rate'),   # a conflict
    # Reading the shared price catalogue (a new rule reads nothing it owns: it has no status yet).
    ('GET', r'/prometheusrules/', 503, 'llm-daily-budget'),
    ('PATCH', r'/alertrules/[^/]+/status$', 500, 'llm-error-rate'),
])
async def test_failing_requests_are_retried_until_they_succeed(method, path, status, rule):
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.fail(method, path, status=status, times=2)
        cluster.seed(example(f'alertrules/{rule}.yaml'))
        live = await cluster.until(lambda: settled(cluster, ALERTRULES, rule, 'team-a'), timeout=60)
        assert condition(live, 'Ready')['status'] == 'True'
        catalogue = ['observatory-llm-prices'] if rule == 'llm-daily-budget' else []
        assert names(cluster, PROMETHEUSRULES, 'team-a') == sorted([f'alertrule-{rule}', *catalogue])
        assert not cluster.emulator._faults  # both failures were served


async def test_a_hanging_request_times_out_and_is_retried():
    # The adapter's timeout applies to every request: short enough for the test, long enough that
    # no other request outlasts it on a busy machine (that would be a retry of its own).
    async with cluster_context() as cluster, running_operator(cluster, timeout=5):
        cluster.hang('POST', r'/prometheusrules', seconds=30)
        cluster.seed(example('slos/llm-availability.yaml'))
        await cluster.until(lambda: settled(cluster, SLOS, 'llm-availability', 'team-a'), timeout=60)
        # The hung create of the group holding the SLO's rules, its retry, then the namespace's windows.
        assert requests_to(cluster, 'POST', 'prometheusrules') == 3
        assert names(cluster, PROMETHEUSRULES, 'team-a') == ['observatory-slo-windows-30d', 'observatory-slos-30d-01']


async def test_changes_after_a_dropped_watch_are_still_handled():
    async with cluster_context() as cluster, running_operator(cluster):
        cluster.seed(threshold_rule('calls', 'sum(rate(llm_calls_total[5m]))'))
        await cluster.until(lambda: settled(cluster, ALERTRULES, 'calls', 'team-a'))
        cluster.drop_watches(abrupt=True)
        cluster.patch(ALERTRULES, 'calls', 'team-a', {'spec': {'threshold': {'value': 7}}})
        await cluster.until(lambda: at_generation(cluster, ALERTRULES, 'calls', 'team-a', 2), timeout=60)
        assert '7' in cluster.get(PROMETHEUSRULES, 'alertrule-calls', 'team-a')['spec']['groups'][0]['rules'][0]['expr']


async def test_restart_re_reconciles_everything_without_writing():
    resources = [
        (ALERTRULES, example('alertrules/llm-error-rate.yaml')),       # with routing
        (ALERTRULES, example('alertrules/llm-daily-budget.yaml')),     # shares the price catalogue
        (ALERTRULES, example('alertrules/llm-hourly-budget.yaml')),
        (SLOS, example('slos/llm-availability.yaml')),
        (ALERTRULES, threshold_rule('broken', 'sum(rate(x[5m])')),       # invalid
    ]

    async with cluster_context() as cluster:
        async with running_operator(cluster):
            for _, obj in resources:
                cluster.seed(obj)
            await cluster.until(lambda: all(handled(cluster, p, o['metadata']['name'], 'team-a') for p, o in resources), timeout=60)
        before = {o['metadata']['name']: o for o in cluster.list(PROMETHEUSRULES, 'team-a')}
        cluster.clear_requests()
        async with running_operator(cluster) as controller:
            def reconciled() -> float:
                return sum(controller.metrics.registry.get_sample_value(
                    'observatory_reconcile_total', {'kind': kind, 'result': result}) or 0
                    for kind in ('AlertRule', 'SLO') for result in ('applied', 'unchanged', 'invalid', 'error'))
            await cluster.until(lambda: reconciled() == len(resources))
            await asyncio.sleep(0.5)  # time for any write that would follow
            assert cluster.write_counts() == {}
            assert controller.metrics.registry.get_sample_value(
                'observatory_reconcile_total', {'kind': 'AlertRule', 'result': 'unchanged'}) == 3
            # The restarted operator still acts on changes.
            cluster.patch(ALERTRULES, 'llm-error-rate', 'team-a', {'spec': {'errorRate': {'threshold': 0.3}}})
            await cluster.until(lambda: at_generation(cluster, ALERTRULES, 'llm-error-rate', 'team-a', 2))
        after = {o['metadata']['name']: o for o in cluster.list(PROMETHEUSRULES, 'team-a')}
        assert sorted(after) == sorted(before)
        assert after['alertrule-llm-error-rate']['spec'] != before['alertrule-llm-error-rate']['spec']
        assert all(after[n] == before[n] for n in after if n != 'alertrule-llm-error-rate')


def test_an_answer_without_json_is_an_api_problem_not_a_traceback():
    """A proxy in front of the API server (a login page, a load balancer's error page) can answer
    200 with HTML: the adapter reports it as an API problem, which a reconcile retries."""
    class HtmlPage(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            page = b'<html><body>Sign in</body></html>'
            self.send_response(200)
            self.send_header('Content-Type', 'text/html')
            self.send_header('Content-Length', str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), HtmlPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api_client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=f'http://127.0.0.1:{server.server_port}'))
    try:
        with pytest.raises(ApiProblem) as problem:
            Kube(api_client, DEFAULT).get_resource('alertrules', 'team-a', 'r1')
        assert problem.value.code == 0 and problem.value.transient
        assert 'answered 200 without a JSON body' in str(problem.value)
    finally:
        api_client.close()
        server.shutdown()
        server.server_close()
