"""Authentication, impersonation and RBAC authorization for the emulator, as kube-apiserver 1.29–1.33 does them.

Every HTTP request is authenticated by its bearer token (static tokens, as `--token-auth-file`
gives them; none: `system:anonymous`), may impersonate another identity, and is authorized by
the Role/ClusterRole/(Cluster)RoleBinding objects stored in the emulator. Writes of RBAC objects
are checked for privilege escalation. The emulator's in-process helpers (`Cluster.seed`, ...) and
its own controllers (garbage collector, namespace controller) are not requests and act unchecked.

Sources followed (kubernetes/kubernetes):
- request attributes: staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go
- rule matching: plugin/pkg/auth/authorizer/rbac/rbac.go (RuleAllows, the `RBAC: ...` denial
  reason from resolution errors) and pkg/apis/rbac/v1/evaluation_helpers.go
- rule resolution and escalation: pkg/registry/rbac/validation/rule.go (ConfirmNoEscalation,
  appliesToUser), staging/src/k8s.io/component-helpers/auth/rbac/validation/policy_comparator.go
  (Covers, BreakdownRule), pkg/registry/rbac/escalation_check.go (EscalationAllowed,
  RoleEscalationAuthorized, BindingAuthorized), pkg/registry/rbac/{role,rolebinding,...}/policybased
- system:masters always allowed: pkg/kubeapiserver/authorizer/config.go (NewPrivilegedGroups)
- impersonation: staging/src/k8s.io/apiserver/pkg/endpoints/filters/impersonation.go
- 403 bodies: staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go
  (Forbidden, forbiddenMessage) and apimachinery's errors.NewForbidden
- bootstrap roles: plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go
- https://kubernetes.io/docs/reference/access-authn-authz/rbac/#privilege-escalation-prevention-and-bootstrapping

Not emulated: aggregated ClusterRoles (`aggregationRule` is stored but its rules are never
filled in by a controller), the Node and Webhook authorizers, ServiceAccount token (JWT) issuance,
client certificates, `Impersonate-Extra-*` (refused loudly).
"""

from __future__ import annotations

import contextvars
import copy
import functools
import json
import secrets
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kmock
import yaml

Obj = dict[str, Any]
RBAC_GROUP = 'rbac.authorization.k8s.io'
RBAC_RESOURCES: tuple[tuple[str, str, str, bool, tuple[str, ...], bool], ...] = (
    (f'{RBAC_GROUP}/v1', 'roles', 'Role', True, (), False),
    (f'{RBAC_GROUP}/v1', 'rolebindings', 'RoleBinding', True, (), False),
    (f'{RBAC_GROUP}/v1', 'clusterroles', 'ClusterRole', False, (), False),
    (f'{RBAC_GROUP}/v1', 'clusterrolebindings', 'ClusterRoleBinding', False, (), False),
)
PRIVILEGED_GROUP = 'system:masters'
AUTHENTICATED, UNAUTHENTICATED = 'system:authenticated', 'system:unauthenticated'
SA_PREFIX = 'system:serviceaccount:'
REPO = Path(__file__).resolve().parents[2]
OPERATOR_CHART = REPO / 'charts' / 'observatory'
OPERATOR_RELEASE = OPERATOR_NAMESPACE = 'observatory'  # the chart's fullname is the release name then


@dataclass(frozen=True)
class Identity:
    """An authenticated user as the apiserver sees it (user.Info)."""
    user: str
    groups: tuple[str, ...] = ()
    uid: str = ''


def service_account(namespace: str, name: str) -> Identity:
    """A ServiceAccount's identity: serviceaccount.MakeUsername/MakeGroupNames plus system:authenticated."""
    return Identity(f'{SA_PREFIX}{namespace}:{name}',
                    ('system:serviceaccounts', f'system:serviceaccounts:{namespace}', AUTHENTICATED))


# kubeadm's admin.conf user (1.29+: group kubeadm:cluster-admins; system:masters is its break-glass
# super-admin): here the privileged group, so test setup is never refused.
ADMIN = Identity('kubernetes-admin', (PRIVILEGED_GROUP, AUTHENTICATED))
ANONYMOUS = Identity('system:anonymous', (UNAUTHENTICATED,))
OPERATOR = service_account(OPERATOR_NAMESPACE, OPERATOR_RELEASE)

