"""The emulator checks writes against schemas as kube-apiserver 1.29–1.33 does (tests/k8s/schema.py).

Expected texts follow the upstream sources that produce them:
- messages of failed schema checks: k8s.io/kube-openapi pkg/validation/errors/schema.go
  (e.g. `%s in %s should match '%s'`), converted to field errors by apiextensions-apiserver
  pkg/apiserver/validation/validation.go `kubeOpenAPIResultToFieldErrors`;
- field errors: k8s.io/apimachinery pkg/util/validation/field/errors.go (`ErrorBody`);
- the 422 Status: k8s.io/apimachinery pkg/api/errors/errors.go `NewInvalid`;
- pruning, defaulting, fieldValidation: https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
  (#field-pruning, #defaulting, #validation-rules) and KEP-2885 (server-side field validation).
"""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.parse
import urllib.request

import kubernetes.client as k8s
import pytest
from kubernetes.client.rest import ApiException
from observatory.models.common import DURATION_PATTERN

from . import schema
from .emulator import running_cluster
from .helm_support import HelmEmulator
from .rbac import ADMIN

GROUP, VERSION = 'schema.test.observatory.dev', 'v1'
PROPS = {
    'duration': {'type': 'string', 'pattern': '^(([0-9]+)h)?(([0-9]+)m)?$'},
    'level': {'type': 'string', 'enum': ['low', 'high']},
    'replicas': {'type': 'integer', 'minimum': 1, 'maximum': 5},
    'ratio': {'type': 'number', 'exclusiveMinimum': True, 'minimum': 0},
    'title': {'type': 'string', 'minLength': 2, 'maxLength': 4},
    'tags': {'type': 'array', 'items': {'type': 'string'}, 'minItems': 1, 'maxItems': 2, 'x-kubernetes-list-type': 'set'},
    'labels': {'type': 'object', 'additionalProperties': {'type': 'string'}, 'maxProperties': 1},
    'port': {'x-kubernetes-int-or-string': True, 'anyOf': [{'type': 'integer'}, {'type': 'string'}]},
    'since': {'type': 'string', 'format': 'date-time'},
    'note': {'type': 'string', 'nullable': True},
    'mode': {'type': 'string', 'default': 'auto'},
    'free': {'type': 'object', 'x-kubernetes-preserve-unknown-fields': True},
    'template': {'type': 'object', 'x-kubernetes-embedded-resource': True, 'properties': {'data': {'type': 'string'}}},
    'limits': {'type': 'object', 'properties': {'min': {'type': 'integer'}, 'max': {'type': 'integer'}},
               'x-kubernetes-validations': [{'rule': 'self.min <= self.max', 'message': 'min must not exceed max'}]},
}
WIDGETS = f'{GROUP}/{VERSION}/widgets'
WIDGET_CRD = {
    'apiVersion': 'apiextensions.k8s.io/v1', 'kind': 'CustomResourceDefinition', 'metadata': {'name': f'widgets.{GROUP}'},
    'spec': {'group': GROUP, 'scope': 'Namespaced',
             'names': {'plural': 'widgets', 'singular': 'widget', 'kind': 'Widget', 'listKind': 'WidgetList'},
             'versions': [{'name': VERSION, 'served': True, 'storage': True, 'subresources': {'status': {}},
                           'schema': {'openAPIV3Schema': {'type': 'object', 'properties': {
                               'spec': {'type': 'object', 'required': ['level'], 'properties': PROPS},
                               'status': {'type': 'object', 'properties': {'phase': {'type': 'string', 'enum': ['Ready', 'Failed']}}}}}}}]}}


def widget(name: str = 'w1', **spec) -> dict:
    return {'apiVersion': f'{GROUP}/{VERSION}', 'kind': 'Widget', 'metadata': {'name': name}, 'spec': {'level': 'low', **spec}}


@pytest.fixture()
def cluster():
    with running_cluster() as cluster:
        cluster.call(cluster.emulator.register_crd, WIDGET_CRD)
        yield cluster


@pytest.fixture()
def api(cluster):
    with cluster.api_client(ADMIN) as client:
        yield client


