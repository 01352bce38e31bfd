"""The emulator authenticates, impersonates and authorizes as kube-apiserver 1.29–1.33 (see rbac.py for sources).

Requests go over HTTP with bearer tokens, so the status codes and Status bodies are what a client
sees; the expected bodies are the wording of the apiserver source each test names.
"""

from __future__ import annotations

import pytest
from observatory.rbac import render_rbac_values

from .emulator import running_cluster
from .rbac import ADMIN, ANONYMOUS, OPERATOR, RBAC_GROUP, REPO, Identity

ALICE = Identity('alice', ('developers', 'system:authenticated'))
BOB = Identity('bob', ('system:authenticated',))
OPERATOR_USER = 'system:serviceaccount:observatory:observatory'
RBAC = f'/apis/{RBAC_GROUP}/v1'


def call(cluster, identity: Identity | None, method: str, path: str, body: dict | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict]:
    return cluster.request(method, path, body, identity, headers)


def forbidden(message: str, **details: str) -> dict:
    return {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure', 'message': message,
            'reason': 'Forbidden', 'details': details, 'code': 403}


def role(name: str, rules: list[dict], namespace: str | None = 'team-a') -> dict:
    kind = 'Role' if namespace else 'ClusterRole'
    return {'apiVersion': f'{RBAC_GROUP}/v1', 'kind': kind, 'rules': rules,
            'metadata': {'name': name, **({'namespace': namespace} if namespace else {})}}


def binding(name: str, role_kind: str, role_name: str, subject: dict, namespace: str | None = 'team-a') -> dict:
    kind = 'RoleBinding' if namespace else 'ClusterRoleBinding'
    return {'apiVersion': f'{RBAC_GROUP}/v1', 'kind': kind,
            'metadata': {'name': name, **({'namespace': namespace} if namespace else {})},
            'roleRef': {'apiGroup': RBAC_GROUP, 'kind': role_kind, 'name': role_name}, 'subjects': [subject]}


def user(name: str) -> dict:
    return {'apiGroup': RBAC_GROUP, 'kind': 'User', 'name': name}


def grant(cluster, name: str, rules: list[dict], who: str = 'alice', namespace: str | None = 'team-a') -> None:
    """As cluster-admin: a (Cluster)Role with `rules` bound to user `who`."""
    cluster.seed(role(name, rules, namespace))
    cluster.seed(binding(name, 'Role' if namespace else 'ClusterRole', name, user(who), namespace))