# The request being served, as whom; None is the emulator itself or a test helper (unchecked).
REQUESTER: contextvars.ContextVar[Identity | None] = contextvars.ContextVar('requester', default=None)


@dataclass(frozen=True)
class Attributes:
    """authorizer.Attributes of one request (or one impersonation check)."""
    user: Identity
    verb: str
    path: str = ''
    resource_request: bool = True
    group: str = ''
    resource: str = ''
    subresource: str = ''
    namespace: str = ''
    name: str = ''


def request_attributes(user: Identity, method: str, path: str, params: dict[str, str]) -> Attributes:
    """RequestInfoFactory.NewRequestInfo, for the URL forms the emulator serves."""
    parts = [p for p in path.split('/') if p]
    non_resource = Attributes(user, method.lower(), path=path, resource_request=False)
    if len(parts) < 3 or parts[0] not in ('api', 'apis'):
        return non_resource
    group, rest = ('', parts[1:]) if parts[0] == 'api' else (parts[1], parts[2:])
    if parts[0] == 'apis' and len(rest) < 2:
        return non_resource
    rest = rest[1:]  # the version
    verb = {'POST': 'create', 'GET': 'get', 'HEAD': 'get', 'PUT': 'update', 'PATCH': 'patch',
            'DELETE': 'delete'}.get(method, '')
    if rest and rest[0] == 'watch':  # the deprecated /watch/ path prefix
        verb, rest = 'watch', rest[1:]
    namespace = ''
    if rest and rest[0] == 'namespaces' and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ('status', 'finalize'):
            rest = rest[2:]
    resource = rest[0] if rest else ''
    name = rest[1] if len(rest) > 1 else ''
    subresource = rest[2] if len(rest) > 2 else ''
    if not name and verb == 'get':
        verb = 'watch' if params.get('watch') in ('true', '1') else 'list'
        selected = [r.split('=', 1)[1] for r in params.get('fieldSelector', '').split(',')
                    if r.startswith('metadata.name=') and not r.startswith('metadata.name==')]
        name = selected[0] if len(selected) == 1 else ''
    if not name and verb == 'delete':
        verb = 'deletecollection'
    return Attributes(user, verb, path=path, group=group, resource=resource, subresource=subresource,
                      namespace=namespace, name=name)


# --- rule matching (RuleAllows) ----------------------------------------------------------------

def _resource_matches(rule: Obj, combined: str, subresource: str) -> bool:
    for resource in rule.get('resources') or []:
        if resource in ('*', combined):
            return True
        if subresource and resource == f'*/{subresource}':
            return True
    return False


def _url_matches(pattern: str, path: str) -> bool:
    return pattern in ('*', path) or (pattern.endswith('*') and path.startswith(pattern.rstrip('*')))


def rule_allows(attrs: Attributes, rule: Obj) -> bool:
    verbs = rule.get('verbs') or []
    if '*' not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.resource_request:
        return any(_url_matches(p, attrs.path) for p in rule.get('nonResourceURLs') or [])
    groups = rule.get('apiGroups') or []
    combined = f'{attrs.resource}/{attrs.subresource}' if attrs.subresource else attrs.resource
    names = rule.get('resourceNames') or []
    return (('*' in groups or attrs.group in groups) and _resource_matches(rule, combined, attrs.subresource)
            and (not names or attrs.name in names))


# --- escalation (Covers) -------------------------------------------------------------------------

def breakdown(rule: Obj) -> Iterator[Obj]:
    """BreakdownRule: one verb, one resource, at most one resource name per sub-rule."""
    for group in rule.get('apiGroups') or []:
        for resource in rule.get('resources') or []:
            for verb in rule.get('verbs') or []:
                for name in rule.get('resourceNames') or [None]:
                    yield {'apiGroups': [group], 'resources': [resource], 'verbs': [verb],
                           **({'resourceNames': [name]} if name is not None else {})}
    for url in rule.get('nonResourceURLs') or []:
        for verb in rule.get('verbs') or []:
            yield {'nonResourceURLs': [url], 'verbs': [verb]}