def create(api, body, plural='widgets', group=GROUP, version=VERSION, **kw):
    """(object, Warning headers) of a create through the official client."""
    data, _, headers = k8s.CustomObjectsApi(api).create_namespaced_custom_object_with_http_info(
        group, version, 'default', plural, body, **kw)
    return data, headers.getlist('Warning') if hasattr(headers, 'getlist') else [v for k, v in headers.items() if k.lower() == 'warning']


def raw(cluster, method: str, path: str, body: dict, **params: str) -> tuple[int, dict, list[str]]:
    """(status, body, Warning headers) of a request the official client would refuse to send
    (its models reject unknown fields and wrong types before the server sees them)."""
    query = urllib.parse.urlencode(params)
    request = urllib.request.Request(f'{cluster.url}{path}?{query}', json.dumps(body).encode(), method=method,
                                     headers={'Content-Type': 'application/json',
                                              'Authorization': f'Bearer {cluster.token(ADMIN)}'})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read()), response.headers.get_all('Warning') or []
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers.get_all('Warning') or []


def refusal(exc: pytest.ExceptionInfo[ApiException]) -> dict:
    return json.loads(exc.value.body)


@pytest.mark.parametrize(('spec', 'message'), [
    ({'duration': '5m1h'}, "spec.duration: Invalid value: \"5m1h\": spec.duration in body should match '^(([0-9]+)h)?(([0-9]+)m)?$'"),
    ({'level': 'mid'}, 'spec.level: Unsupported value: "mid": supported values: "low", "high"'),
    ({'replicas': 0}, 'spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1'),
    ({'replicas': 6}, 'spec.replicas: Invalid value: 6: spec.replicas in body should be less than or equal to 5'),
    ({'replicas': 'two'}, 'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"'),
    ({'ratio': 0}, 'spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0'),
    ({'title': 'a'}, 'spec.title: Invalid value: "a": spec.title in body should be at least 2 chars long'),
    ({'title': 'abcde'}, 'spec.title: Too long: may not be more than 4 bytes'),
    ({'tags': []}, 'spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items'),
    ({'tags': ['a', 'b', 'c']}, 'spec.tags: Too many: 3: must have at most 2 items'),
    ({'tags': ['a', 'a']}, 'spec.tags[1]: Duplicate value: "a"'),
    ({'labels': {'a': 'x', 'b': 'y'}}, 'spec.labels: Too many: 2: must have at most 1 items'),
    ({'labels': {'a': 1}}, 'spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer"'),
    ({'port': True}, 'spec.port: Invalid value: "boolean": spec.port in body must be of type [integer string]: "boolean"'),
    ({'since': 'yesterday'}, 'spec.since: Invalid value: "yesterday": spec.since in body must be of type date-time: "yesterday"'),
    ({'template': {'data': 'x'}}, '[spec.template.apiVersion: Required value: must not be empty, spec.template.kind: Required value: must not be empty]'),
    ({'limits': {'min': 3, 'max': 1}}, 'spec.limits: Invalid value: "object": min must not exceed max'),
    ({'limits': {'min': 3}}, 'spec.limits: Invalid value: "object": no such key: max evaluating rule: self.min <= self.max'),
])
def test_invalid_values_are_refused_with_the_apiservers_422(api, spec, message):
    with pytest.raises(ApiException) as exc:
        create(api, widget(**spec))
    body = refusal(exc)
    assert (exc.value.status, body['reason']) == (422, 'Invalid')
    assert body['message'] == f'Widget.{GROUP} "w1" is invalid: {message}'
    assert body['details']['kind'] == 'Widget' and body['details']['group'] == GROUP
    assert all(c['field'].startswith('spec.') and c['reason'].startswith('FieldValue') for c in body['details']['causes'])


def test_required_fields_and_every_error_at_once(api):
    body = widget(replicas=9, level=None)
    del body['spec']['level']
    body['spec']['title'] = 'x'
    with pytest.raises(ApiException) as exc:
        create(api, body)
    causes = refusal(exc)['details']['causes']
    assert {(c['field'], c['reason']) for c in causes} == {
        ('spec.level', 'FieldValueRequired'), ('spec.replicas', 'FieldValueInvalid'), ('spec.title', 'FieldValueInvalid')}
    assert refusal(exc)['message'].startswith(f'Widget.{GROUP} "w1" is invalid: [')