@pytest.fixture()
def cluster():
    with running_cluster() as cluster:
        cluster.seed({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': 'team-a'}})
        yield cluster


def test_requests_are_authenticated_by_bearer_token_else_anonymous(cluster):
    # Unknown token: 401 (the authentication filter's Unauthorized), nothing is served.
    status, body = call(cluster, None, 'GET', '/api', headers={'Authorization': 'Bearer not-a-token'})
    assert (status, body) == (401, {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure',
                                    'message': 'Unauthorized', 'reason': 'Unauthorized', 'code': 401})
    # No token: system:anonymous, which bootstrap policy lets read /version (system:public-info-viewer)
    # but not discovery (system:discovery is bound to system:authenticated only).
    assert call(cluster, None, 'GET', '/version')[0] == 200
    assert call(cluster, None, 'GET', '/api') == (403, forbidden('forbidden: User "system:anonymous" cannot get path "/api"'))
    assert call(cluster, ANONYMOUS, 'GET', '/api/v1/namespaces/team-a/configmaps') == (403, forbidden(
        'configmaps is forbidden: User "system:anonymous" cannot list resource "configmaps" in API group "" '
        'in the namespace "team-a"', kind='configmaps'))
    assert call(cluster, BOB, 'GET', '/apis')[0] == 200


def test_the_operator_holds_what_charts_observatory_grants_clusterwide(cluster):
    # The seeded ClusterRole is helm's rendering of the chart, i.e. rbac.py's cluster+namespaced rules.
    seeded = cluster.get(f'{RBAC_GROUP}/v1/clusterroles', 'observatory')
    rules = render_rbac_values()
    assert seeded['rules'] == rules['cluster'] + rules['namespaced']
    assert seeded['metadata']['labels']['app.kubernetes.io/managed-by'] == 'Helm'
    assert call(cluster, OPERATOR, 'GET', '/apis/monitoring.coreos.com/v1/namespaces/team-a/prometheusrules')[0] == 200
    assert call(cluster, OPERATOR, 'GET', '/apis/observatory.dev/v1alpha1/alertrules?watch=true&timeoutSeconds=0')[0] == 200
    # Secrets are the stack installer's business, not the operator's (issue 13 item 4).
    assert call(cluster, OPERATOR, 'GET', '/api/v1/namespaces/team-a/secrets')[0] == 403
    # Not granted: creating namespaces, reading ClusterRoles, writing AlertRules (only patch/update).
    assert call(cluster, OPERATOR, 'POST', '/api/v1/namespaces', {'metadata': {'name': 'x'}}) == (403, forbidden(
        f'namespaces is forbidden: User "{OPERATOR_USER}" cannot create resource "namespaces" in API group "" '
        'at the cluster scope', kind='namespaces'))
    assert call(cluster, OPERATOR, 'GET', f'{RBAC}/clusterroles/observatory') == (403, forbidden(
        f'clusterroles.{RBAC_GROUP} "observatory" is forbidden: User "{OPERATOR_USER}" cannot get resource '
        f'"clusterroles" in API group "{RBAC_GROUP}" at the cluster scope', name='observatory', group=RBAC_GROUP, kind='clusterroles'))


def test_per_namespace_mode_grants_only_the_watched_namespaces():
    with running_cluster(operator_namespaces=('team-a',)) as cluster:
        cluster.seed({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': 'team-b'}})
        rules = '/apis/monitoring.coreos.com/v1/namespaces/{}/prometheusrules/x'
        assert call(cluster, OPERATOR, 'GET', rules.format('team-a'))[0] == 404  # allowed, absent
        # The message the issue quotes (errors.go forbiddenMessage + errors.NewForbidden).
        assert call(cluster, OPERATOR, 'GET', rules.format('team-b')) == (403, forbidden(
            f'prometheusrules.monitoring.coreos.com "x" is forbidden: User "{OPERATOR_USER}" cannot get resource '
            '"prometheusrules" in API group "monitoring.coreos.com" in the namespace "team-b"', name='x',
            group='monitoring.coreos.com', kind='prometheusrules'))
        # Cluster-scoped reads stay granted by the ClusterRole.
        assert call(cluster, OPERATOR, 'GET', '/api/v1/namespaces')[0] == 200


@pytest.mark.parametrize(('rules', 'method', 'path', 'allowed'), [
    # verbs from HTTP (requestinfo.go): GET one = get, GET many = list, watch=true = watch, DELETE many = deletecollection
    ([{'apiGroups': [''], 'resources': ['configmaps'], 'verbs': ['get']}], 'GET', '/api/v1/namespaces/team-a/configmaps/c', True),
    ([{'apiGroups': [''], 'resources': ['configmaps'], 'verbs': ['get']}], 'GET', '/api/v1/namespaces/team-a/configmaps', False),
    ([{'apiGroups': [''], 'resources': ['configmaps'], 'verbs': ['list']}], 'GET', '/api/v1/namespaces/team-a/configmaps?watch=true', False),
    ([{'apiGroups': [''], 'resources': ['configmaps'], 'verbs': ['watch']}], 'GET', '/api/v1/namespaces/team-a/configmaps?watch=1&timeoutSeconds=0', True),
    ([{'apiGroups': [''], 'resources': ['configmaps'], 'verbs': ['delete']}], 'DELETE', '/api/v1/namespaces/team-a/configmaps', False),
    ([{'apiGroups': [''], 'resources': ['configmaps'], 'verbs': ['*']}], 'PATCH', '/api/v1/namespaces/team-a/configmaps/c', True),
    # resourceNames: a list narrowed to one name by fieldSelector metadata.name counts as that name
    ([{'apiGroups': [''], 'resources': ['configmaps'], 'resourceNames': ['c'], 'verbs': ['get', 'list']}], 'GET', '/api/v1/namespaces/team-a/configmaps/d', False),
    ([{'apiGroups': [''], 'resources': ['configmaps'], 'resourceNames': ['c'], 'verbs': ['list']}], 'GET', '/api/v1/namespaces/team-a/configmaps?fieldSelector=metadata.name%3Dc', True),
    # subresources: `x` does not grant `x/status`; `x/status` and `*/status` do
    ([{'apiGroups': ['observatory.dev'], 'resources': ['alertrules'], 'verbs': ['get']}], 'GET', '/apis/observatory.dev/v1alpha1/namespaces/team-a/alertrules/r/status', False),
    ([{'apiGroups': ['observatory.dev'], 'resources': ['alertrules/status'], 'verbs': ['get']}], 'GET', '/apis/observatory.dev/v1alpha1/namespaces/team-a/alertrules/r/status', True),
    ([{'apiGroups': ['*'], 'resources': ['*/status'], 'verbs': ['get']}], 'GET', '/apis/observatory.dev/v1alpha1/namespaces/team-a/alertrules/r/status', True),
    ([{'apiGroups': ['*'], 'resources': ['*/status'], 'verbs': ['get']}], 'GET', '/apis/observatory.dev/v1alpha1/namespaces/team-a/alertrules/r', False),
    # apiGroups must match the request's group
    ([{'apiGroups': ['monitoring.coreos.com'], 'resources': ['alertrules'], 'verbs': ['get']}], 'GET', '/apis/observatory.dev/v1alpha1/namespaces/team-a/alertrules/r', False),
    # a RoleBinding's grant stops at its namespace
    ([{'apiGroups': [''], 'resources': ['configmaps'], 'verbs': ['get']}], 'GET', '/api/v1/namespaces/default/configmaps/c', False),
])
def test_rules_match_as_the_rbac_authorizer_does(cluster, rules, method, path, allowed):
    grant(cluster, 'test', rules)
    status, body = call(cluster, ALICE, method, path)
    assert (status != 403) == allowed, body


def test_non_resource_urls_match_exactly_or_by_prefix_star(cluster):
    grant(cluster, 'metrics', [{'nonResourceURLs': ['/metrics', '/logs/*'], 'verbs': ['get']}], who='system:anonymous', namespace=None)
    # Allowed requests reach the handler (404 here: the emulator serves neither); others are refused.
    assert call(cluster, None, 'GET', '/metrics')[0] == 404
    assert call(cluster, None, 'GET', '/logs/kube')[0] == 404
    assert call(cluster, None, 'GET', '/metrics/x')[0] == 403
    assert call(cluster, None, 'POST', '/metrics', {})[1]['message'] == 'forbidden: User "system:anonymous" cannot post path "/metrics"'


def test_a_binding_to_a_missing_role_is_named_in_the_denial(cluster):
    cluster.seed(binding('dangling', 'ClusterRole', 'missing', user('alice')))
    status, body = call(cluster, ALICE, 'GET', '/api/v1/namespaces/team-a/pods')
    assert status == 403
    assert body['message'] == ('pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the '
                               f'namespace "team-a": RBAC: clusterrole.{RBAC_GROUP} "missing" not found')


def test_roles_cannot_grant_what_their_writer_does_not_hold(cluster):
    grant(cluster, 'role-admin', [{'apiGroups': [RBAC_GROUP], 'resources': ['roles', 'rolebindings'], 'verbs': ['create', 'update']},
                                  {'apiGroups': [''], 'resources': ['configmaps'], 'verbs': ['get', 'list']}])
    pods = role('pods', [{'apiGroups': ['', 'apps'], 'resources': ['pods'], 'verbs': ['get', 'delete']}])
    status, body = call(cluster, ALICE, 'POST', f'{RBAC}/namespaces/team-a/roles', pods)
    assert status == 403
    # rule.go ConfirmNoEscalation; missing rules broken down, compacted by verb, sorted (CompactString).
    assert body['message'] == (
        f'roles.{RBAC_GROUP} "pods" is forbidden: user "alice" (groups=["developers" "system:authenticated"]) is attempting '
        'to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["pods"], Verbs:["get" "delete"]}\n'
        '{APIGroups:["apps"], Resources:["pods"], Verbs:["get" "delete"]}')
    assert body['details'] == {'name': 'pods', 'group': RBAC_GROUP, 'kind': 'roles'}
    # What she holds she may grant (a subset, a single name of it).
    held = role('reader', [{'apiGroups': [''], 'resources': ['configmaps'], 'resourceNames': ['c'], 'verbs': ['get']}])
    assert call(cluster, ALICE, 'POST', f'{RBAC}/namespaces/team-a/roles', held)[0] == 201
    # Updates are checked on the whole new rule set.
    wider = dict(held, rules=[{'apiGroups': [''], 'resources': ['configmaps'], 'verbs': ['get', 'watch']}])
    assert call(cluster, ALICE, 'PUT', f'{RBAC}/namespaces/team-a/roles/reader', wider)[0] == 403
    # The escalate verb lifts the check.
    grant(cluster, 'escalate', [{'apiGroups': [RBAC_GROUP], 'resources': ['roles'], 'verbs': ['escalate']}])
    assert call(cluster, ALICE, 'POST', f'{RBAC}/namespaces/team-a/roles', pods)[0] == 201


def test_bindings_need_the_roles_permissions_or_bind(cluster):
    grant(cluster, 'binder', [{'apiGroups': [RBAC_GROUP], 'resources': ['rolebindings'], 'verbs': ['create']},
                              {'apiGroups': [''], 'resources': ['configmaps'], 'verbs': ['get']}])
    cluster.seed(role('configmaps', [{'apiGroups': [''], 'resources': ['configmaps'], 'verbs': ['get']}]))
    assert call(cluster, ALICE, 'POST', f'{RBAC}/namespaces/team-a/rolebindings',
                binding('bob-configmaps', 'Role', 'configmaps', user('bob')))[0] == 201
    status, body = call(cluster, ALICE, 'POST', f'{RBAC}/namespaces/team-a/rolebindings',
                        binding('bob-admin', 'ClusterRole', 'cluster-admin', user('bob')))
    assert status == 403
    assert body['message'].startswith(f'rolebindings.{RBAC_GROUP} "bob-admin" is forbidden: user "alice" (groups=')
    assert '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}' in body['message']
    # A missing role: the registry's NotFound.
    status, body = call(cluster, ALICE, 'POST', f'{RBAC}/namespaces/team-a/rolebindings', binding('x', 'Role', 'nope', user('bob')))
    assert (status, body['reason'], body['message']) == (404, 'NotFound', f'roles.{RBAC_GROUP} "nope" not found')
    # `bind` on that one ClusterRole name lets her bind it.
    grant(cluster, 'bind', [{'apiGroups': [RBAC_GROUP], 'resources': ['clusterroles'], 'resourceNames': ['cluster-admin'],
                             'verbs': ['bind']}])
    assert call(cluster, ALICE, 'POST', f'{RBAC}/namespaces/team-a/rolebindings',
                binding('bob-admin', 'ClusterRole', 'cluster-admin', user('bob')))[0] == 201
    # ...and bob now holds cluster-admin in team-a only.
    assert call(cluster, BOB, 'GET', '/api/v1/namespaces/team-a/secrets')[0] == 200
    assert call(cluster, BOB, 'GET', '/api/v1/namespaces/default/secrets')[0] == 403


def test_impersonation_needs_the_impersonate_verb_then_runs_as_the_impersonated(cluster):
    assert call(cluster, ALICE, 'GET', '/api/v1/namespaces/team-a/secrets', headers={'Impersonate-User': 'bob'}) == (403, forbidden(
        'users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope',
        name='bob', kind='users'))
    status, body = call(cluster, ALICE, 'GET', '/api/v1/namespaces/team-a/secrets', headers={'Impersonate-User': OPERATOR_USER})
    assert body['message'] == ('serviceaccounts "observatory" is forbidden: User "alice" cannot impersonate resource '
                               '"serviceaccounts" in API group "" in the namespace "observatory"')
    grant(cluster, 'impersonator', [{'apiGroups': [''], 'resources': ['users', 'groups'], 'verbs': ['impersonate']}], namespace=None)
    # Impersonating bob: the request is bob's, refused with his name.
    status, body = call(cluster, ALICE, 'GET', '/api/v1/namespaces/team-a/secrets', headers={'Impersonate-User': 'bob'})
    assert body['message'].startswith('secrets is forbidden: User "bob" cannot list')
    # ...as bob in group developers, which a binding can grant.
    grant(cluster, 'developers', [{'apiGroups': [''], 'resources': ['secrets'], 'verbs': ['list']}], who='unused')
    cluster.patch(f'{RBAC_GROUP}/v1/rolebindings', 'developers', 'team-a', {'subjects': [{'apiGroup': RBAC_GROUP, 'kind': 'Group', 'name': 'developers'}]})
    assert call(cluster, ALICE, 'GET', '/api/v1/namespaces/team-a/secrets',
                headers={'Impersonate-User': 'bob', 'Impersonate-Group': 'developers'})[0] == 200
    # A ServiceAccount is impersonated with its groups; admin may impersonate anyone.
    assert call(cluster, ADMIN, 'GET', '/apis/monitoring.coreos.com/v1/namespaces/team-a/prometheusrules',
                headers={'Impersonate-User': OPERATOR_USER})[0] == 200
    assert call(cluster, ADMIN, 'POST', '/api/v1/namespaces', {'metadata': {'name': 'x'}},
                headers={'Impersonate-User': OPERATOR_USER})[1]['message'].startswith(f'namespaces is forbidden: User "{OPERATOR_USER}"')
    # Groups without a user: refused (buildImpersonationRequests).
    assert call(cluster, ADMIN, 'GET', '/api', headers={'Impersonate-Group': 'developers'})[0] == 500


def test_helm_as_the_stack_installer_installs_the_real_langfuse_chart_with_the_operators_values(upstream_dir, tmp_path, helm):
    """helm with the operator's credentials, impersonating the namespace's installer as the operator does
    (`--kube-as-user`), holds exactly the rights the chart needs: no 403."""
    import subprocess

    import yaml
    from observatory.compile.stack import langfuse_values
    from observatory.controller.stack_kube import installer_user
    from observatory.models import parse_resource

    from .helm_support import HelmEmulator, kubeconfig, seed_installer

    stack = parse_resource(yaml.safe_load((REPO / 'examples' / 'stacks' / 'team-a-dedicated.yaml').read_text()))
    (tmp_path / 'values.yaml').write_text(yaml.safe_dump(langfuse_values(stack)))
    with running_cluster(HelmEmulator) as cluster:
        # Kinds the chart creates that the helm emulator does not serve by default.
        for api_version, plural, kind in (('batch/v1', 'jobs', 'Job'), ('policy/v1', 'poddisruptionbudgets', 'PodDisruptionBudget'),
                                          ('clickhouse.com/v1alpha1', 'clickhouseclusters', 'ClickHouseCluster'),
                                          ('clickhouse.com/v1alpha1', 'keeperclusters', 'KeeperCluster')):
            cluster.register(api_version, plural, kind, subresources=('status',))
        cluster.seed({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': stack.namespace}})
        seed_installer(cluster, stack.namespace)
        (tmp_path / 'kubeconfig').write_text(kubeconfig(cluster, stack.namespace))
        installed = subprocess.run(
            [str(helm), 'install', f'{stack.name}-langfuse', str(upstream_dir / 'charts' / 'packaged' / 'langfuse-2.0.0.tgz'),
             '--namespace', stack.namespace, '--kubeconfig', str(tmp_path / 'kubeconfig'), '--values', str(tmp_path / 'values.yaml'),
             '--kube-as-user', installer_user(stack.namespace)],
            capture_output=True, text=True, timeout=300, check=False)
        denials = cluster.emulator.rbac.denials
        if installed.returncode and not denials:  # a gap of the test bed, not a refusal: fail for real
            raise RuntimeError(f'helm install failed without a 403: {installed.stderr}')
        assert installed.returncode == 0, installed.stderr
        assert denials == [], '\n'.join(denials)
