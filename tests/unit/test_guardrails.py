"""Tenant guardrails (tenantry.guardrails) and the quotas the API server enforces alone (builders).

Each rule: the object that breaks it is denied with the field and the reason; an ordinary object
passes. Properties (hypothesis): a workload's template is judged exactly as the Pod it stamps out;
an update is refused only for what it adds; an image is allowed exactly when its full repository
lies under an allowed prefix.
"""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantry import guardrails as g
from tenantry.builders.tenant import (
    PRIORITY_QUOTA,
    TenantInputs,
    build_priority_quota,
    build_resource_quota,
    build_tenant_children,
)
from tenantry.models import PlanSpec, RegionSpec

POLICY = g.TenantPolicy(region="eu-west", plan="starter")


def pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": base}


def container(**fields: Any) -> dict[str, Any]:
    return {"name": "web", "image": "nginx:1.25", **fields}


def service(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}


def pvc(storage_class: str | None = None, annotation: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    metadata: dict[str, Any] = {"name": "data"}
    if annotation is not None:
        metadata["annotations"] = {g.BETA_STORAGE_CLASS_ANNOTATION: annotation}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}


def paths(problems: list[Any]) -> list[str]:
    return [p.path for p in problems]


# ------------------------------------------------------------------------------------------ Services


def test_an_ordinary_service_passes() -> None:
    assert g.check_service(service(), POLICY) == []
    assert g.check_service(service(type="ClusterIP"), POLICY) == []


def test_external_ips_are_refused_naming_the_cve() -> None:
    (problem,) = g.check_service(service(externalIPs=["8.8.8.8"]), POLICY)
    assert (problem.path, problem.reason) == ("spec.externalIPs", "ExternalIPsNotAllowed")
    assert str(problem).startswith("spec.externalIPs: a tenant's Service may not set external IPs")
    assert "CVE-2020-8554" in problem.message and "8.8.8.8" in problem.message
    assert "remove spec.externalIPs" in problem.message


def test_external_name_is_refused_naming_the_cve() -> None:
    body = service(type="ExternalName", externalName="grafana.monitoring.svc.cluster.local")
    (problem,) = g.check_service(body, POLICY)
    assert (problem.path, problem.reason) == ("spec.type", "ExternalNameNotAllowed")
    assert "CVE-2021-25740" in problem.message and "grafana.monitoring.svc.cluster.local" in problem.message


@pytest.mark.parametrize("kind", ["NodePort", "LoadBalancer"])
def test_node_ports_and_load_balancers_are_refused(kind: str) -> None:
    (problem,) = g.check_service(service(type=kind), POLICY)
    assert problem.path == "spec.type" and kind in problem.message and "ClusterIP" in problem.message


# ------------------------------------------------------------------------------------------ Pods


def test_an_ordinary_pod_passes() -> None:
    body = pod(volumes=[{"name": "tmp", "emptyDir": {}}],
               containers=[container(securityContext={"capabilities": {"add": ["NET_BIND_SERVICE"],
                                                                        "drop": ["ALL"]},
                                                      "privileged": False})])
    assert g.check_pod(body, POLICY) == []


@pytest.mark.parametrize(("field", "words"), [("hostNetwork", "network"), ("hostPID", "process"),
                                              ("hostIPC", "IPC")])
def test_host_namespaces_are_refused(field: str, words: str) -> None:
    (problem,) = g.check_pod(pod(**{field: True}), POLICY)
    assert problem.path == f"spec.{field}" and words in problem.message
    assert g.check_pod(pod(**{field: False}), POLICY) == []


def test_host_path_volumes_are_refused() -> None:
    body = pod(volumes=[{"name": "tmp", "emptyDir": {}}, {"name": "root", "hostPath": {"path": "/"}}])
    (problem,) = g.check_pod(body, POLICY)
    assert problem.path == "spec.volumes[1].hostPath"
    assert "'root'" in problem.message and "PersistentVolumeClaim" in problem.message