def test_valid_values_pass_int_or_string_both_ways(api):
    for i, port in enumerate((8080, 'http')):
        created, _ = create(api, widget(f'w{i}', port=port, since='2026-12-01T10:00:00Z', tags=['a'], ratio=0.5,
                                        limits={'min': 1, 'max': 2}, duration='1h5m'))
        assert created['spec']['port'] == port


def test_unknown_fields_are_pruned_with_a_warning_by_default(api):
    created, warnings = create(api, dict(widget(extra=1, free={'any': {'thing': 1}},
                                                template={'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'x'}, 'data': 'y', 'junk': 2}),
                                         toplevel=True))
    assert 'extra' not in created['spec'] and 'toplevel' not in created
    assert created['spec']['free'] == {'any': {'thing': 1}}  # x-kubernetes-preserve-unknown-fields
    assert created['spec']['template'] == {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'x'}, 'data': 'y'}
    assert sorted(warnings) == sorted(f'299 - "unknown field \\"{p}\\""' for p in ('spec.extra', 'spec.template.junk', 'toplevel'))


def test_field_validation_strict_refuses_and_ignore_is_silent(api):
    with pytest.raises(ApiException) as exc:
        create(api, widget(extra=1), field_validation='Strict')
    assert exc.value.status == 400 and refusal(exc)['reason'] == 'BadRequest'
    assert refusal(exc)['message'] == 'Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "spec.extra"'
    created, warnings = create(api, widget(extra=1), field_validation='Ignore')
    assert 'extra' not in created['spec'] and warnings == []
    with pytest.raises(ApiException) as exc:
        create(api, widget('w2'), field_validation='Loose')
    assert exc.value.status == 400 and 'fieldValidation' in refusal(exc)['message']


def test_defaults_and_nulls(api, cluster):
    created, _ = create(api, widget(note=None, duration=None))
    # A default fills an absent field; null in a non-nullable field is dropped; nullable keeps null.
    assert created['spec'] == {'level': 'low', 'mode': 'auto', 'note': None}
    patched = k8s.CustomObjectsApi(api).patch_namespaced_custom_object(GROUP, VERSION, 'default', 'widgets', 'w1', {'spec': {'mode': None}})
    assert patched['spec']['mode'] == 'auto'  # removing a defaulted field defaults it again


def test_defaults_show_on_stored_objects_when_the_crd_adds_them(api, cluster):
    created, _ = create(api, widget())
    crd = copy.deepcopy(WIDGET_CRD)
    crd['spec']['versions'][0]['schema']['openAPIV3Schema']['properties']['spec']['properties']['ratio']['default'] = 0.5
    cluster.call(cluster.emulator.register_crd, crd)
    read = k8s.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, 'default', 'widgets', 'w1')
    assert read['spec']['ratio'] == 0.5 and read['metadata']['resourceVersion'] == created['metadata']['resourceVersion']


def test_status_is_validated_on_its_subresource_and_spec_changes_there_are_ignored(api, cluster):
    create(api, widget())
    custom = k8s.CustomObjectsApi(api)
    with pytest.raises(ApiException) as exc:
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, 'default', 'widgets', 'w1', {'status': {'phase': 'Gone'}})
    assert refusal(exc)['message'].endswith('status.phase: Unsupported value: "Gone": supported values: "Ready", "Failed"')
    done = custom.patch_namespaced_custom_object_status(GROUP, VERSION, 'default', 'widgets', 'w1',
                                                        {'spec': {'level': 'high'}, 'status': {'phase': 'Ready', 'extra': 1}})
    assert done['spec']['level'] == 'low' and done['status'] == {'phase': 'Ready'} and done['metadata']['generation'] == 1
    respec = custom.patch_namespaced_custom_object(GROUP, VERSION, 'default', 'widgets', 'w1', {'spec': {'level': 'high'}, 'status': {'phase': 'Failed'}})
    assert respec['status'] == {'phase': 'Ready'} and respec['metadata']['generation'] == 2


# --- the real CRDs ----------------------------------------------------------------------------

