"""API calls the ObservabilityStack reconcile needs beyond the AlertRule/SLO ones: the stack
installer's identity, the generated Secret (created once, never rewritten), the `<stack>-otel`
ConfigMap, prerequisite CRDs, release ownership, workload readiness and clean-up of what helm
uninstall keeps. An extension of the Kubernetes adapter: same field manager, same permission
declarations, same error mapping (`ApiProblem`).

Everything inside a stack's namespace runs as its installer (`as_installer`): the operator itself
can neither read Secrets nor write workloads (observatory.rbac).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from ..rbac import INSTALLER, INSTALLER_PERMISSIONS, RBAC_GROUP
from .kube import FIELD_MANAGER, ApiProblem, Kube, Owner, _up_to_date

INSTANCE_LABEL = "app.kubernetes.io/instance"  # set by most charts, e.g. on StatefulSets' volume claim templates
# helm annotates every object it creates with its release (helm/helm pkg/action/action.go
# setMetadataVisitor); charts' own labels vary: Phoenix's carry only `app: <release>`.
RELEASE_ANNOTATION = "meta.helm.sh/release-name"
INSTRUMENTATIONS = "instrumentations"  # the OpenTelemetry Operator's plural (compile.stack.INSTRUMENTATION_KIND)


def _of_release(item: Mapping[str, Any], release: str) -> bool:
    meta = item["metadata"]
    return ((meta.get("annotations") or {}).get(RELEASE_ANNOTATION) == release
            or (meta.get("labels") or {}).get(INSTANCE_LABEL) == release)


class InstallerConflict(ApiProblem):
    """A RoleBinding of the installer's name that binds something else: someone else's, left alone."""


def installer_user(namespace: str) -> str:
    """The user name of the stack installer ServiceAccount of `namespace`, as impersonated."""
    return f"system:serviceaccount:{namespace}:{INSTALLER}"


class StackKube(Kube):
    def __init__(self, api_client: client.ApiClient, *args: Any, **kwargs: Any):
        super().__init__(api_client, *args, **kwargs)
        self._apps = client.AppsV1Api(api_client)
        self._extensions = client.ApiextensionsV1Api(api_client)
        self._rbac = client.RbacAuthorizationV1Api(api_client)

    # --- the installer identity -------------------------------------------------------------------

    def as_installer(self, namespace: str) -> StackKube:
        """This adapter acting as the installer of `namespace`: every call impersonates it (the
        apiserver checks the operator's `impersonate`, then the installer's own RBAC)."""
        view = copy.copy(self)
        view._impersonate, view._permissions = installer_user(namespace), INSTALLER_PERMISSIONS
        return view

    def ensure_installer(self, owner: Owner) -> None:
        """The installer ServiceAccount of the stack's namespace and its RoleBinding to the installer
        ClusterRole. Every stack of the namespace is an owner of both (not a controller: they are
        shared), so the last stack deleted takes them along — after its delete handler uninstalled
        its releases as the installer, since its finalizer keeps it until then."""
        namespace = owner.namespace
        role_ref = {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": INSTALLER}
        subjects = [{"kind": "ServiceAccount", "name": INSTALLER, "namespace": namespace}]
        kinds = (
            # The installer never runs a pod: no token is mounted for it.
            ("", "serviceaccounts", "v1", "ServiceAccount", {"automountServiceAccountToken": False},
             self._core.read_namespaced_service_account, self._core.create_namespaced_service_account,
             self._core.patch_namespaced_service_account),
            (RBAC_GROUP, "rolebindings", f"{RBAC_GROUP}/v1", "RoleBinding", {"roleRef": role_ref, "subjects": subjects},
             self._rbac.read_namespaced_role_binding, self._rbac.create_namespaced_role_binding,
             self._rbac.patch_namespaced_role_binding),
        )
        for group, resource, api_version, kind, content, read, create, patch in kinds:
            for _attempt in range(3):  # another stack of the namespace (or replica) writing too: re-read
                try:
                    self._ensure_installer_object(owner, group, resource, api_version, kind, content, read, create, patch)
                    break
                except ApiProblem as e:
                    if e.code != 409 or isinstance(e, InstallerConflict):
                        raise
            else:
                raise ApiProblem(409, f"{kind} {INSTALLER} in {namespace} kept changing while it was written")

    def _ensure_installer_object(self, owner: Owner, group: str, resource: str, api_version: str, kind: str,
                                 content: Mapping[str, Any], read: Any, create: Any, patch: Any) -> None:
        namespace, ref = owner.namespace, owner.reference(controller=False)
        try:
            live = json.loads(self._call(group, resource, "get", read, INSTALLER, namespace, named=INSTALLER,
                                         _preload_content=False).data)
        except ApiProblem as e:
            if e.code != 404:
                raise
            body = {"apiVersion": api_version, "kind": kind, "metadata": {
                "name": INSTALLER, "namespace": namespace, "ownerReferences": [ref],
                "labels": {self._conventions.managed_by_label: self._conventions.managed_by_value}}, **content}
            self._call(group, resource, "create", create, namespace, body)
            return
        role_ref = content.get("roleRef")
        if role_ref is not None and live.get("roleRef") != role_ref:  # roleRef is immutable: someone else's binding
            raise InstallerConflict(409, f"RoleBinding {INSTALLER} in {namespace} binds {live['roleRef'].get('kind')} "
                                         f"{live['roleRef'].get('name')}, not the ClusterRole {INSTALLER}; delete it "
                                         "so that Observatory can create its own")
        refs = live["metadata"].get("ownerReferences") or []
        wanted = {k: v for k, v in content.items() if k != "roleRef"}
        if any(r.get("uid") == owner.uid for r in refs) and all(live.get(k) == v for k, v in wanted.items()):
            return
        # The resourceVersion makes a concurrent writer's change a 409, and the caller re-reads.
        self._call(group, resource, "patch", patch, INSTALLER, namespace, {
            "metadata": {"resourceVersion": live["metadata"]["resourceVersion"],
                         "ownerReferences": [r for r in refs if r.get("uid") != owner.uid] + [ref]},
            **wanted}, named=INSTALLER)

    # --- the generated Secret -------------------------------------------------------------------

    def read_secret_data(self, namespace: str, name: str) -> tuple[dict[str, str], str] | None:
        """(base64 data, resourceVersion) of a Secret, or None when it does not exist."""
        try:
            secret = self._call("", "secrets", "get", self._core.read_namespaced_secret, name, namespace)
        except ApiProblem as e:
            if e.code == 404:
                return None
            raise
        return dict(secret.data or {}), secret.metadata.resource_version

    def create_secret(self, namespace: str, name: str, labels: Mapping[str, str], data: Mapping[str, str]) -> None:
        """Create a Secret (base64 `data`); 409 AlreadyExists propagates so the caller re-reads."""
        body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)}, "data": dict(data)}
        self._call("", "secrets", "create", self._core.create_namespaced_secret, namespace, body)

    def add_secret_keys(self, namespace: str, name: str, resource_version: str, data: Mapping[str, str]) -> None:
        """Add keys to a Secret; the resourceVersion makes a concurrent writer's change a 409."""
        body = {"metadata": {"resourceVersion": resource_version}, "data": dict(data)}
        self._call("", "secrets", "patch", self._core.patch_namespaced_secret, name, namespace, body)

    def delete_secret(self, namespace: str, name: str) -> None:
        self._delete_ignoring_absent("secrets", self._core.delete_namespaced_secret, name, namespace)

    # --- the apps' ConfigMap ----------------------------------------------------------------------

    def apply_configmap(self, owner: Owner, name: str, labels: Mapping[str, str], data: Mapping[str, str]) -> bool:
        """Server-side apply of an owned ConfigMap; False (and no write) when it already holds `data`."""
        try:
            live = self._call("", "configmaps", "get", self._core.read_namespaced_config_map, name, owner.namespace)
        except ApiProblem as e:
            if e.code != 404:
                raise
            live = None
        # Written as the installer, which may not update the stack's finalizers (what blockOwnerDeletion
        # needs under OwnerReferencesPermissionEnforcement); foreground deletion need not wait for it.
        refs = [{**owner.reference(), "blockOwnerDeletion": False}]
        if (live is not None and dict(live.data or {}) == dict(data)
                and all((live.metadata.labels or {}).get(k) == v for k, v in labels.items())
                and [r.uid for r in live.metadata.owner_references or []] == [owner.uid]):
            return False
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": owner.namespace, "labels": dict(labels), "ownerReferences": refs},
                "data": dict(data)}
        self._call("", "configmaps", "patch", self._core.patch_namespaced_config_map, name, owner.namespace, body,
                   field_manager=FIELD_MANAGER, force=True, _content_type="application/apply-patch+yaml")
        return True

    # --- the OpenTelemetry Operator Instrumentation ----------------------------------------------

    def apply_instrumentation(self, owner: Owner, obj: Mapping[str, Any]) -> bool:
        """Create or replace the stack's Instrumentation, controlled by the stack (so it goes with it);
        False (and no write) when it holds exactly `obj`'s spec. Replaced whole, not applied: a field
        someone else added (a tenant's `spec.env` redirecting the exporter) would outlive an apply."""
        group, version = obj["apiVersion"].split("/")
        name, namespace = obj["metadata"]["name"], owner.namespace
        live = self._get_instrumentation(group, version, namespace, name)
        # Written as the installer: no blockOwnerDeletion, as for the apps' ConfigMap.
        body = self._body(obj, [{**owner.reference(), "blockOwnerDeletion": False}])
        if _up_to_date(live, body) and live.get("spec") == body["spec"]:
            return False
        if live is None:  # a 409 (created meanwhile) is retried by the reconcile
            self._call(group, INSTRUMENTATIONS, "create", self._custom.create_namespaced_custom_object,
                       group, version, namespace, INSTRUMENTATIONS, body, field_manager=FIELD_MANAGER)
        else:  # at the resourceVersion read: a concurrent change is a 409, retried
            body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            self._call(group, INSTRUMENTATIONS, "update", self._custom.replace_namespaced_custom_object,
                       group, version, namespace, INSTRUMENTATIONS, name, body, field_manager=FIELD_MANAGER)
        return True

    def _get_instrumentation(self, group: str, version: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._call(group, INSTRUMENTATIONS, "get", self._custom.get_namespaced_custom_object,
                              group, version, namespace, INSTRUMENTATIONS, name)
        except ApiProblem as e:
            if e.code != 404:
                raise
            return None

    def delete_instrumentation(self, owner: Owner, api_version: str, name: str) -> None:
        """Delete the stack's Instrumentation if there is one it controls (never a tenant's own of that name)."""
        group, version = api_version.split("/")
        live = self._get_instrumentation(group, version, owner.namespace, name)
        if live is None or not any(r.get("uid") == owner.uid and r.get("controller")
                                   for r in live["metadata"].get("ownerReferences") or []):
            return
        try:
            self._call(group, INSTRUMENTATIONS, "delete", self._custom.delete_namespaced_custom_object,
                       group, version, owner.namespace, INSTRUMENTATIONS, name,
                       body={"preconditions": {"uid": live["metadata"]["uid"]}})
        except ApiProblem as e:
            if e.code != 404:
                raise

    # --- prerequisites and readiness --------------------------------------------------------------

    def missing_crds(self, names: list[str]) -> list[str]:
        """Which of the CustomResourceDefinitions (plural.group) are not installed."""
        missing = []
        for name in names:
            try:
                # Existence is all that matters: skip deserialising a possibly huge schema.
                self._call("apiextensions.k8s.io", "customresourcedefinitions", "get",
                           self._extensions.read_custom_resource_definition, name, _preload_content=False).release_conn()
            except ApiProblem as e:
                if e.code != 404:
                    raise
                missing.append(name)
        return missing

    def workloads(self, namespace: str, release: str) -> list[dict[str, Any]]:
        """The release's Deployments and StatefulSets as {kind, name, replicas, available, current}."""
        found = []
        for kind, resource, lister in (("Deployment", "deployments", self._apps.list_namespaced_deployment),
                                       ("StatefulSet", "statefulsets", self._apps.list_namespaced_stateful_set)):
            # Raw JSON: only replicas and status are read, the pod templates are not worth deserialising.
            # Annotations cannot be selected on: the namespace's workloads are filtered here.
            response = self._call("apps", resource, "list", lister, namespace, _preload_content=False)
            for item in filter(lambda i: _of_release(i, release), json.loads(response.data)["items"]):
                meta, spec, status = item["metadata"], item.get("spec") or {}, item.get("status") or {}
                available = status.get("availableReplicas" if kind == "Deployment" else "readyReplicas") or 0
                found.append({"kind": kind, "name": meta["name"], "replicas": spec.get("replicas", 1), "available": available,
                              # the controller has seen the latest spec
                              "current": bool(status) and status.get("observedGeneration", 0) >= meta.get("generation", 0)})
        return found

    def release_label(self, namespace: str, release: str, label: str) -> str | None:
        """A label of a Helm release's latest revision record, None when unset or no record exists.

        helm's default storage keeps one Secret per revision, labelled owner=helm, name=<release>,
        version=<revision>, plus the release's own labels (helm/helm pkg/storage/driver/secrets.go);
        `helm history` does not show those labels and helm 3's `get metadata` neither."""
        answer = self._call("", "secrets", "list", self._core.list_namespaced_secret, namespace,
                            label_selector=f"owner=helm,name={release}")
        records = [item.metadata.labels or {} for item in answer.items]
        if not records:
            return None
        return max(records, key=lambda labels: int(labels.get("version") or 0)).get(label)

    def delete_release_data(self, namespace: str, release: str) -> list[str]:
        """Delete what helm uninstall keeps of a release: its PersistentVolumeClaims and Secrets —
        the chart's own marked helm.sh/resource-policy keep (helm annotates them; e.g. the Langfuse
        chart's database credentials) and StatefulSets' claims (labelled by their claim templates)."""
        deleted = []
        for resource, lister, deleter in (
                ("persistentvolumeclaims", self._core.list_namespaced_persistent_volume_claim,
                 self._core.delete_namespaced_persistent_volume_claim),
                ("secrets", self._core.list_namespaced_secret, self._core.delete_namespaced_secret)):
            response = self._call("", resource, "list", lister, namespace, _preload_content=False)
            for item in json.loads(response.data)["items"]:
                if _of_release(item, release):
                    self._delete_ignoring_absent(resource, deleter, item["metadata"]["name"], namespace)
                    deleted.append(f"{resource}/{item['metadata']['name']}")
        return deleted

    def _delete_ignoring_absent(self, resource: str, fn: Any, name: str, namespace: str) -> None:
        try:
            self._call("", resource, "delete", fn, name, namespace)
        except ApiProblem as e:
            if e.code != 404:
                raise