def test_privileged_containers_are_refused_in_every_container_list() -> None:
    privileged = container(securityContext={"privileged": True})
    body = pod(containers=[container(), privileged], initContainers=[privileged],
               ephemeralContainers=[privileged])
    assert paths(g.check_pod(body, POLICY)) == [
        "spec.initContainers[0].securityContext.privileged",
        "spec.containers[1].securityContext.privileged",
        "spec.ephemeralContainers[0].securityContext.privileged",
    ]


@pytest.mark.parametrize("capability", ["SYS_ADMIN", "NET_ADMIN", "ALL", "CAP_SYS_ADMIN", "sys_ptrace"])
def test_capabilities_beyond_the_baseline_are_refused(capability: str) -> None:
    body = pod(containers=[container(securityContext={"capabilities": {"add": ["CHOWN", capability]}})])
    (problem,) = g.check_pod(body, POLICY)
    assert problem.path == "spec.containers[0].securityContext.capabilities.add"
    assert capability in problem.message and "CHOWN" not in problem.message.split("add only")[0]


def test_baseline_capabilities_pass_in_any_spelling() -> None:
    body = pod(containers=[container(securityContext={"capabilities": {"add": ["CAP_CHOWN", "kill", "SETUID"]}})])
    assert g.check_pod(body, POLICY) == []


def test_host_ports_are_refused() -> None:
    body = pod(containers=[container(ports=[{"containerPort": 80}, {"containerPort": 443, "hostPort": 443}])])
    (problem,) = g.check_pod(body, POLICY)
    assert problem.path == "spec.containers[0].ports[1].hostPort" and "443" in problem.message


def test_priority_classes_are_refused_unless_the_region_allows_them() -> None:
    (problem,) = g.check_pod(pod(priorityClassName="system-cluster-critical"), POLICY)
    assert problem.path == "spec.priorityClassName"
    assert "'system-cluster-critical'" in problem.message and "preempt" in problem.message
    assert "none is allowed" in problem.message
    allowing = g.TenantPolicy(region="eu-west", plan="starter", allowed_priority_classes=frozenset({"tenant-batch"}))
    assert g.check_pod(pod(priorityClassName="tenant-batch"), allowing) == []
    (problem,) = g.check_pod(pod(priorityClassName="system-node-critical"), allowing)
    assert "allowed: tenant-batch" in problem.message


def test_images_must_come_from_the_regions_registries() -> None:
    policy = g.TenantPolicy(region="eu-west", plan="starter",
                            allowed_registries=("registry.acme.example", "docker.io/library"))
    assert g.check_pod(pod(containers=[container(image="nginx")]), policy) == []
    assert g.check_pod(pod(containers=[container(image="registry.acme.example/shop/web:2")]), policy) == []
    (problem,) = g.check_pod(pod(containers=[container(image="evil.example/miner:1")]), policy)
    assert problem.path == "spec.containers[0].image"
    assert "evil.example/miner" in problem.message and "registry.acme.example, docker.io/library" in problem.message
    (problem,) = g.check_pod(pod(containers=[container(image="bitnami/redis")]), policy)
    assert "docker.io/bitnami/redis" in problem.message
    assert g.check_pod(pod(containers=[container(image="evil.example/miner:1")]), POLICY) == []  # no list: any


@pytest.mark.parametrize(("image", "repository"), [
    ("nginx", "docker.io/library/nginx"),
    ("nginx:1.25", "docker.io/library/nginx"),
    ("library/nginx@sha256:" + "a" * 64, "docker.io/library/nginx"),
    ("bitnami/redis:7", "docker.io/bitnami/redis"),
    ("index.docker.io/nginx", "docker.io/library/nginx"),
    ("docker.io/nginx", "docker.io/library/nginx"),
    ("ghcr.io/acme/app:v1", "ghcr.io/acme/app"),
    ("localhost:5000/app", "localhost:5000/app"),
    ("localhost/app", "localhost/app"),
    ("registry.example:5000/team/app:2@sha256:" + "b" * 64, "registry.example:5000/team/app"),
    ("Quay.IO/org/app", "quay.io/org/app"),
])
def test_image_normalisation(image: str, repository: str) -> None:
    assert g.normalize_image(image) == repository


