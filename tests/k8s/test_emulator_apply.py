"""Server-side apply and managedFields behave as kube-apiserver 1.29–1.33's (tests/k8s/ssa.py).

References: https://kubernetes.io/docs/reference/using-api/server-side-apply/ (field management,
conflicts, merge strategy, transferring ownership), sigs.k8s.io/structured-merge-diff
merge/update.go (Apply/Update), fieldpath/element.go (path strings), and the apiserver's
k8s.io/apimachinery/pkg/util/managedfields/internal/conflict.go (409 message).
"""

from __future__ import annotations

import json

import kubernetes.client as k8s
import pytest
from kubernetes.client.rest import ApiException

from .emulator import running_cluster
from .rbac import ADMIN

GROUP, VERSION = 'apply.test.observatory.dev', 'v1'
ITEM = {'type': 'object', 'properties': {'name': {'type': 'string'}, 'value': {'type': 'string'}, 'weight': {'type': 'integer'}}}
SPEC = {'type': 'object', 'properties': {
    'x': {'type': 'string'}, 'y': {'type': 'string'}, 'z': {'type': 'string'},
    'items': {'type': 'array', 'items': ITEM, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name']},
    'tags': {'type': 'array', 'items': {'type': 'string'}, 'x-kubernetes-list-type': 'set'},
    'order': {'type': 'array', 'items': {'type': 'string'}},  # no list type: atomic
    'selector': {'type': 'object', 'x-kubernetes-map-type': 'atomic', 'additionalProperties': {'type': 'string'}},
    'labels': {'type': 'object', 'additionalProperties': {'type': 'string'}},
}}
CRD = {'apiVersion': 'apiextensions.k8s.io/v1', 'kind': 'CustomResourceDefinition', 'metadata': {'name': f'things.{GROUP}'},
       'spec': {'group': GROUP, 'scope': 'Namespaced', 'names': {'plural': 'things', 'singular': 'thing', 'kind': 'Thing'},
                'versions': [{'name': VERSION, 'served': True, 'storage': True, 'subresources': {'status': {}},
                              'schema': {'openAPIV3Schema': {'type': 'object', 'properties': {
                                  'spec': SPEC, 'status': {'type': 'object', 'properties': {'phase': {'type': 'string'}}}}}}}]}}


def thing(**spec) -> dict:
    return {'apiVersion': f'{GROUP}/{VERSION}', 'kind': 'Thing', 'metadata': {'name': 't'}, 'spec': spec}


@pytest.fixture()
def cluster():
    with running_cluster() as cluster:
        cluster.call(cluster.emulator.register_crd, CRD)
        yield cluster


@pytest.fixture()
def api(cluster):
    with cluster.api_client(ADMIN) as client:
        yield k8s.CustomObjectsApi(client)


def apply(api, body, manager, force=False, status=False, **kw):
    call = api.patch_namespaced_custom_object_status if status else api.patch_namespaced_custom_object
    call(GROUP, VERSION, 'default', 'things', body['metadata']['name'], body, field_manager=manager, force=force,
         _content_type='application/apply-patch+yaml', **kw)
    return api.get_namespaced_custom_object(GROUP, VERSION, 'default', 'things', body['metadata']['name'])


def fields(obj, manager, operation='Apply', subresource=None) -> dict:
    entry = [e for e in obj['metadata']['managedFields']
             if (e['manager'], e['operation'], e.get('subresource')) == (manager, operation, subresource)]
    return entry[0]['fieldsV1'] if entry else {}


def refusal(exc) -> dict:
    return json.loads(exc.value.body)


def test_managed_fields_record_each_manager_in_fields_v1(api):
    created = api.create_namespaced_custom_object(GROUP, VERSION, 'default', 'things', thing(x='1'), field_manager='creator')
    assert created['metadata']['managedFields'] == [{
        'manager': 'creator', 'operation': 'Update', 'apiVersion': f'{GROUP}/{VERSION}', 'time': created['metadata']['managedFields'][0]['time'],
        'fieldsType': 'FieldsV1', 'fieldsV1': {'f:spec': {'f:x': {}}}}]
    live = apply(api, thing(items=[{'name': 'a', 'value': '1'}], tags=['p'], order=['b', 'a'], selector={'k': 'v'}), 'applier')
    assert fields(live, 'applier') == {'f:spec': {
        'f:items': {'k:{"name":"a"}': {'.': {}, 'f:name': {}, 'f:value': {}}},
        'f:order': {}, 'f:selector': {}, 'f:tags': {'v:"p"': {}}}}
    # Without ?fieldManager= the manager is the User-Agent's product name (the client's "OpenAPI-Generator").
    patched = api.patch_namespaced_custom_object(GROUP, VERSION, 'default', 'things', 't', {'spec': {'y': '2'}})
    assert fields(patched, 'OpenAPI-Generator', 'Update') == {'f:spec': {'f:y': {}}}


def test_list_maps_and_sets_merge_per_item_atomic_lists_and_maps_replace(api):
    apply(api, thing(items=[{'name': 'a', 'value': '1'}], tags=['p'], order=['1'], selector={'a': '1'}), 'one')
    live = apply(api, thing(items=[{'name': 'b', 'value': '2'}], tags=['q'], labels={'k': 'v'}), 'two')
    assert live['spec']['items'] == [{'name': 'b', 'value': '2'}, {'name': 'a', 'value': '1'}]
    assert sorted(live['spec']['tags']) == ['p', 'q']
    with pytest.raises(ApiException) as exc:  # an atomic list is one field: another value conflicts
        apply(api, thing(order=['2']), 'two')
    assert refusal(exc)['message'] == 'Apply failed with 1 conflict: conflict with "one": .spec.order'
    with pytest.raises(ApiException) as exc:
        apply(api, thing(selector={'b': '2'}), 'two')
    assert refusal(exc)['message'] == 'Apply failed with 1 conflict: conflict with "one": .spec.selector'
    forced = apply(api, thing(selector={'b': '2'}, items=[{'name': 'b', 'value': '2'}], tags=['q']), 'two', force=True)
    assert forced['spec']['selector'] == {'b': '2'}  # replaced whole, not merged


def test_conflicts_name_the_other_managers_fields(api):
    api.create_namespaced_custom_object(GROUP, VERSION, 'default', 'things', thing(x='1', y='1'), field_manager='helm')
    apply(api, thing(z='1', items=[{'name': 'a', 'weight': 1}]), 'operator')
    with pytest.raises(ApiException) as exc:
        apply(api, thing(x='2'), 'operator')
    body = refusal(exc)
    assert (exc.value.status, body['reason']) == (409, 'Conflict')
    assert body['message'] == f'Apply failed with 1 conflict: conflict with "helm" using {GROUP}/{VERSION}: .spec.x'
    assert body['details']['causes'] == [{'reason': 'FieldManagerConflict', 'message': f'conflict with "helm" using {GROUP}/{VERSION}', 'field': '.spec.x'}]
    with pytest.raises(ApiException) as exc:
        apply(api, thing(x='2', y='2', items=[{'name': 'a', 'weight': 2}]), 'user')
    assert refusal(exc)['message'] == (
        'Apply failed with 3 conflicts: conflicts with "helm" using apply.test.observatory.dev/v1:\n- .spec.x\n- .spec.y\n'
        'conflicts with "operator":\n- .spec.items[name="a"].weight')


def test_the_same_value_is_shared_and_kept_when_one_manager_lets_go(api):
    apply(api, thing(x='1', y='1'), 'a')
    apply(api, thing(x='1'), 'b')  # same value: no conflict, co-owned
    live = apply(api, thing(), 'a')  # a stops applying x (b still owns it) and y (nobody else does)
    assert live['spec'] == {'x': '1'}
    # An applied empty map is a member (as `f:emptyDir: {}` is in a Pod's managedFields).
    assert fields(live, 'b') == {'f:spec': {'f:x': {}}} and fields(live, 'a') == {'f:spec': {}}


def test_force_transfers_ownership_and_the_loser_cannot_remove_it(api):
    apply(api, thing(x='1', items=[{'name': 'a', 'value': '1'}]), 'a')
    live = apply(api, thing(x='2'), 'b', force=True)
    assert fields(live, 'a') == {'f:spec': {'f:items': {'k:{"name":"a"}': {'.': {}, 'f:name': {}, 'f:value': {}}}}}
    live = apply(api, thing(), 'a')  # a no longer owns x: dropping it leaves b's value; its item goes
    assert live['spec'] == {'x': '2'}


def test_updates_take_ownership_without_conflict(api):
    apply(api, thing(x='1'), 'operator')
    api.patch_namespaced_custom_object(GROUP, VERSION, 'default', 'things', 't', {'spec': {'x': 'edited'}}, field_manager='kubectl-edit')
    live = api.get_namespaced_custom_object(GROUP, VERSION, 'default', 'things', 't')
    assert fields(live, 'operator') == {} and fields(live, 'kubectl-edit', 'Update') == {'f:spec': {'f:x': {}}}
    with pytest.raises(ApiException) as exc:
        apply(api, thing(x='1'), 'operator')
    assert refusal(exc)['message'] == f'Apply failed with 1 conflict: conflict with "kubectl-edit" using {GROUP}/{VERSION}: .spec.x'


def test_status_is_managed_through_its_subresource_only(api):
    apply(api, thing(x='1'), 'operator')
    live = apply(api, dict(thing(x='ignored'), status={'phase': 'Ready'}), 'operator', status=True)
    assert live['spec'] == {'x': '1'} and live['status'] == {'phase': 'Ready'}
    assert fields(live, 'operator', subresource='status') == {'f:status': {'f:phase': {}}}
    assert fields(live, 'operator') == {'f:spec': {'f:x': {}}}
    live = apply(api, dict(thing(x='1'), status={'phase': 'Failed'}), 'other')  # status ignored on the resource
    assert live['status'] == {'phase': 'Ready'} and fields(live, 'other') == {'f:spec': {'f:x': {}}}


def test_unknown_fields_in_an_apply(api, cluster):
    with pytest.raises(ApiException) as exc:
        apply(api, thing(x='1', bogus='1'), 'a', field_validation='Strict')
    assert exc.value.status == 400 and refusal(exc)['message'] == (
        f'failed to create typed patch object (default/t; {GROUP}/{VERSION}, Kind=Thing): .spec.bogus: field not declared in schema')
    assert 'bogus' not in apply(api, thing(x='1', bogus='1'), 'a')['spec']


def test_builtin_containers_merge_by_name():
    """PodSpec.containers is `x-kubernetes-list-type: map` keyed by name in the Kubernetes OpenAPI."""
    with running_cluster() as cluster, cluster.api_client(ADMIN) as client:
        cluster.register('apps/v1', 'deployments', 'Deployment')
        apps = k8s.AppsV1Api(client)

        def deployment(*containers):
            return {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': 'd'},
                    'spec': {'selector': {'matchLabels': {'app': 'd'}},
                             'template': {'metadata': {'labels': {'app': 'd'}}, 'spec': {'containers': list(containers)}}}}

        for manager, container in (('a', {'name': 'app', 'image': 'app:1'}), ('b', {'name': 'sidecar', 'image': 'side:1'})):
            apps.patch_namespaced_deployment('d', 'default', deployment(container), field_manager=manager,
                                             _content_type='application/apply-patch+yaml')
        live = cluster.get('apps/v1/deployments', 'd', 'default')
        assert [c['name'] for c in live['spec']['template']['spec']['containers']] == ['sidecar', 'app']
        with pytest.raises(ApiException) as exc:
            apps.patch_namespaced_deployment('d', 'default', deployment({'name': 'app', 'image': 'app:2'}), field_manager='b',
                                             _content_type='application/apply-patch+yaml')
        assert json.loads(exc.value.body)['message'] == (
            'Apply failed with 1 conflict: conflict with "a": .spec.template.spec.containers[name="app"].image')
