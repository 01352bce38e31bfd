"""Deletion and lifecycle as kube-apiserver and kube-controller-manager do them (sources: controllers.py).

Asynchronous garbage collection with multi-owner rules and propagation policies, the generation
bump when deletionTimestamp is set, namespaces Terminating, and events.k8s.io/v1 validation.
Requests go through the official client as cluster-admin; what the controllers do later is
waited for as a condition, never assumed to have happened inside the DELETE.
"""

from __future__ import annotations

import datetime
import json

import kubernetes.client as k8s
import pytest
from kubernetes.client.rest import ApiException

from .emulator import running_cluster
from .rbac import ADMIN

GROUP, VERSION = 'observatory.dev', 'v1alpha1'
ALERTRULES = f'{GROUP}/{VERSION}/alertrules'
PROMETHEUSRULES = 'monitoring.coreos.com/v1/prometheusrules'
CONFIGMAPS = 'v1/configmaps'


def alertrule(name: str, **metadata) -> dict:
    return {'apiVersion': f'{GROUP}/{VERSION}', 'kind': 'AlertRule', 'metadata': {'name': name, **metadata},
            'spec': {'severity': 'warning', 'threshold': {'expr': 'up == 0', 'value': 1}}}


def configmap(name: str, **metadata) -> dict:
    return {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': name, **metadata}, 'data': {}}


def ref(owner: dict, **extra) -> dict:
    return {'apiVersion': owner['apiVersion'], 'kind': owner['kind'], 'name': owner['metadata']['name'],
            'uid': owner['metadata']['uid'], **extra}


def refs(cluster, resource: str, name: str, namespace: str = 'default') -> list[str] | None:
    obj = cluster.get(resource, name, namespace)
    return None if obj is None else [r['name'] for r in obj['metadata'].get('ownerReferences') or []]


@pytest.fixture()
def cluster():
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture()
def api(cluster):
    with cluster.api_client(ADMIN) as client:
        yield k8s.CoreV1Api(client), k8s.CustomObjectsApi(client)


def test_garbage_collection_happens_after_the_delete_not_inside_it():
    # A collector that would take an hour: the DELETE has answered, the dependent is still there.
    with running_cluster(controller_delay=3600) as cluster:
        owner = cluster.seed(alertrule('owner'))
        cluster.seed(configmap('dependent', ownerReferences=[ref(owner)]))
        cluster.delete(ALERTRULES, 'owner', 'default')
        assert cluster.get(CONFIGMAPS, 'dependent', 'default') is not None
        cluster.call(cluster.emulator.controllers.sweep)  # what the collector does when it runs
        assert cluster.get(CONFIGMAPS, 'dependent', 'default') is None


def test_dependents_go_once_their_last_owner_is_gone(cluster, api):
    core, crs = api
    owner, other = cluster.seed(alertrule('owner')), cluster.seed(alertrule('other'))
    cluster.seed({'apiVersion': 'monitoring.coreos.com/v1', 'kind': 'PrometheusRule', 'spec': {},
                  'metadata': {'name': 'rules', 'namespace': 'default', 'ownerReferences': [ref(owner)]}})
    cluster.seed(configmap('shared', ownerReferences=[ref(owner), ref(other)]))
    crs.delete_namespaced_custom_object(GROUP, VERSION, 'default', 'alertrules', 'owner')
    cluster.wait(lambda: cluster.get(PROMETHEUSRULES, 'rules', 'default') is None)
    # A dependent with another live owner stays, without the reference to the gone one.
    cluster.wait(lambda: refs(cluster, CONFIGMAPS, 'shared') == ['other'])
    crs.delete_namespaced_custom_object(GROUP, VERSION, 'default', 'alertrules', 'other')
    cluster.wait(lambda: cluster.get(CONFIGMAPS, 'shared', 'default') is None)


def test_a_reference_to_an_owner_that_never_existed_or_in_another_namespace_is_dangling(cluster):
    cluster.seed({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': 'team-a'}})
    elsewhere = cluster.seed(alertrule('owner', namespace='team-a'))
    cluster.seed(configmap('invented', ownerReferences=[dict(ref(elsewhere), uid='no-such-uid')]))
    cluster.seed(configmap('cross-namespace', ownerReferences=[ref(elsewhere)]))
    kept = cluster.seed(alertrule('kept'))
    cluster.seed(configmap('kept-dependent', ownerReferences=[ref(kept)]))
    cluster.wait(lambda: cluster.get(CONFIGMAPS, 'invented', 'default') is None
                 and cluster.get(CONFIGMAPS, 'cross-namespace', 'default') is None)
    cluster.wait(cluster.controllers_idle)
    assert refs(cluster, CONFIGMAPS, 'kept-dependent') == ['kept']


def test_orphan_propagation_strips_references_then_lets_the_owner_go(cluster, api):
    _, crs = api
    owner = cluster.seed(alertrule('owner'))
    cluster.seed(configmap('dependent', ownerReferences=[ref(owner)]))
    marked = crs.delete_namespaced_custom_object(GROUP, VERSION, 'default', 'alertrules', 'owner', propagation_policy='Orphan')
    # The registry adds the `orphan` finalizer; the collector removes the references, then the finalizer.
    assert marked['metadata']['finalizers'] == ['orphan'] and marked['metadata']['deletionTimestamp']
    cluster.wait(lambda: cluster.get(ALERTRULES, 'owner', 'default') is None)
    assert refs(cluster, CONFIGMAPS, 'dependent') == []


def test_foreground_deletion_keeps_the_owner_until_blocking_dependents_are_gone(cluster, api):
    _, crs = api
    owner = cluster.seed(alertrule('owner'))
    cluster.seed(configmap('blocker', ownerReferences=[ref(owner, blockOwnerDeletion=True)], finalizers=['test/hold']))
    marked = crs.delete_namespaced_custom_object(GROUP, VERSION, 'default', 'alertrules', 'owner', propagation_policy='Foreground')
    assert marked['metadata']['finalizers'] == ['foregroundDeletion']
    # The dependent is being deleted (held by its own finalizer), so the owner waits for it.
    cluster.wait(lambda: (cluster.get(CONFIGMAPS, 'blocker', 'default') or {}).get('metadata', {}).get('deletionTimestamp'))
    cluster.wait(cluster.controllers_idle)
    assert cluster.get(ALERTRULES, 'owner', 'default')['metadata']['finalizers'] == ['foregroundDeletion']
    cluster.patch(CONFIGMAPS, 'blocker', 'default', {'metadata': {'finalizers': None}})
    cluster.wait(lambda: cluster.get(ALERTRULES, 'owner', 'default') is None)


def test_marking_for_deletion_bumps_the_generation_where_it_is_tracked(cluster, api):
    _, crs = api
    cluster.seed(alertrule('r1', finalizers=['observatory.dev/cleanup']))
    cluster.seed(configmap('c1', finalizers=['observatory.dev/cleanup']))
    marked = crs.delete_namespaced_custom_object(GROUP, VERSION, 'default', 'alertrules', 'r1')
    assert marked['metadata']['generation'] == 2  # store.go markAsDeleting
    # A second DELETE changes nothing; kinds without generation get none.
    assert crs.delete_namespaced_custom_object(GROUP, VERSION, 'default', 'alertrules', 'r1')['metadata']['generation'] == 2
    assert 'generation' not in cluster.delete(CONFIGMAPS, 'c1', 'default')['metadata']


def test_a_deleted_namespace_terminates_refuses_new_content_then_goes(cluster, api):
    core, _ = api
    core.create_namespace({'metadata': {'name': 'team-a'}})
    created = core.read_namespace('team-a')
    assert (created.spec.finalizers, created.status.phase) == (['kubernetes'], 'Active')
    cluster.seed(configmap('a', namespace='team-a'))
    cluster.seed(configmap('held', namespace='team-a', finalizers=['test/hold']))
    cluster.seed(configmap('kept'))
    core.delete_namespace('team-a')
    terminating = cluster.get('v1/namespaces', 'team-a')
    assert terminating['status']['phase'] == 'Terminating' and terminating['metadata']['deletionTimestamp']
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map('team-a', configmap('late'))
    body = json.loads(exc.value.body)
    assert (exc.value.status, body['reason'], body['message']) == (
        403, 'Forbidden', 'configmaps "late" is forbidden: unable to create new content in namespace team-a because it is being terminated')
    assert body['details']['causes'] == [{'reason': 'NamespaceTerminating', 'message': 'namespace team-a is being terminated',
                                          'field': 'metadata.namespace'}]
    # Its content is deleted; an object held by a finalizer keeps the namespace until released.
    cluster.wait(lambda: cluster.get(CONFIGMAPS, 'a', 'team-a') is None)
    cluster.wait(cluster.controllers_idle)
    assert cluster.get('v1/namespaces', 'team-a')['status']['phase'] == 'Terminating'
    cluster.patch(CONFIGMAPS, 'held', 'team-a', {'metadata': {'finalizers': None}})
    cluster.wait(lambda: cluster.get('v1/namespaces', 'team-a') is None)
    assert [c['metadata']['name'] for c in cluster.list(CONFIGMAPS)] == ['kept']


def test_the_system_namespaces_cannot_be_deleted(api):
    core, _ = api
    with pytest.raises(ApiException) as exc:
        core.delete_namespace('default')
    assert (exc.value.status, json.loads(exc.value.body)['message']) == (403, 'namespaces "default" is forbidden: this namespace may not be deleted')


def event(**fields) -> dict:
    now = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')
    return {'apiVersion': 'events.k8s.io/v1', 'kind': 'Event', 'metadata': {'name': 'e1', 'namespace': 'default'},
            'eventTime': now, 'type': 'Normal', 'reason': 'Applied', 'action': 'Reconcile', 'note': 'ok',
            'reportingController': 'observatory.dev/operator', 'reportingInstance': 'observatory-0',
            'regarding': {'kind': 'AlertRule', 'name': 'r1', 'namespace': 'default'}, **fields}


def create_event(cluster, body: dict) -> tuple[int, dict]:
    return cluster.request('POST', '/apis/events.k8s.io/v1/namespaces/default/events', body)


def test_event_notes_are_limited_to_1024_bytes_not_characters(cluster):
    assert create_event(cluster, event(note='x' * 1024))[0] == 201
    # 512 two-byte characters: 512 characters, 1,024 bytes; one more character is over.
    assert create_event(cluster, event(note='é' * 512, metadata={'name': 'e2', 'namespace': 'default'}))[0] == 201
    status, body = create_event(cluster, event(note='é' * 513, metadata={'name': 'e3', 'namespace': 'default'}))
    assert (status, body['reason'], body['message']) == (
        422, 'Invalid', 'Event.events.k8s.io "e3" is invalid: message: Invalid value: "": can have at most 1024 characters')
    assert body['details']['causes'] == [{'reason': 'FieldValueInvalid', 'field': 'message',
                                          'message': 'Invalid value: "": can have at most 1024 characters'}]


@pytest.mark.parametrize(('missing', 'field'), [
    ('reportingController', 'reportingController'), ('reportingInstance', 'reportingInstance'),
    ('action', 'action'), ('reason', 'reason'), ('eventTime', 'eventTime'),
])
def test_events_need_their_reporting_fields(cluster, missing, field):
    body = event()
    del body[missing]
    status, answer = create_event(cluster, body)
    assert status == 422
    assert {'reason': 'FieldValueRequired', 'message': 'Required value', 'field': field} in answer['details']['causes']


def test_event_type_and_deprecated_fields_are_checked(cluster):
    status, answer = create_event(cluster, event(type='Error', deprecatedCount=3))
    assert status == 422
    assert answer['message'] == ('Event.events.k8s.io "e1" is invalid: [type: Invalid value: "": has invalid value: Error, '
                                 'count: Invalid value: "": needs to be unset]')


def test_the_operator_posts_an_event_with_a_long_non_ascii_note(cluster):
    from observatory.controller.kube import Kube, Owner
    from observatory.conventions import DEFAULT

    owner = Owner(f'{GROUP}/{VERSION}', 'ObservabilityStack', 'default', 'llm', 'uid-1')
    with cluster.api_client() as client:  # as the operator
        Kube(client, DEFAULT).post_event(owner, 'Warning', 'HelmFailed', 'Fehler: Größe überschritten ' * 60)
    assert [e['regarding']['name'] for e in cluster.list('events.k8s.io/v1/events', 'default')] == ['llm']