@pytest.mark.parametrize(("image", "allowed"), [
    ("docker.io/library-evil/x", False),     # a prefix ends at a slash
    ("docker.io.evil.example/library/x", False),
    ("registry.acme.example.evil/x", False),
    ("registry.acme.example", True),  # no slash: the Hub's docker.io/library/registry.acme.example
    ("registry.acme.example/x", True),
    ("nginx", True),
    ("", False),
])
def test_registry_prefixes_end_at_a_slash(image: str, allowed: bool) -> None:
    assert g.registry_allows(image, ["registry.acme.example", "docker.io/library"]) is allowed
    assert g.registry_allows(image, ["registry.acme.example"]) is (image == "registry.acme.example/x")


REPOSITORY = st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}", fullmatch=True)
HOST = st.sampled_from(["ghcr.io", "quay.io", "registry.acme.example", "registry.acme.example:5000", "localhost:5000"])
TAG = st.sampled_from(["", ":1", ":latest", "@sha256:" + "c" * 64, ":2@sha256:" + "d" * 64])


@given(host=HOST, repository=REPOSITORY, tag=TAG, other=HOST)
def test_an_image_is_allowed_exactly_under_an_allowed_registry(host: str, repository: str, tag: str,
                                                               other: str) -> None:
    image = f"{host}/{repository}{tag}"
    assert g.normalize_image(image) == f"{host}/{repository}"
    assert g.normalize_image(g.normalize_image(image)) == g.normalize_image(image)
    assert g.registry_allows(image, [host])
    assert g.registry_allows(image, [other]) is (other == host)
    assert g.registry_allows(image, [])


# ------------------------------------------------------------------------------------------ templates