def test_every_crd_compiles_with_every_validation_rule_evaluated(upstream_dir):
    """All CRDs the emulator knows compile; every x-kubernetes-validations rule is in the CEL subset
    (a rule outside it raises CelUnsupported at compile time rather than passing unchecked)."""
    files = schema.known_crd_files()
    assert {p.name for p in files} >= {p.name for p in (upstream_dir / 'crds').glob('*.yaml')}
    rules = 0
    for path in files:
        crd, versions = schema.compiled_crd(path)
        assert versions, path
        rules += str(crd).count("'rule':")
    assert rules == 7  # 1 in alertmanagerconfigs, 5 in prometheuses (measured: grep -c 'rule:'), 1 in observabilitystacks (its name)


def test_a_prometheusrule_interval_out_of_unit_order_gets_the_upstream_crds_422(api, upstream_dir):
    """Issue 12 item 6: prometheus-operator v0.93's CRD requires duration units in order."""
    rule = {'apiVersion': 'monitoring.coreos.com/v1', 'kind': 'PrometheusRule', 'metadata': {'name': 'r'},
            'spec': {'groups': [{'name': 'g', 'interval': '30s5m', 'rules': [{'record': 'x', 'expr': '1'}]}]}}
    with pytest.raises(ApiException) as exc:
        create(api, rule, 'prometheusrules', 'monitoring.coreos.com', 'v1')
    pattern = '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'
    assert refusal(exc)['message'] == (
        f'PrometheusRule.monitoring.coreos.com "r" is invalid: spec.groups[0].interval: Invalid value: "30s5m": '
        f"spec.groups[0].interval in body should match '{pattern}'")
    rule['spec']['groups'][0]['interval'] = '5m30s'
    assert create(api, rule, 'prometheusrules', 'monitoring.coreos.com', 'v1')[0]['spec']['groups'][0]['interval'] == '5m30s'


def test_prometheus_defaults_and_cel_rules_from_the_upstream_crd(api, upstream_dir):
    prometheus = {'apiVersion': 'monitoring.coreos.com/v1', 'kind': 'Prometheus', 'metadata': {'name': 'p'},
                  'spec': {'shardingStrategy': {'mode': 'Address', 'topology': {'values': ['a']}}}}
    with pytest.raises(ApiException) as exc:
        create(api, prometheus, 'prometheuses', 'monitoring.coreos.com', 'v1')
    assert refusal(exc)['message'] == ('Prometheus.monitoring.coreos.com "p" is invalid: spec.shardingStrategy: '
                                       """Invalid value: "object": topology can only be defined when mode is set to 'Topology'""")
    prometheus['spec']['shardingStrategy'] = {'mode': 'Topology', 'topology': {'values': ['a', 'b']}}
    with pytest.raises(ApiException) as exc:  # shards defaults to 1, fewer than the two zones
        create(api, prometheus, 'prometheuses', 'monitoring.coreos.com', 'v1')
    assert 'spec: Invalid value: "object": shards must be greater than or equal to the number of topology values' in refusal(exc)['message']
    prometheus['spec']['shards'] = 2
    assert create(api, prometheus, 'prometheuses', 'monitoring.coreos.com', 'v1')[0]['spec']['shards'] == 2
    del prometheus['spec']['shardingStrategy']
    prometheus['metadata']['name'] = 'q'
    del prometheus['spec']['shards']
    assert create(api, prometheus, 'prometheuses', 'monitoring.coreos.com', 'v1')[0]['spec']['shards'] == 1  # default: 1


def test_observatory_crds_are_enforced(api):
    with pytest.raises(ApiException) as exc:
        create(api, {'apiVersion': 'observatory.dev/v1alpha1', 'kind': 'AlertRule', 'metadata': {'name': 'a'},
                     'spec': {'severity': 'page', 'for': '5 minutes'}}, 'alertrules', 'observatory.dev', 'v1alpha1')
    assert refusal(exc)['message'] == (
        'AlertRule.observatory.dev "a" is invalid: [spec.severity: Unsupported value: "page": supported values: '
        '"critical", "high", "warning", "info", spec.for: Invalid value: "5 minutes": '
        f"spec.for in body should match '{DURATION_PATTERN}']")