def _covers(owner: Obj, sub: Obj) -> bool:
    """ruleCovers for a broken-down sub-rule."""
    def has_all(field_name: str, wildcard: str | None = '*') -> bool:
        owned = owner.get(field_name) or []
        return (wildcard is not None and wildcard in owned) or set(sub.get(field_name) or []) <= set(owned)
    resources_owned = owner.get('resources') or []
    resources_ok = '*' in resources_owned or all(
        r in resources_owned or ('/' in r and '*/' + r.split('/', 1)[1] in resources_owned)
        for r in sub.get('resources') or [])
    urls_ok = all(any(_url_matches(o, u) if o != '*' else True for o in owner.get('nonResourceURLs') or [])
                  for u in sub.get('nonResourceURLs') or [])
    names_owned = owner.get('resourceNames') or []
    names_ok = not names_owned if not sub.get('resourceNames') else (not names_owned or has_all('resourceNames', None))
    return has_all('verbs') and has_all('apiGroups') and resources_ok and urls_ok and names_ok


def _go_quoted(values: Iterable[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return '[' + ' '.join(json.dumps(v) for v in values) + ']'


def compact_string(rule: Obj) -> str:
    """rbacv1helpers.CompactString."""
    parts = [f'{label}:{_go_quoted(rule[key])}' for key, label in (
        ('apiGroups', 'APIGroups'), ('resources', 'Resources'), ('nonResourceURLs', 'NonResourceURLs'),
        ('resourceNames', 'ResourceNames'), ('verbs', 'Verbs')) if rule.get(key)]
    return '{' + ', '.join(parts) + '}'


def compact(rules: list[Obj]) -> list[Obj]:
    """CompactRules: simple resource rules differing only by verb are merged."""
    merged: dict[tuple[str, str], Obj] = {}
    out: list[Obj] = []
    for rule in rules:
        if rule.get('resourceNames') or rule.get('nonResourceURLs'):
            out.append(rule)
            continue
        key = (rule['apiGroups'][0], rule['resources'][0])
        if key in merged:
            merged[key]['verbs'] = merged[key]['verbs'] + rule['verbs']
        else:
            merged[key] = copy.deepcopy(rule)
            out.append(merged[key])
    return out


# --- the authorizer ------------------------------------------------------------------------------

class Forbidden(Exception):
    """A refusal, with the attributes and reason the 403 body is written from."""

    def __init__(self, group: str, resource: str, name: str, message: str) -> None:
        super().__init__(message)
        self.group, self.resource, self.name, self.message = group, resource, name, message

    def status(self) -> Obj:
        """errors.NewForbidden(groupResource, name, err) as JSON."""
        qualified = f'{self.resource}.{self.group}' if self.group else self.resource
        if not self.resource:
            message = f'forbidden: {self.message}'
        elif not self.name:
            message = f'{qualified} is forbidden: {self.message}'
        else:
            message = f'{qualified} "{self.name}" is forbidden: {self.message}'
        details = {k: v for k, v in (('name', self.name), ('group', self.group), ('kind', self.resource)) if v}
        return {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure', 'message': message,
                'reason': 'Forbidden', 'details': details, 'code': 403}


def forbidden_message(attrs: Attributes) -> str:
    """responsewriters.forbiddenMessage."""
    if not attrs.resource_request:
        return f'User "{attrs.user.user}" cannot {attrs.verb} path "{attrs.path}"'
    resource = f'{attrs.resource}/{attrs.subresource}' if attrs.subresource else attrs.resource
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else 'at the cluster scope'
    return f'User "{attrs.user.user}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.group}" {where}'


def forbidden(attrs: Attributes, reason: str = '') -> Forbidden:
    """responsewriters.Forbidden: the message, `: reason` when the authorizer gave one."""
    message = forbidden_message(attrs) + (f': {reason}' if reason else '')
    return Forbidden(attrs.group, attrs.resource, attrs.name, message)


@dataclass
class Rbac:
    """The tokens the emulator accepts and the RBAC objects it holds, indexed as they change."""

    tokens: dict[str, Identity] = field(default_factory=dict)
    objects: dict[tuple[str, str | None, str], Obj] = field(default_factory=dict)  # (plural, ns, name)
    denials: list[str] = field(default_factory=list)  # every 403 answered: `METHOD path: message`

    def token_for(self, identity: Identity) -> str:
        for token, known in self.tokens.items():
            if known == identity:
                return token
        token = secrets.token_urlsafe(16)
        self.tokens[token] = identity
        return token

    def observe(self, resource: kmock.resource, namespace: str | None, name: str, obj: Obj | None) -> None:
        """Keep the index current: called for every stored change (obj None: removed)."""
        if resource.group != RBAC_GROUP:
            return
        key = (resource.plural, namespace, name)
        if obj is None:
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj

    # authentication ---------------------------------------------------------------------------

    def authenticate(self, headers: Any) -> Identity | None:
        """The bearer token's identity; anonymous without one; None for an unknown token (401)."""
        auth = headers.get('Authorization', '')
        if not auth:
            return ANONYMOUS
        scheme, _, token = auth.partition(' ')
        return self.tokens.get(token.strip()) if scheme.lower() == 'bearer' else None

    def admit_request(self, headers: Any, method: str, path: str, params: dict[str, str]) -> Identity:
        """The filter chain: authenticate, impersonate, authorize; the identity the request runs as."""
        user = self.authenticate(headers)
        if user is None:
            raise kmock.KubernetesError(status=401, reason='Unauthorized', message='Unauthorized')
        user = self.impersonate(user, headers)
        self.check(request_attributes(user, method, path, params))
        return user

    def impersonate(self, requester: Identity, headers: Any) -> Identity:
        """WithImpersonation: each requested identity part needs `impersonate`; the request then runs as it."""
        user = headers.get('Impersonate-User', '')
        requested_groups = list(headers.getall('Impersonate-Group', []))
        groups = list(requested_groups)
        uid = headers.get('Impersonate-Uid', '')
        extras = [h for h in headers if h.lower().startswith('impersonate-extra-')]
        if extras:
            raise kmock.KubernetesError(status=400, reason='BadRequest',
                                        message=f'{extras[0]}: Impersonate-Extra-* is not supported by the emulator')
        if not user:
            if groups or uid:  # buildImpersonationRequests' error, answered as an InternalError
                raise kmock.KubernetesError(status=500, reason='InternalError',
                                            message=f'requested {groups or uid} without impersonating a user')
            return requester
        checks = []
        if user.startswith(SA_PREFIX) and user.count(':') == 3:
            namespace, name = user[len(SA_PREFIX):].split(':')
            checks.append(Attributes(requester, 'impersonate', resource='serviceaccounts', namespace=namespace, name=name))
            if not groups:
                groups = ['system:serviceaccounts', f'system:serviceaccounts:{namespace}']
        else:
            checks.append(Attributes(requester, 'impersonate', resource='users', name=user))
        checks += [Attributes(requester, 'impersonate', resource='groups', name=g) for g in requested_groups]
        if uid:
            checks.append(Attributes(requester, 'impersonate', group='authentication.k8s.io', resource='uids', name=uid))
        for check in checks:
            allowed, reason = self.authorize(check)
            if not allowed:
                raise forbidden(check, reason)
        if user != ANONYMOUS.user and AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
        elif user == ANONYMOUS.user and UNAUTHENTICATED not in groups:
            groups.append(UNAUTHENTICATED)
        return Identity(user, tuple(groups), uid)

    # authorization ----------------------------------------------------------------------------

    def _role_rules(self, ref: Obj, namespace: str | None) -> list[Obj]:
        """GetRoleReferenceRules; raises LookupError with the lister's NotFound message."""
        kind, name = ref.get('kind'), ref.get('name')
        if kind == 'ClusterRole':
            role = self.objects.get(('clusterroles', None, name))
        elif kind == 'Role':
            role = self.objects.get(('roles', namespace, name))
        else:
            raise LookupError(f'unsupported role reference kind: "{kind}"')
        if role is None:
            raise LookupError(f'{kind.lower()}.{RBAC_GROUP} "{name}" not found')
        return role.get('rules') or []

    @staticmethod
    def _applies(user: Identity, subjects: list[Obj], namespace: str | None) -> bool:
        for subject in subjects or []:
            kind, name = subject.get('kind'), subject.get('name')
            if kind == 'User' and name == user.user or kind == 'Group' and name in user.groups:
                return True
            if kind == 'ServiceAccount':
                sa_namespace = subject.get('namespace') or namespace
                if sa_namespace and user.user == f'{SA_PREFIX}{sa_namespace}:{name}':
                    return True
        return False

    def visit_rules(self, user: Identity, namespace: str) -> Iterator[tuple[Obj | None, str | None]]:
        """VisitRulesFor: (rule, None) for each applicable rule, (None, error) for each resolution error."""
        bindings = [(b, None) for (plural, _, _), b in sorted(self.objects.items(), key=lambda i: i[0][2])
                    if plural == 'clusterrolebindings']
        if namespace:
            bindings += [(b, namespace) for (plural, ns, _), b in sorted(self.objects.items(), key=lambda i: i[0][2])
                         if plural == 'rolebindings' and ns == namespace]
        for binding, binding_namespace in bindings:
            if not self._applies(user, binding.get('subjects') or [], binding_namespace):
                continue
            try:
                rules = self._role_rules(binding.get('roleRef') or {}, binding_namespace)
            except LookupError as e:
                yield None, str(e)
                continue
            for rule in rules:
                yield rule, None

    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        """The union of the privileged-group authorizer and RBAC: (allowed, reason for a denial)."""
        if PRIVILEGED_GROUP in attrs.user.groups:
            return True, ''
        errors = []
        for rule, error in self.visit_rules(attrs.user, attrs.namespace):
            if rule is not None and rule_allows(attrs, rule):
                return True, ''
            if error is not None:
                errors.append(error)
        if not errors:
            return False, ''
        return False, 'RBAC: ' + (errors[0] if len(errors) == 1 else '[' + ', '.join(errors) + ']')

    def check(self, attrs: Attributes) -> None:
        allowed, reason = self.authorize(attrs)
        if not allowed:
            raise forbidden(attrs, reason)

    # escalation prevention on RBAC writes -------------------------------------------------------

    def confirm_no_escalation(self, user: Identity, namespace: str, rules: list[Obj]) -> str | None:
        """ConfirmNoEscalation: the refusal's text, or None when the user holds every rule."""
        owned, errors = [], []
        for rule, error in self.visit_rules(user, namespace):
            if rule is not None:
                owned.append(rule)
            else:
                errors.append(error)
        missing = [sub for rule in rules for sub in breakdown(rule) if not any(_covers(o, sub) for o in owned)]
        if not missing:
            return None
        descriptions = sorted({compact_string(r) for r in compact(missing)})
        message = (f'user "{user.user}" (groups={_go_quoted(user.groups)}) is attempting to grant RBAC permissions '
                   'not currently held:\n' + '\n'.join(descriptions))
        if errors:
            message += f'; resolution errors: [{", ".join(errors)}]'
        return message

    def admit(self, resource: kmock.resource, namespace: str | None, obj: Obj, old: Obj | None) -> None:
        """The policybased storage of roles, clusterroles, rolebindings and clusterrolebindings.

        Raises Forbidden (escalation), or NotFound (a binding's role is missing).
        """
        user = REQUESTER.get()
        if user is None or resource.group != RBAC_GROUP or PRIVILEGED_GROUP in user.groups:
            return  # EscalationAllowed: system:masters
        if old is not None and _only_gc_fields_changed(obj, old):
            return
        name = obj['metadata']['name']
        if resource.plural in ('roles', 'clusterroles'):
            # RoleEscalationAuthorized uses the request's name: empty on create.
            escalate = Attributes(user, 'escalate', group=RBAC_GROUP, resource=resource.plural,
                                  namespace=namespace or '', name=name if old is not None else '')
            if self.authorize(escalate)[0]:
                return
            refusal = self.confirm_no_escalation(user, namespace or '', obj.get('rules') or [])
        else:
            ref = obj.get('roleRef') or {}
            bind = Attributes(user, 'bind', group=RBAC_GROUP, resource='roles' if ref.get('kind') == 'Role' else 'clusterroles',
                              namespace=namespace or '', name=ref.get('name', ''))
            if self.authorize(bind)[0]:
                return
            try:
                rules = self._role_rules(ref, namespace)
            except LookupError:  # the registry's NotFound names the plural resource
                plural = 'roles' if ref.get('kind') == 'Role' else 'clusterroles'
                raise kmock.KubernetesError(status=404, reason='NotFound', message=f'{plural}.{RBAC_GROUP} "{ref.get("name")}" not found',
                                            details={'name': ref.get('name'), 'group': RBAC_GROUP, 'kind': plural}) from None
            refusal = self.confirm_no_escalation(user, namespace or '', rules)
        if refusal is not None:
            raise Forbidden(RBAC_GROUP, resource.plural, name, refusal)


def _only_gc_fields_changed(obj: Obj, old: Obj) -> bool:
    """rbacregistry.IsOnlyMutatingGCFields: only ownerReferences and finalizers differ."""
    def strip(o: Obj) -> Obj:
        o = copy.deepcopy(o)
        for key in ('ownerReferences', 'finalizers', 'resourceVersion', 'managedFields', 'generation'):
            o['metadata'].pop(key, None)
        return o
    return strip(obj) == strip(old)


def validate_name(name: str) -> None:
    """RBAC names are path segments (ValidateRBACName = path.IsValidPathSegmentName), e.g. `system:discovery`."""
    if not name or name in ('.', '..') or '/' in name or '%' in name:
        raise kmock.KubernetesError(status=422, reason='Invalid',
                                    message=f'metadata.name: Invalid value: "{name}": may not be \'.\' or \'..\' and may not contain \'/\' or \'%\'')


@functools.cache
def serving_certificate() -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (cert file, key file), made once per test session.

    client-go (helm, kubectl) reads a kubeconfig's credentials only for TLS servers
    (clientcmd DirectClientConfig.ClientConfig: "only try to read the auth information if we are
    secure"), so over plain http helm would be anonymous; the emulator serves https for them.
    """
    directory = Path(tempfile.mkdtemp(prefix='k8s-emulator-tls-'))
    cert, key = directory / 'tls.crt', directory / 'tls.key'
    made = subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
                           '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', str(key), '-out', str(cert)],
                          capture_output=True, text=True, timeout=60, check=False)
    if made.returncode:
        raise RuntimeError(f'openssl could not make the emulator\'s serving certificate: {made.stderr}')
    return str(cert), str(key)


# --- seeded policy -------------------------------------------------------------------------------

def bootstrap_policy() -> list[Obj]:
    """The default roles every cluster has (bootstrappolicy/policy.go), those requests need."""
    def cluster_role(name: str, rules: list[Obj]) -> Obj:
        return {'apiVersion': f'{RBAC_GROUP}/v1', 'kind': 'ClusterRole', 'metadata': {'name': name}, 'rules': rules}

    def binding(name: str, *groups: str) -> Obj:
        return {'apiVersion': f'{RBAC_GROUP}/v1', 'kind': 'ClusterRoleBinding', 'metadata': {'name': name},
                'roleRef': {'apiGroup': RBAC_GROUP, 'kind': 'ClusterRole', 'name': name},
                'subjects': [{'apiGroup': RBAC_GROUP, 'kind': 'Group', 'name': g} for g in groups]}

    info = ['/healthz', '/livez', '/readyz', '/version', '/version/']
    return [
        cluster_role('cluster-admin', [{'apiGroups': ['*'], 'resources': ['*'], 'verbs': ['*']},
                                       {'nonResourceURLs': ['*'], 'verbs': ['*']}]),
        binding('cluster-admin', PRIVILEGED_GROUP),
        cluster_role('system:discovery', [{'nonResourceURLs': ['/api', '/api/*', '/apis', '/apis/*', '/healthz', '/livez',
                                                               '/openapi', '/openapi/*', '/readyz', '/version', '/version/'],
                                           'verbs': ['get']}]),
        binding('system:discovery', AUTHENTICATED),
        cluster_role('system:public-info-viewer', [{'nonResourceURLs': info, 'verbs': ['get']}]),
        binding('system:public-info-viewer', AUTHENTICATED, UNAUTHENTICATED),
        cluster_role('system:basic-user', [{'apiGroups': ['authorization.k8s.io'], 'verbs': ['create'],
                                            'resources': ['selfsubjectaccessreviews', 'selfsubjectrulesreviews']}]),
        binding('system:basic-user', AUTHENTICATED),
    ]


@functools.cache
def operator_policy(watch_namespaces: tuple[str, ...] = (), peering: bool = False) -> tuple[Obj, ...]:
    """The RBAC objects `helm template` renders from charts/observatory (release `observatory` in
    namespace `observatory`): clusterwide when `watch_namespaces` is empty, else a Role per namespace;
    with `peering`, as for several replicas (peering.enabled). Rendered once per test session and mode."""
    args = ['helm', 'template', OPERATOR_RELEASE, str(OPERATOR_CHART), '--namespace', OPERATOR_NAMESPACE,
            '--show-only', 'templates/rbac.yaml']
    if peering:
        args += ['--set', 'peering.enabled=true']
    if watch_namespaces:
        args += ['--set-json', f'watchNamespaces={json.dumps(list(watch_namespaces))}']
    rendered = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    if rendered.returncode:
        raise RuntimeError(f'helm template of {OPERATOR_CHART} failed: {rendered.stderr}')
    return tuple(doc for doc in yaml.safe_load_all(rendered.stdout) if doc)