WORKLOADS = {
    "Deployment": lambda spec: {"spec": {"replicas": 1, "template": {"spec": spec}}},
    "ReplicaSet": lambda spec: {"spec": {"template": {"spec": spec}}},
    "StatefulSet": lambda spec: {"spec": {"serviceName": "web", "template": {"spec": spec}}},
    "DaemonSet": lambda spec: {"spec": {"template": {"spec": spec}}},
    "Job": lambda spec: {"spec": {"template": {"spec": spec}}},
    "ReplicationController": lambda spec: {"spec": {"template": {"spec": spec}}},
    "CronJob": lambda spec: {"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}}},
}

BAD_POD_SPECS = {
    "hostNetwork": {"hostNetwork": True},
    "hostPID": {"hostPID": True},
    "hostIPC": {"hostIPC": True},
    "hostPath": {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
    "privileged": {"containers": [container(securityContext={"privileged": True})]},
    "capabilities": {"containers": [container(securityContext={"capabilities": {"add": ["SYS_ADMIN"]}})]},
    "hostPort": {"containers": [container(ports=[{"containerPort": 80, "hostPort": 80}])]},
    "priorityClassName": {"priorityClassName": "system-cluster-critical"},
    "image": {"containers": [container(image="evil.example/miner")]},
    "ephemeral": {"volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {
        "storageClassName": "premium", "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}}}}}}]},
}


def pod_spec_breaking(bad: list[str]) -> dict[str, Any]:
    """An ordinary pod spec plus the listed rule breaks (lists such as volumes and containers grow)."""
    spec = pod()["spec"]
    for name in bad:
        for key, value in copy.deepcopy(BAD_POD_SPECS[name]).items():
            if isinstance(value, list):
                spec[key] = [*spec.get(key, []), *value]
            else:
                spec[key] = value
    return spec


STRICT = g.TenantPolicy(region="eu-west", plan="starter", allowed_registries=("docker.io/library",),
                        allowed_storage_classes=frozenset({"standard"}))


@given(kind=st.sampled_from(sorted(WORKLOADS)),
       bad=st.lists(st.sampled_from(sorted(BAD_POD_SPECS)), unique=True, max_size=4))
def test_a_workload_template_is_judged_as_the_pod_it_makes(kind: str, bad: list[str]) -> None:
    spec = pod_spec_breaking(bad)
    as_pod = g.check_pod({"kind": "Pod", "spec": spec}, STRICT)
    workload = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "w"}, **WORKLOADS[kind](spec)}
    as_template = g.check_pod(workload, STRICT)
    prefix = ".".join(g.POD_SPEC_PATHS[kind])
    assert [(p.path, p.message) for p in as_template] == [
        (prefix + p.path[len("spec"):], p.message) for p in as_pod]
    assert len({d.reason for d in as_pod}) == len(as_pod) == len(bad)  # one denial per rule broken
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+", d.reason) for d in as_pod)
    assert g.check_object(workload, STRICT) == as_template


def test_statefulset_claim_templates_are_checked_like_claims() -> None:
    body = {"kind": "StatefulSet", "spec": {"template": {"spec": pod()["spec"]}, "volumeClaimTemplates": [
        pvc("standard"), pvc("premium")]}}
    (problem,) = g.check_pod(body, STRICT)
    assert problem.path == "spec.volumeClaimTemplates[1].spec.storageClassName" and "'premium'" in problem.message


def test_kinds_without_guardrails_pass() -> None:
    assert g.check_object({"kind": "ConfigMap", "data": {"hostNetwork": "true"}}, STRICT) == []


# ------------------------------------------------------------------------------------------ PVCs


def test_claims_of_classes_the_plan_does_not_sell_are_refused() -> None:
    assert g.check_pvc(pvc("standard"), STRICT) == []
    assert g.check_pvc(pvc(), STRICT) == []  # no class: the default class, or a pre-provisioned volume
    (problem,) = g.check_pvc(pvc("premium"), STRICT)
    assert problem.path == "spec.storageClassName"
    assert "'premium' is not sold on plan 'starter'" in problem.message and "standard" in problem.message
    (problem,) = g.check_pvc(pvc("standard", annotation="premium"), STRICT)  # the annotation wins in v1.20
    assert problem.path == f"metadata.annotations[{g.BETA_STORAGE_CLASS_ANNOTATION}]"
    assert g.check_pvc(pvc("premium"), POLICY) == []  # no list: any class


def region(**guardrails: Any) -> RegionSpec:
    return RegionSpec.model_validate({
        "capacity": {"cpu": "8", "memory": "8Gi", "storage": "8Gi", "pods": "80"},
        "pricing": {"currency": "USD", "cpu": "0.02", "memory": "0.0025", "storage": "0.00015"},
        "guardrails": guardrails})


def plan(*storage_classes: str) -> PlanSpec:
    return PlanSpec.model_validate({"quota": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "10"},
                                    "pricing": {"currency": "EUR", "monthly": "1.00"},
                                    "storageClasses": list(storage_classes)})


@pytest.mark.parametrize(("offered", "sold", "allowed", "denied"), [
    ((), (), None, ()),
    (("standard", "premium"), (), {"standard", "premium"}, ()),
    ((), ("standard",), {"standard"}, ()),
    (("standard", "premium"), ("standard",), {"standard"}, ("premium",)),
    (("standard", "premium"), ("standard", "gold"), {"standard"}, ("premium",)),  # the Region's list bounds it
    (("standard",), ("gold",), set(), ("standard",)),
])
def test_storage_classes_are_the_plans_among_the_regions(offered: tuple[str, ...], sold: tuple[str, ...],
                                                         allowed: set[str] | None, denied: tuple[str, ...]) -> None:
    spec_region, spec_plan = region(storageClasses=list(offered)), plan(*sold)
    assert g.allowed_storage_classes(spec_region, spec_plan) == (None if allowed is None else frozenset(allowed))
    assert g.denied_storage_classes(spec_region, spec_plan) == denied


def test_the_policy_defaults_are_safe() -> None:
    policy = g.tenant_policy("eu-west", region(), "starter", plan())
    assert policy == g.TenantPolicy(region="eu-west", plan="starter")
    assert policy.allowed_priority_classes == frozenset()
    assert g.tenant_policy("eu-west", None, "starter", None) == policy
    assert RegionSpec.model_validate({
        "capacity": {"cpu": "8", "memory": "8Gi", "storage": "8Gi", "pods": "80"},
        "pricing": {"currency": "USD", "cpu": "0.02", "memory": "0.0025", "storage": "0.00015"},
    }).guardrails.allowed_priority_classes == ()


