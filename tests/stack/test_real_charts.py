"""What the real upstream charts render with a stack's values: what a tenant may install, hardened and sized
pods, a writable Phoenix volume, a Langfuse one can log into (issue 12 items 1, 11, 12, 13).

Every test runs `helm template` on the packaged chart (see real_charts.py), so a value the chart ignores fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from observatory.compile.stack import (
    LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY, LANGFUSE_USER_PASSWORD, langfuse_login, required_secrets, secret_name,
)
from observatory.models.stack import ObservabilityStack
from real_charts import UpstreamLoader, pod_specs, render_stack
from test_stack_values import STACK_FILES, load, stack

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "stacks").glob("*.yaml"))
# Everything bundled and switched on: the most objects a stack can make the charts render.
MAXIMAL = {"phoenix": {"projectName": "p", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "3Gi"}}},
           "langfuse": {"dedicated": {"url": "https://lf.example.com", "organization": "O", "project": "P"}},
           "collector": {"replicas": 3}, "metrics": {"serviceMonitorLabels": {"team": "x"}}}
STACKS = {**{p.stem: p for p in STACK_FILES}, "maximal": MAXIMAL}

# Kinds a namespaced Role can grant. Built-in kinds from the API reference
# (https://kubernetes.io/docs/reference/kubernetes-api/, "namespaced" per kind); the CRDs' scope is read from
# the CRD files themselves.
NAMESPACED_BUILTIN = {"ConfigMap", "Secret", "Service", "ServiceAccount", "PersistentVolumeClaim", "Pod", "Deployment",
                      "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "PodDisruptionBudget", "Role",
                      "RoleBinding", "Ingress", "NetworkPolicy", "HorizontalPodAutoscaler", "Endpoints", "Event",
                      "LimitRange", "ResourceQuota"}

# Containers that keep a writable root filesystem, and why: their images write outside any volume the chart
# lets us mount (not measured on a running image; see the report of issue 12 item 13).
WRITABLE_ROOT = {
    "langfuse-web": "the entrypoint runs Prisma/golang-migrate and Next.js writes its cache under /app; the chart "
                    "has no option for a writable /tmp or cache volume",
    "langfuse-worker": "Node.js worker writes temporary export files; same chart limitation as langfuse-web",
    "seaweedfs": "weed writes logs and temporary files outside /data; the all-in-one template offers no emptyDir",
    "post-install-job": "weed shell keeps state in the home directory; the hook template mounts only its Secret",
}


# Binary and decimal suffixes of a Kubernetes quantity (apimachinery resource.Quantity).
SUFFIX = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(value: str | float) -> float:
    number, suffix = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value)).groups()
    return float(number) * SUFFIX[suffix]


def _stack(key: str) -> ObservabilityStack:
    source = STACKS[key]
    return load(source) if isinstance(source, Path) else stack(source, name="llm", namespace="team-m")


@pytest.fixture(scope="module")
def upstream_crds(upstream_dir: Path) -> list[dict[str, Any]]:
    return [crd for path in sorted((upstream_dir / "crds").glob("*.yaml"))
            for crd in yaml.load_all(path.read_text(), Loader=UpstreamLoader) if crd]


@pytest.fixture(scope="module")
def crd_scopes(upstream_crds) -> dict[str, str]:
    return {crd["spec"]["names"]["kind"]: crd["spec"]["scope"] for crd in upstream_crds}


@pytest.fixture(scope="module")
def rendered(helm: Path, upstream_dir: Path):
    return lambda st: render_stack(helm, upstream_dir, st)


def _objects(rendered_stack) -> Iterator[tuple[str, dict[str, Any]]]:
    for component, (_, objects) in rendered_stack.items():
        for obj in objects:
            yield component, obj


def _namespaces(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "namespace" and isinstance(value, str):
                yield value
            yield from _namespaces(value)
    elif isinstance(node, list):
        for value in node:
            yield from _namespaces(value)


@pytest.mark.parametrize("key", list(STACKS))
def test_a_tenant_stack_renders_only_namespaced_objects_of_its_namespace(key, rendered, crd_scopes) -> None:
    st = _stack(key)
    out = rendered(st)
    assert out, "nothing rendered"
    cluster_scoped, foreign = [], []
    for component, obj in _objects(out):
        kind = obj["kind"]
        if not (kind in NAMESPACED_BUILTIN or crd_scopes.get(kind) == "Namespaced"):
            cluster_scoped.append(f"{component}: {kind}/{obj['metadata']['name']}")
        foreign += [f"{component}: {kind}/{obj['metadata']['name']} names {ns}" for ns in _namespaces(obj) if ns != st.namespace]
    assert cluster_scoped == [], "cluster-scoped (or unknown) kinds a tenant's Role cannot grant"
    assert foreign == [], "objects that name another namespace"


def test_two_stacks_in_one_namespace_render_no_common_object(rendered) -> None:
    names = []
    for name in ("llm", "llm2"):
        out = rendered(stack(MAXIMAL, name=name, namespace="team-m"))
        names.append({(obj["kind"], obj["metadata"]["name"]) for _, obj in _objects(out)})
    assert names[0] and names[0] & names[1] == set()


def _effective(container: dict[str, Any], pod: dict[str, Any], key: str) -> Any:
    # A container's securityContext field overrides the pod's (PodSecurityContext docs).
    own = container.get("securityContext") or {}
    return own[key] if key in own else (pod.get("securityContext") or {}).get(key)


def hardening_problems(obj: dict[str, Any]) -> list[str]:
    problems = []
    for pod in pod_specs(obj):
        for container in pod.get("initContainers", []) + pod["containers"]:
            where = f"{obj['kind']}/{obj['metadata']['name']} {container['name']}"
            sc = container.get("securityContext") or {}
            if _effective(container, pod, "runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot not true")
            if not isinstance(_effective(container, pod, "runAsUser"), int):
                # kubelet refuses runAsNonRoot for an image with a non-numeric USER unless runAsUser is set.
                problems.append(f"{where}: no numeric runAsUser")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation not false")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{where}: capabilities do not drop ALL")
            if (_effective(container, pod, "seccompProfile") or {}).get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccompProfile not RuntimeDefault")
            if sc.get("readOnlyRootFilesystem") is not True and container["name"] not in WRITABLE_ROOT:
                problems.append(f"{where}: root filesystem writable")
            resources = container.get("resources") or {}
            if not {"cpu", "memory"} <= set(resources.get("requests") or {}):
                problems.append(f"{where}: no cpu and memory requests")
            if "memory" not in (resources.get("limits") or {}):
                problems.append(f"{where}: no memory limit")
            for name, limit in (resources.get("limits") or {}).items():
                # The API server refuses a pod whose request exceeds its limit (ValidateResourceRequirements).
                if name in (resources.get("requests") or {}) and quantity(resources["requests"][name]) > quantity(limit):
                    problems.append(f"{where}: {name} request above its limit")
    return problems


# all-external sets requests without limits on purpose: the user's resources replace the defaults whole.
@pytest.mark.parametrize("key", [*(p.stem for p in EXAMPLES), "maximal"])
def test_every_rendered_container_is_hardened_and_sized(key, rendered) -> None:
    problems = [f"{component}: {p}" for component, obj in _objects(rendered(_stack(key))) for p in hardening_problems(obj)]
    assert problems == []


def test_hardening_check_catches_a_weak_container() -> None:
    pod = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "securityContext": {"runAsNonRoot": True, "runAsUser": 1, "allowPrivilegeEscalation": False,
                                          "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True,
                                          "seccompProfile": {"type": "RuntimeDefault"}},
         "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}}]}}
    assert hardening_problems(pod) == []
    pod["spec"]["containers"][0]["resources"]["limits"] = {"memory": "1000Mi", "cpu": "500m"}
    assert hardening_problems(pod) == ["Pod/p c: memory request above its limit", "Pod/p c: cpu request above its limit"]
    pod["spec"]["containers"][0]["securityContext"]["capabilities"] = {"drop": ["NET_RAW"]}
    del pod["spec"]["containers"][0]["resources"]["limits"]
    assert hardening_problems(pod) == ["Pod/p c: capabilities do not drop ALL", "Pod/p c: no memory limit"]


def test_user_resources_override_the_defaults(rendered) -> None:
    spec = {"langfuse": {"dedicated": {"resources": {"requests": {"cpu": "3", "memory": "5Gi"}, "limits": {"memory": "6Gi"}}}},
            "collector": {"resources": {"requests": {"cpu": "2", "memory": "3Gi"}, "limits": {"memory": "4Gi"}}},
            "phoenix": {"resources": {"requests": {"cpu": "3", "memory": "6Gi"}, "limits": {"memory": "8Gi"}}}}
    out = rendered(stack(spec, name="llm", namespace="team-m"))
    containers = {c["name"]: c for _, obj in _objects(out) for pod in pod_specs(obj) for c in pod["containers"]}
    assert containers["langfuse-web"]["resources"] == spec["langfuse"]["dedicated"]["resources"]
    assert containers["langfuse-worker"]["resources"] == spec["langfuse"]["dedicated"]["resources"]
    assert containers["opentelemetry-collector"]["resources"] == spec["collector"]["resources"]
    # Not merged with the chart's own cpu limit (1000m, below this request: the pod would be refused).
    assert containers["phoenix"]["resources"] == {"requests": {"cpu": "3", "memory": "6Gi"},
                                                  "limits": {"cpu": "3", "memory": "8Gi"}}
    assert [p for _, obj in _objects(out) for p in hardening_problems(obj)] == []


def _workload(out, component: str, name: str) -> dict[str, Any]:
    (obj,) = [o for o in out[component][1] if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"] == name]
    return obj


def test_phoenix_on_sqlite_can_write_its_volume(rendered) -> None:
    out = rendered(load(STACKS["team-a-dedicated"]))
    pod = _workload(out, "phoenix", "llm-phoenix")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    data = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["data"]
    volume = {v["name"]: v for v in pod["volumes"]}["data"]
    assert data == "/data" and "persistentVolumeClaim" in volume
    # The nonroot image runs as uid 65532; a fresh PVC is root-owned, so only fsGroup makes it writable.
    assert _effective(container, pod, "runAsUser") == 65532
    assert pod["securityContext"]["fsGroup"] == 65532


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def test_a_dedicated_langfuse_initialises_a_login_from_the_generated_secret(rendered) -> None:
    st = load(STACKS["team-a-dedicated"])
    out = rendered(st)
    secret = secret_name(st)
    generated = {s.key for s in required_secrets(st)[secret]}
    web = _workload(out, "langfuse", "llm-langfuse-web")["spec"]["template"]["spec"]["containers"][0]
    env = _env(web)
    login = langfuse_login(st)
    assert env["AUTH_DISABLE_SIGNUP"]["value"] == "true"
    assert env["LANGFUSE_INIT_ORG_ID"]["value"] and env["LANGFUSE_INIT_PROJECT_ID"]["value"]
    assert env["LANGFUSE_INIT_USER_EMAIL"]["value"] == login["email"]
    assert env["LANGFUSE_INIT_USER_NAME"]["value"]
    refs = {name: env[name]["valueFrom"]["secretKeyRef"] for name in
            ("LANGFUSE_INIT_PROJECT_PUBLIC_KEY", "LANGFUSE_INIT_PROJECT_SECRET_KEY", "LANGFUSE_INIT_USER_PASSWORD")}
    assert refs == {"LANGFUSE_INIT_PROJECT_PUBLIC_KEY": {"name": secret, "key": LANGFUSE_PUBLIC_KEY},
                    "LANGFUSE_INIT_PROJECT_SECRET_KEY": {"name": secret, "key": LANGFUSE_SECRET_KEY},
                    "LANGFUSE_INIT_USER_PASSWORD": {"name": secret, "key": LANGFUSE_USER_PASSWORD}}
    assert {r["key"] for r in refs.values()} <= generated
    assert login == {"email": env["LANGFUSE_INIT_USER_EMAIL"]["value"], "secret": secret, "passwordKey": LANGFUSE_USER_PASSWORD}
    # The collector sends traces with the same project's keys, so they land in that project.
    collector = _workload(out, "collector", "llm-collector")["spec"]["template"]["spec"]["containers"][0]
    cenv = _env(collector)
    assert cenv["LANGFUSE_PUBLIC_KEY"]["valueFrom"]["secretKeyRef"] == refs["LANGFUSE_INIT_PROJECT_PUBLIC_KEY"]
    assert cenv["LANGFUSE_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == refs["LANGFUSE_INIT_PROJECT_SECRET_KEY"]
    # No rendered object carries a value of a generated key: a plain value would land in the release Secret.
    for _, obj in _objects(out):
        for pod in pod_specs(obj):
            for c in pod.get("initContainers", []) + pod["containers"]:
                plain = [e["name"] for e in c.get("env", []) if e["name"].startswith("LANGFUSE_INIT_")
                         and any(w in e["name"] for w in ("KEY", "PASSWORD")) and "valueFrom" not in e]
                assert plain == [], f"{obj['metadata']['name']} {c['name']}"


@pytest.fixture(scope="module")
def crd_schemas(upstream_crds) -> dict[tuple[str, str], dict[str, Any]]:
    return {(f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"]): version["schema"]["openAPIV3Schema"]
            for crd in upstream_crds for version in crd["spec"]["versions"]}


@pytest.mark.parametrize("kube_version", ["1.29", "1.33"])
@pytest.mark.parametrize("key", list(STACKS))
def test_rendered_objects_are_valid_for_the_api_server(key, kube_version, rendered, crd_schemas) -> None:
    # Built-in kinds against Kubernetes' OpenAPI (unknown fields refused), custom resources against their CRD.
    invalid, objects = [], list(_objects(rendered(_stack(key))))
    for component, obj in objects:
        where = f"{component}: {obj['kind']}/{obj['metadata']['name']}"
        schema = crd_schemas.get((obj["apiVersion"], obj["kind"]))
        try:
            if schema is not None:
                jsonschema.validate(obj, schema)
            else:
                kubernetes_validate.validate(obj, kube_version, strict=True)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as e:
            invalid.append(f"{where}: {str(e).splitlines()[0]}")
    assert objects and invalid == []


@pytest.mark.parametrize(("days", "expected"), [(None, "30"), (90, "90"), (0, None)])
def test_a_dedicated_langfuse_project_gets_the_stacks_retention(rendered, days, expected) -> None:
    """As the real chart renders it: the web container's headless initialisation carries the retention
    (30 days unless set; 0 keeps data for ever and sets none)."""
    dedicated = {} if days is None else {"retentionDays": days}
    out = rendered(stack({"langfuse": {"dedicated": dedicated}}, name="llm", namespace="team-m"))
    web = _workload(out, "langfuse", "llm-langfuse-web")["spec"]["template"]["spec"]["containers"][0]
    assert _env(web).get("LANGFUSE_INIT_PROJECT_RETENTION", {}).get("value") == expected


def test_a_langfuse_retention_below_its_minimum_is_refused_naming_the_fix() -> None:
    with pytest.raises(ValueError, match="Langfuse keeps data at least 3 days, got 2; write 3 or more, or 0"):
        stack({"langfuse": {"dedicated": {"retentionDays": 2}}})
