"""The emulator behaves like an apiserver where kopf and the official client can tell the difference.

Each test drives the emulator through the official `kubernetes` client (or raw aiohttp for
streams), so a divergence from what the client expects fails here rather than in operator tests.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request

import aiohttp
import kopf
import kubernetes.client as k8s
import pytest
from kubernetes import watch
from kubernetes.client.rest import ApiException

from .emulator import cluster_context, kopf_operator, running_cluster
from .rbac import ADMIN

# The generic apiserver semantics are tested on a custom resource whose CRD keeps whatever it is
# sent (x-kubernetes-preserve-unknown-fields, which a real apiserver accepts); the schemas of the
# project's own CRDs are exercised in test_emulator_schema.py.
GROUP, VERSION = 'test.observatory.dev', 'v1'
ALERTRULES = f'{GROUP}/{VERSION}/alertrules'
TEST_CRD = {
    'apiVersion': 'apiextensions.k8s.io/v1', 'kind': 'CustomResourceDefinition',
    'metadata': {'name': f'alertrules.{GROUP}'},
    'spec': {'group': GROUP, 'scope': 'Namespaced',
             'names': {'plural': 'alertrules', 'singular': 'alertrule', 'kind': 'AlertRule', 'listKind': 'AlertRuleList'},
             'versions': [{'name': VERSION, 'served': True, 'storage': True, 'subresources': {'status': {}},
                           'schema': {'openAPIV3Schema': {'type': 'object', 'properties': {
                               'spec': {'type': 'object', 'x-kubernetes-preserve-unknown-fields': True},
                               'status': {'type': 'object', 'x-kubernetes-preserve-unknown-fields': True}}}}}]}}


def serving_test_crd(cluster):
    cluster.call(cluster.emulator.register_crd, TEST_CRD)
    return cluster


def alertrule(name: str, spec: dict | None = None, **metadata) -> dict:
    return {'apiVersion': f'{GROUP}/{VERSION}', 'kind': 'AlertRule',
            'metadata': {'name': name, **metadata}, 'spec': {'expr': 'up == 0'} if spec is None else spec}


def configmap(name: str, **metadata) -> dict:
    return {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': name, **metadata}, 'data': {}}


def error_of(exc: pytest.ExceptionInfo[ApiException]) -> tuple[int, str]:
    return exc.value.status, json.loads(exc.value.body)['reason']


@pytest.fixture()
def cluster():
    with running_cluster() as cluster:
        yield serving_test_crd(cluster)


@pytest.fixture()
def client(cluster):
    # These tests are about the apiserver's semantics, not about permissions: cluster-admin.
    with cluster.api_client(ADMIN) as client:
        yield client


@pytest.fixture()
def core(client):
    return k8s.CoreV1Api(client)


@pytest.fixture()
def crs(client):
    """CustomObjectsApi bound to the alertrules in `default`: crs.create(body), crs.patch(name, body)..."""
    api = k8s.CustomObjectsApi(client)

    class AlertRules:
        def create(self, body, **kw):
            return api.create_namespaced_custom_object(GROUP, VERSION, 'default', 'alertrules', body, **kw)

        def get(self, name, **kw):
            return api.get_namespaced_custom_object(GROUP, VERSION, 'default', 'alertrules', name, **kw)

        def patch(self, name, body, **kw):
            return api.patch_namespaced_custom_object(GROUP, VERSION, 'default', 'alertrules', name, body, **kw)

        def patch_status(self, name, body, **kw):
            return api.patch_namespaced_custom_object_status(GROUP, VERSION, 'default', 'alertrules', name, body, **kw)

        def replace(self, name, body):
            return api.replace_namespaced_custom_object(GROUP, VERSION, 'default', 'alertrules', name, body)

        def replace_status(self, name, body):
            return api.replace_namespaced_custom_object_status(GROUP, VERSION, 'default', 'alertrules', name, body)

        def delete(self, name, **kw):
            return api.delete_namespaced_custom_object(GROUP, VERSION, 'default', 'alertrules', name, **kw)

        def list(self, **kw):
            return api.list_namespaced_custom_object(GROUP, VERSION, 'default', 'alertrules', **kw)

        def apply(self, name, body, manager, force=False):
            """(HTTP status, object): an apply that creates answers 201, which the client's
            OpenAPI map does not list, so it would return None for the body."""
            _, code, _ = api.patch_namespaced_custom_object_with_http_info(
                GROUP, VERSION, 'default', 'alertrules', name, body, field_manager=manager, force=force,
                _content_type='application/apply-patch+yaml')
            return code, self.get(name)

    return AlertRules()


# --- server-assigned metadata ----------------------------------------------------------------

def test_create_assigns_metadata_and_takes_namespace_from_url(core, crs):
    cm = core.create_namespaced_config_map('default', configmap('a'))
    rule = crs.create(alertrule('r1'))
    assert cm.metadata.namespace == rule['metadata']['namespace'] == 'default'
    assert re.fullmatch(r'[0-9a-f-]{36}', rule['metadata']['uid']) and cm.metadata.uid != rule['metadata']['uid']
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', rule['metadata']['creationTimestamp'])
    # resourceVersion is one global, monotonic counter across resources.
    assert int(rule['metadata']['resourceVersion']) > int(cm.metadata.resource_version)
    assert rule['metadata']['generation'] == 1 and cm.metadata.generation is None  # CRs only


def test_generation_moves_on_spec_changes_only(crs):
    crs.create(alertrule('r1', {'expr': 'a'}))
    labelled = crs.patch('r1', {'metadata': {'labels': {'team': 'x'}}})
    with_status = crs.patch_status('r1', {'status': {'phase': 'Ready'}})
    respec = crs.patch('r1', {'spec': {'expr': 'b'}})
    assert [o['metadata']['generation'] for o in (labelled, with_status, respec)] == [1, 1, 2]
    versions = [int(o['metadata']['resourceVersion']) for o in (labelled, with_status, respec)]
    assert versions == sorted(set(versions))
    # A write that changes nothing is not a new version.
    assert crs.patch('r1', {'spec': {'expr': 'b'}})['metadata']['resourceVersion'] == respec['metadata']['resourceVersion']


def test_create_answers_201_and_conflicts_with_existing(client, core, crs):
    _, code, _ = k8s.CustomObjectsApi(client).create_namespaced_custom_object_with_http_info(
        GROUP, VERSION, 'default', 'alertrules', alertrule('r1'))
    assert code == 201
    with pytest.raises(ApiException) as exc:
        crs.create(alertrule('r1'))
    assert error_of(exc) == (409, 'AlreadyExists')
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map('nowhere', configmap('a'))
    assert error_of(exc) == (404, 'NotFound')
    with pytest.raises(ApiException) as exc:
        crs.create(alertrule('Bad_Name'))
    assert error_of(exc) == (422, 'Invalid')


# --- writes: concurrency, patches, replace, status subresource ---------------------------------

def test_stale_resource_version_is_a_conflict(crs):
    created = crs.create(alertrule('r1'))
    stale = created['metadata']['resourceVersion']
    fresh = crs.patch('r1', {'spec': {'expr': 'b'}})['metadata']['resourceVersion']
    for write in (lambda: crs.replace('r1', dict(created, spec={'expr': 'c'})),
                  lambda: crs.patch('r1', {'metadata': {'resourceVersion': stale}, 'spec': {'expr': 'c'}})):
        with pytest.raises(ApiException) as exc:
            write()
        assert error_of(exc) == (409, 'Conflict')
    assert crs.get('r1')['spec'] == {'expr': 'b'}
    ok = crs.patch('r1', {'metadata': {'resourceVersion': fresh}, 'spec': {'expr': 'c'}})
    assert ok['spec'] == {'expr': 'c'}
    # Custom resources allow no unconditional replace (built-ins like ConfigMaps do).
    unconditional = dict(ok, metadata={'name': 'r1'})
    with pytest.raises(ApiException) as exc:
        crs.replace('r1', unconditional)
    assert error_of(exc) == (422, 'Invalid')


def test_json_patch_test_failure_is_422(crs):
    created = crs.create(alertrule('r1'))
    crs.patch('r1', {'spec': {'expr': 'b'}})
    ops = [{'op': 'test', 'path': '/metadata/resourceVersion', 'value': created['metadata']['resourceVersion']},
           {'op': 'replace', 'path': '/spec/expr', 'value': 'c'}]
    with pytest.raises(ApiException) as exc:
        crs.patch('r1', ops, _content_type='application/json-patch+json')
    assert error_of(exc) == (422, 'Invalid')
    ops[0]['value'] = crs.get('r1')['metadata']['resourceVersion']
    assert crs.patch('r1', ops, _content_type='application/json-patch+json')['spec'] == {'expr': 'c'}


def test_replace_and_status_subresource_touch_only_their_part(crs):
    crs.create(alertrule('r1', {'expr': 'a', 'for': '5m'}))
    crs.patch_status('r1', {'status': {'phase': 'Ready'}, 'spec': {'expr': 'ignored'}})
    current = crs.get('r1')
    assert current['spec'] == {'expr': 'a', 'for': '5m'} and current['status'] == {'phase': 'Ready'}
    # PUT replaces the spec wholesale; the status is not writable through the main resource.
    replaced = crs.replace('r1', dict(current, spec={'expr': 'b'}, status={'phase': 'Hacked'}))
    assert replaced['spec'] == {'expr': 'b'} and replaced['status'] == {'phase': 'Ready'}
    assert crs.patch('r1', {'status': {'phase': 'Hacked'}})['status'] == {'phase': 'Ready'}
    # PUT on /status replaces the status and ignores everything else.
    new_status = crs.replace_status('r1', dict(replaced, spec={'expr': 'ignored'}, status={'phase': 'Failed'}))
    assert new_status['spec'] == {'expr': 'b'} and new_status['status'] == {'phase': 'Failed'}
    assert new_status['metadata']['generation'] == 2


def test_server_side_apply(crs):
    code, created = crs.apply('r1', alertrule('r1', {'expr': 'a', 'for': '5m'}), manager='operator')
    assert code == 201 and created['spec'] == {'expr': 'a', 'for': '5m'}
    # The same manager dropping a field removes it; other fields are kept or updated.
    code, updated = crs.apply('r1', alertrule('r1', {'expr': 'b'}, labels={'a': '1'}), manager='operator')
    assert code == 200 and updated['spec'] == {'expr': 'b'} and updated['metadata']['labels'] == {'a': '1'}
    # Another manager changing an owned field conflicts unless it forces; new fields just merge.
    with pytest.raises(ApiException) as exc:
        crs.apply('r1', alertrule('r1', {'expr': 'c'}), manager='human')
    assert error_of(exc) == (409, 'Conflict') and 'spec.expr' in exc.value.body
    assert crs.apply('r1', alertrule('r1', {'severity': 'page'}), manager='human')[1]['spec'] == {
        'expr': 'b', 'severity': 'page'}
    forced = crs.apply('r1', alertrule('r1', {'expr': 'c', 'severity': 'page'}), manager='human', force=True)[1]
    assert forced['spec'] == {'expr': 'c', 'severity': 'page'}
    # The operator no longer owns spec.expr, so dropping it from its config leaves it in place.
    assert crs.apply('r1', alertrule('r1', {}), manager='operator')[1]['spec'] == {'expr': 'c', 'severity': 'page'}


# --- reads: selectors, pagination, namespaces, discovery --------------------------------------

def test_label_and_field_selectors_on_list(core):
    for name, labels in [('a', {'app': 'x', 'tier': 'db'}), ('b', {'app': 'y'}), ('c', {})]:
        core.create_namespaced_config_map('default', configmap(name, labels=labels))

    def names(**selectors):
        return [cm.metadata.name for cm in core.list_namespaced_config_map('default', **selectors).items]

    assert names(label_selector='app=x') == ['a']
    assert names(label_selector='app!=x') == ['b', 'c']
    assert names(label_selector='app in (x, y)') == ['a', 'b']
    assert names(label_selector='app notin (x),tier') == []
    assert names(label_selector='app') == ['a', 'b']
    assert names(label_selector='!app') == ['c']
    assert names(label_selector='app==x,tier=db') == ['a']
    assert names(field_selector='metadata.name=b') == ['b']
    with pytest.raises(ApiException) as exc:
        names(label_selector='app in x')
    assert error_of(exc) == (400, 'BadRequest')


def test_list_pagination(core):
    for name in 'abcde':
        core.create_namespaced_config_map('default', configmap(name))
    first = core.list_namespaced_config_map('default', limit=2)
    second = core.list_namespaced_config_map('default', limit=2, _continue=first.metadata._continue)
    third = core.list_namespaced_config_map('default', limit=2, _continue=second.metadata._continue)
    assert [[cm.metadata.name for cm in page.items] for page in (first, second, third)] == [['a', 'b'], ['c', 'd'], ['e']]
    assert third.metadata._continue is None and first.metadata.remaining_item_count == 3


def test_namespaces_and_discovery(client, core):
    core.create_namespace({'metadata': {'name': 'team-a', 'labels': {'team': 'a'}}})
    assert [ns.metadata.name for ns in core.list_namespace(label_selector='team=a').items] == ['team-a']
    assert core.read_namespace('team-a').metadata.labels == {'team': 'a'}
    assert k8s.CoreApi(client).get_api_versions().versions == ['v1']
    groups = {g.name: g for g in k8s.ApisApi(client).get_api_versions().groups}
    assert {GROUP, 'observatory.dev', 'monitoring.coreos.com', 'coordination.k8s.io', 'kopf.dev'} <= set(groups)
    assert groups['monitoring.coreos.com'].preferred_version.version == 'v1'
    resources = {r.name: r for r in k8s.CustomObjectsApi(client).get_api_resources('observatory.dev', 'v1alpha1').resources}
    assert {'alertrules', 'alertrules/status', 'slos', 'slos/status', 'observabilitystacks'} <= set(resources)
    assert resources['alertrules'].namespaced and resources['alertrules'].kind == 'AlertRule'
    core_resources = {r.name: r for r in core.get_api_resources().resources}
    assert not core_resources['namespaces'].namespaced and core_resources['secrets'].namespaced


# --- deletion: finalizers, garbage collection --------------------------------------------------

def test_delete_waits_for_finalizers(cluster, crs):
    crs.create(alertrule('r1', finalizers=['observatory.dev/cleanup']))
    crs.delete('r1')
    marked = crs.get('r1')
    assert marked['metadata']['deletionTimestamp']
    with pytest.raises(ApiException) as exc:
        crs.patch('r1', {'metadata': {'finalizers': ['observatory.dev/cleanup', 'another']}})
    assert error_of(exc) == (422, 'Invalid')
    crs.patch('r1', {'metadata': {'finalizers': None}})
    with pytest.raises(ApiException) as exc:
        crs.get('r1')
    assert error_of(exc) == (404, 'NotFound')
    # Releasing the last finalizer deletes in the same write: created, marked, gone.
    history = cluster.history(ALERTRULES, 'r1', 'default')
    assert len(history) == 3 and history[1]['metadata']['deletionTimestamp'] and history[2] is None


# --- watch -------------------------------------------------------------------------------------

def watched(core, resource_version, **selectors) -> list[tuple[str, str]]:
    """ConfigMap watch events up to a marker object written last: no waiting on timeouts."""
    marker = core.create_namespaced_config_map('default', configmap('', generate_name='marker-', labels={'app': 'x'}))
    events, stream = [], watch.Watch()
    for event in stream.stream(core.list_namespaced_config_map, 'default', resource_version=resource_version, **selectors):
        name = event['object'].metadata.name
        if name == marker.metadata.name:
            stream.stop()
        elif not name.startswith('marker-'):
            events.append((event['type'], name))
    return events


def test_watch_resumes_from_resource_version(core):
    core.create_namespaced_config_map('default', configmap('before'))
    since = core.list_namespaced_config_map('default').metadata.resource_version
    core.create_namespaced_config_map('default', configmap('a'))
    middle = core.patch_namespaced_config_map('a', 'default', {'data': {'k': 'v'}},
                                              _content_type='application/merge-patch+json')
    core.delete_namespaced_config_map('a', 'default')
    assert watched(core, since) == [('ADDED', 'a'), ('MODIFIED', 'a'), ('DELETED', 'a')]
    assert watched(core, middle.metadata.resource_version) == [('DELETED', 'a')]
    assert watched(core, None) == [('ADDED', 'before')]  # no version: the current state, then live


def test_watch_of_a_compacted_version_is_gone(cluster, core):
    since = core.list_namespaced_config_map('default').metadata.resource_version
    core.create_namespaced_config_map('default', configmap('a'))
    cluster.compact()
    with pytest.raises(ApiException) as exc:
        watched(core, since)
    assert exc.value.status == 410


def test_watch_with_label_selector_sees_objects_enter_and_leave(core):
    since = core.list_namespaced_config_map('default').metadata.resource_version
    core.create_namespaced_config_map('default', configmap('a', labels={'app': 'x'}))
    core.create_namespaced_config_map('default', configmap('b', labels={'app': 'y'}))
    for name, app in [('a', 'y'), ('b', 'x'), ('b', 'z')]:
        core.patch_namespaced_config_map(name, 'default', {'metadata': {'labels': {'app': app}}},
                                         _content_type='application/merge-patch+json')
    assert watched(core, since, label_selector='app=x') == [('ADDED', 'a'), ('DELETED', 'a'), ('ADDED', 'b'), ('DELETED', 'b')]


@pytest.mark.asyncio
async def test_watch_initial_events_live_events_and_dropped_streams():
    async with cluster_context() as cluster, aiohttp.ClientSession(
            cluster.url, headers={'Authorization': f'Bearer {cluster.token(ADMIN)}'}) as http:
        url = '/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true'
        for abrupt, existing in [(False, []), (True, ['live-0'])]:
            async with http.get(url) as response:
                initial = [json.loads(await response.content.readline()) for _ in range(len(existing) + 1)]
                cluster.seed(configmap(f'live-{abrupt:d}'))
                live = json.loads(await response.content.readline())
                cluster.drop_watches(abrupt=abrupt)
                if abrupt:
                    with pytest.raises(aiohttp.ClientPayloadError):
                        await response.content.read()
                else:
                    assert await response.content.read() == b''  # a clean end of the stream
            assert [(e['type'], e['object']['metadata']['name']) for e in initial[:-1]] == [('ADDED', n) for n in existing]
            assert initial[-1]['type'] == 'BOOKMARK'
            assert initial[-1]['object']['metadata']['annotations'] == {'k8s.io/initial-events-end': 'true'}
            assert (live['type'], live['object']['metadata']['name']) == ('ADDED', f'live-{abrupt:d}')


# --- fault injection and the request log --------------------------------------------------------

def test_injected_errors_change_nothing(cluster, crs):
    crs.create(alertrule('r1'))
    cluster.fail('PATCH', r'/alertrules/r1$', status=500, times=2)
    cluster.fail('POST', r'/alertrules$', status=409)
    for status in (500, 500):
        with pytest.raises(ApiException) as exc:
            crs.patch('r1', {'spec': {'expr': 'b'}})
        assert exc.value.status == status
    assert crs.get('r1')['spec'] == {'expr': 'up == 0'}
    assert crs.patch('r1', {'spec': {'expr': 'b'}})['spec'] == {'expr': 'b'}
    with pytest.raises(ApiException) as exc:
        crs.create(alertrule('r2'))
    assert exc.value.status == 409 and cluster.get(ALERTRULES, 'r2', 'default') is None
    crs.patch_status('r1', {'status': {'phase': 'Ready'}})
    crs.delete('r1')
    assert cluster.write_counts() == {'alertrules': 6, 'alertrules/status': 1}


def test_hanging_requests_outlast_client_timeouts(cluster, crs):
    crs.create(alertrule('r1'))
    cluster.hang('GET', r'/alertrules/r1$', seconds=5, times=1)
    with pytest.raises(TimeoutError):
        urllib.request.urlopen(urllib.request.Request(f'{cluster.url}/apis/{GROUP}/{VERSION}/namespaces/default/alertrules/r1',
                                                      headers={'Authorization': f'Bearer {cluster.token(ADMIN)}'}), timeout=0.2)
    # The official client retries a read timeout; only the matching requests hang, so it recovers.
    cluster.hang('GET', r'/alertrules/r1$', seconds=5, times=1)
    cluster.clear_requests()
    assert crs.get('r1', _request_timeout=0.2)['metadata']['name'] == 'r1'
    assert [r.method for r in cluster.requests] == ['GET', 'GET']


# --- kopf, end to end -------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_kopf_handles_each_change_once_and_not_again_after_restart():
    registry = kopf.OperatorRegistry()
    handled: list[tuple[str, str]] = []

    @kopf.on.create(GROUP, VERSION, 'alertrules', registry=registry)
    @kopf.on.update(GROUP, VERSION, 'alertrules', registry=registry)
    def observe(name, spec, patch, **_):
        handled.append((name, spec['expr']))
        patch.status['observedExpr'] = spec['expr']

    def observed(name: str) -> str | None:
        return ((cluster.get(ALERTRULES, name, 'default') or {}).get('status') or {}).get('observedExpr')

    async with cluster_context() as cluster:
        serving_test_crd(cluster)
        async with kopf_operator(cluster, registry, user=ADMIN):
            await asyncio.to_thread(cluster_api_create, cluster, alertrule('r1', {'expr': 'a'}))
            await cluster.until(lambda: observed('r1') == 'a')
            cluster.patch(ALERTRULES, 'r1', 'default', {'spec': {'expr': 'b'}})
            await cluster.until(lambda: observed('r1') == 'b')
        assert handled == [('r1', 'a'), ('r1', 'b')]
        annotations = cluster.get(ALERTRULES, 'r1', 'default')['metadata']['annotations']
        assert json.loads(annotations['kopf.zalando.org/last-handled-configuration'])['spec'] == {'expr': 'b'}

        cluster.clear_requests()
        async with kopf_operator(cluster, registry, user=ADMIN):
            # One worker handles an object's events in order, so the handling of this later change
            # comes after the restarted operator processed r1 as listed, and shows what it did.
            cluster.patch(ALERTRULES, 'r1', 'default', {'spec': {'expr': 'c'}})
            await cluster.until(lambda: observed('r1') == 'c')
        assert handled == [('r1', 'a'), ('r1', 'b'), ('r1', 'c')]
        # Exactly one handling's writes (progress annotation + status), none for the re-listing.
        assert cluster.write_counts() == {'alertrules': 1, 'alertrules/status': 1}


def cluster_api_create(cluster, body):
    """Create through the official (blocking) client, as a user's kubectl would."""
    with cluster.api_client(ADMIN) as client:
        return k8s.CustomObjectsApi(client).create_namespaced_custom_object(GROUP, VERSION, 'default', 'alertrules', body)