def test_a_crd_created_through_the_api_serves_its_schema(upstream_dir):
    """helm creates CRDs (e.g. ClickHouse's) through the API; the resource is served with its schema."""
    crd = schema.load_crd(upstream_dir / 'crds' / 'clickhouse.com_keeperclusters.yaml')
    with running_cluster(HelmEmulator) as cluster, cluster.api_client(ADMIN) as api:
        k8s.ApiextensionsV1Api(api).create_custom_resource_definition(crd)
        version = next(v['name'] for v in crd['spec']['versions'] if v.get('storage'))
        body = {'apiVersion': f'clickhouse.com/{version}', 'kind': 'KeeperCluster', 'metadata': {'name': 'k'},
                'spec': {'replicas': 'three'}}
        with pytest.raises(ApiException) as exc:
            create(api, body, 'keeperclusters', 'clickhouse.com', version)
        assert 'spec.replicas in body must be of type integer: "string"' in refusal(exc)['message']


# --- built-in kinds: typed, validated against the Kubernetes 1.33 OpenAPI ------------------------

def test_builtin_unknown_fields_follow_field_validation(cluster):
    cm = {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'c', 'labelz': {}}, 'data': {'a': 'b'}, 'extra': 1}
    code, body, _ = raw(cluster, 'POST', '/api/v1/namespaces/default/configmaps', cm, fieldValidation='Strict')
    assert (code, body['reason'], body['message']) == (400, 'BadRequest', (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'unknown field "metadata.labelz", unknown field "extra"'))
    code, _, warnings = raw(cluster, 'POST', '/api/v1/namespaces/default/configmaps', cm)
    assert code == 201 and warnings == ['299 - "unknown field \\"metadata.labelz\\""', '299 - "unknown field \\"extra\\""']
    stored = cluster.get('v1/configmaps', 'c', 'default')
    assert stored['data'] == {'a': 'b'} and 'extra' not in stored and 'labelz' not in stored['metadata']


def test_builtin_wrong_types_fail_decoding_and_required_fields_are_422(cluster, api):
    code, body, _ = raw(cluster, 'POST', '/api/v1/namespaces/default/configmaps', {'metadata': {'name': 'c'}, 'data': {'a': 1}})
    assert (code, body['message']) == (400, ('ConfigMap in version "v1" cannot be handled as a ConfigMap: '
                                             'json: cannot unmarshal integer into Go struct field ConfigMap.data.a of type string'))
    cluster.register('apps/v1', 'deployments', 'Deployment')
    deployment = {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': 'd'},
                  'spec': {'selector': {'matchLabels': {'a': 'b'}}, 'template': {'spec': {'containers': [{'image': 'x'}]}}}}
    code, body, _ = raw(cluster, 'POST', '/apis/apps/v1/namespaces/default/deployments', deployment)
    assert (code, body['message']) == (422, 'Deployment.apps "d" is invalid: spec.template.spec.containers[0].name: Required value')


def test_builtin_schemas_carry_the_list_types_server_side_apply_needs():
    pod_spec = schema.builtin_definition('io.k8s.api.core.v1.PodSpec')
    container = pod_spec.props['containers'].items
    assert (pod_spec.props['containers'].list_type, pod_spec.props['containers'].list_keys) == ('map', ('name',))
    assert container.props['ports'].list_keys == ('containerPort', 'protocol')
    assert container.props['env'].list_keys == ('name',)
    assert schema.builtin_definition(schema.OBJECT_META).props['ownerReferences'].list_keys == ('uid',)
    assert schema.builtin_schema('v1', 'ConfigMap') is not None and schema.builtin_schema('v1', 'Nope') is None


def test_a_stack_name_longer_than_its_derived_names_allow_is_refused_by_the_crd(api):
    """The 32-character limit of ObservabilityStack names (models/stack.py MAX_NAME_LENGTH) is in the
    CRD too, as a root CEL rule on metadata.name (root rules may read metadata.name:
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation-rules),
    so `kubectl apply` refuses it instead of the operator reporting it later."""
    def stack(name: str) -> dict:
        return {'apiVersion': 'observatory.dev/v1alpha1', 'kind': 'ObservabilityStack',
                'metadata': {'name': name}, 'spec': {}}
    create(api, stack('s' * 32), plural='observabilitystacks', group='observatory.dev', version='v1alpha1')
    with pytest.raises(ApiException) as exc:
        create(api, stack('s' * 33), plural='observabilitystacks', group='observatory.dev', version='v1alpha1')
    assert exc.value.status == 422
    assert 'at most 32 characters' in refusal(exc)['message']