# ------------------------------------------------------------------------------------------ updates


def test_an_update_is_refused_only_for_what_it_adds() -> None:
    web = service()
    hijack = service(type="ExternalName", externalName="grafana.monitoring.svc.cluster.local")
    (problem,) = g.check_change(web, hijack, POLICY)
    assert problem.path == "spec.type"
    assert g.check_change(None, hijack, POLICY) == g.check_service(hijack, POLICY)
    # A Deployment made before a rule existed can still be scaled (the operator's suspension does).
    old = {"kind": "Deployment", "spec": {"replicas": 2, "template": {"spec": pod(hostNetwork=True)["spec"]}}}
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 0
    assert g.check_change(old, scaled, POLICY) == []
    worse = copy.deepcopy(old)
    worse["spec"]["template"]["spec"]["hostPID"] = True
    assert paths(g.check_change(old, worse, POLICY)) == ["spec.template.spec.hostPID"]


@given(before=st.lists(st.sampled_from(sorted(BAD_POD_SPECS)), unique=True, max_size=3),
       after=st.lists(st.sampled_from(sorted(BAD_POD_SPECS)), unique=True, max_size=3))
def test_an_update_never_adds_a_denial_it_did_not_bring(before: list[str], after: list[str]) -> None:
    def make(bad: list[str]) -> dict[str, Any]:
        return {"kind": "Deployment", "spec": {"template": {"spec": pod_spec_breaking(sorted(bad))}}}

    added = g.check_change(make(before), make(after), STRICT)
    assert set(added) <= set(g.check_object(make(after), STRICT))
    assert set(added).isdisjoint(g.check_object(make(before), STRICT))
    assert (added == []) is set(g.check_object(make(after), STRICT)).issubset(g.check_object(make(before), STRICT))


# ------------------------------------------------------------------------------------------ quotas


def inputs(**overrides: Any) -> TenantInputs:
    base: dict[str, Any] = dict(reseller="acme", tenant="bakery", region="eu-west", plan="starter",
                                namespace="acme--bakery",
                                quota={"cpu": Decimal(1), "memory": Decimal(2**30), "storage": Decimal(2**30),
                                       "pods": Decimal(10)})
    base.update(overrides)
    return TenantInputs(**base)


def test_priority_quota_refuses_every_class_by_default() -> None:
    quota = build_priority_quota(inputs())
    assert quota["metadata"]["name"] == PRIORITY_QUOTA == "tenantry-priority"
    assert quota["spec"] == {"hard": {"pods": "0"}, "scopeSelector": {"matchExpressions": [
        {"scopeName": "PriorityClass", "operator": "Exists"}]}}
    assert PRIORITY_QUOTA in [c["metadata"]["name"] for c in build_tenant_children(inputs())
                              if c["kind"] == "ResourceQuota"]


def test_priority_quota_leaves_out_the_allowed_classes() -> None:
    quota = build_priority_quota(inputs(allowed_priority_classes=("tenant-low", "tenant-batch", "tenant-low")))
    assert quota["spec"]["scopeSelector"]["matchExpressions"] == [
        {"scopeName": "PriorityClass", "operator": "Exists"},
        {"scopeName": "PriorityClass", "operator": "NotIn", "values": ["tenant-batch", "tenant-low"]},
    ]


def test_storage_classes_the_plan_does_not_sell_get_a_zero_quota() -> None:
    hard = build_resource_quota(inputs(denied_storage_classes=("premium",)))["spec"]["hard"]
    assert hard["premium.storageclass.storage.k8s.io/requests.storage"] == "0"
    assert hard["premium.storageclass.storage.k8s.io/persistentvolumeclaims"] == "0"
    assert hard["requests.storage"] == build_resource_quota(inputs())["spec"]["hard"]["requests.storage"] != "0"
    assert not [k for k in build_resource_quota(inputs())["spec"]["hard"] if "storageclass" in k]
