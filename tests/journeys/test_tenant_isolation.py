"""Journey: a tenant owner tries to reach past its namespace on shared nodes and a shared ingress.

Issue 17's attacks (each also a scenario of Capsule's end-to-end suite), made with `kubectl --as` the
tenant owner, under the chart's RBAC, on the real control plane with the operator and its admission
webhook running. Each is refused with the field and the rule in its words:

- CVE-2020-8554: a Service with `externalIPs` (it would capture every pod's traffic to that IP);
- CVE-2021-25740: the `web` Service the tenant's Ingress routes to turned into an ExternalName of a
  platform service, or hand-written Endpoints pointing anywhere (the shared ingress controller would
  serve it on the tenant's public host);
- a Pod naming `system-cluster-critical` (it would preempt other tenants' pods), refused by the webhook
  and, without it, by the ResourceQuota `tenantry-priority` alone;
- host network / PID, hostPath, privileged, extra capabilities, hostPort, as a Pod and as a Deployment
  (refused at `kubectl apply` of the Deployment, not later at its ReplicaSet);
- an image from a registry the Region does not allow; storage of a class the plan does not sell
  (also refused by the quota alone); NodePort and LoadBalancer Services.

And what a tenant does every day (a Deployment, its Service, claims of the class its plan sells) is
accepted.
"""

from __future__ import annotations

from typing import Any

import pytest
from journey_support import (
    Stage,
    owner_of,
    plan_doc,
    region_doc,
    tenant_doc,
    unique_name,
    wait_condition,
)

from support.cluster import wait_for
from support.kubectl import Kubectl

ALLOWED_REGISTRIES = ["docker.io/library", "registry.acme.example"]
QUOTA = {"cpu": "2", "memory": "2Gi", "storage": "10Gi", "pods": "10"}
SOLD, NOT_SOLD = "standard", "premium"  # both offered in the Region; the plan sells only `standard`


@pytest.fixture(scope="module")
def tenant(stage: Stage) -> dict[str, Any]:
    """A Region with guardrails, a reseller whose plan sells storage class `standard` only, and one
    Ready tenant whose owner may work in its namespace."""
    region, reseller, name = unique_name("iso", 30), unique_name("host", 20), unique_name("bakery", 40)
    region_spec = region_doc(region)
    region_spec["spec"]["guardrails"] = {"allowedRegistries": ALLOWED_REGISTRIES, "storageClasses": [SOLD, NOT_SOLD]}
    alice = stage.open_reseller(region_spec, reseller)
    plan = plan_doc(reseller, "starter", quota=QUOTA)
    plan["spec"]["storageClasses"] = [SOLD]
    alice.apply(plan)
    alice.apply(tenant_doc(reseller, name, region, "starter", owners=[{"kind": "User", "name": owner_of(name)}]))
    wait_condition(alice, "Ready", "True", None, "tenant", name, "-n", f"reseller-{reseller}")
    namespace = f"{reseller}--{name}"
    owner = stage.owner_at_work(name, namespace, "services", timeout=45)
    return {"namespace": namespace, "owner": owner, "admin": stage.platform_admin, "region": region}


def service(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}], **spec}}


def pod(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "web", "image": "nginx:1.25"}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


def deployment(name: str, **spec: Any) -> dict[str, Any]:
    template = pod(name, **spec)["spec"]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": template}}}


def claim(name: str, storage_class: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


def in_namespace(doc: dict[str, Any], namespace: str) -> dict[str, Any]:
    return {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}


def refused(kubectl: Kubectl, doc: dict[str, Any], namespace: str, *words: str) -> str:
    """`kubectl apply` of `doc` must fail, saying each of `words`; nothing of that name exists after."""
    result = kubectl.apply(in_namespace(doc, namespace), check=False)
    said = result.stdout + result.stderr
    assert result.returncode != 0, f"{doc['kind']} {doc['metadata']['name']} was accepted:\n{said}"
    for word in words:
        assert word in said, f"kubectl's refusal does not say {word!r}:\n{said}"
    return said


def exists(kubectl: Kubectl, kind: str, name: str, namespace: str) -> bool:
    return kubectl.run("get", kind, name, "-n", namespace, check=False).returncode == 0


# ------------------------------------------------------------------------------------------ everyday work


def test_an_ordinary_site_is_accepted(tenant: dict[str, Any]) -> None:
    owner, namespace = tenant["owner"], tenant["namespace"]
    owner.apply(*(in_namespace(doc, namespace) for doc in (
        deployment("site", containers=[{"name": "web", "image": "registry.acme.example/bakery/site:2",
                                        "ports": [{"containerPort": 8080}],
                                        "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}}}]),
        service("web"),
        claim("uploads", SOLD),
        claim("scratch", None),
    )))
    for kind, name in (("deployment", "site"), ("service", "web"), ("pvc", "uploads"), ("pvc", "scratch")):
        assert exists(owner, kind, name, namespace), f"{kind} {name}"
    # Everyday changes of what is there pass too.
    owner.run("scale", "deployment", "site", "--replicas=2", "-n", namespace)
    owner.run("label", "service", "web", "tier=front", "-n", namespace)


# ------------------------------------------------------------------------------------------ the attacks


def test_a_service_with_external_ips_is_refused(tenant: dict[str, Any]) -> None:
    """CVE-2020-8554: kube-proxy would send every pod's traffic for 8.8.8.8 to the tenant's pods."""
    owner, namespace = tenant["owner"], tenant["namespace"]
    refused(owner, service("intercept", externalIPs=["8.8.8.8"]), namespace,
            "ExternalIPsNotAllowed", "spec.externalIPs", "CVE-2020-8554", "8.8.8.8")
    assert not exists(owner, "service", "intercept", namespace)


def test_the_web_service_cannot_become_an_external_name(tenant: dict[str, Any]) -> None:
    """CVE-2021-25740: the Ingress routing the tenant's public host to `web` would serve Grafana."""
    owner, namespace = tenant["owner"], tenant["namespace"]
    owner.apply(in_namespace(service("web"), namespace))
    hijack = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
              "spec": {"type": "ExternalName", "externalName": "grafana.monitoring.svc.cluster.local"}}
    refused(owner, hijack, namespace, "ExternalNameNotAllowed", "spec.type", "CVE-2021-25740",
            "grafana.monitoring.svc.cluster.local")
    # The same by a patch that also clears the cluster IP, as the API server would want.
    result = owner.run("patch", "service", "web", "-n", namespace, "--type=merge", "-p",
                       '{"spec":{"type":"ExternalName","externalName":"grafana.monitoring.svc.cluster.local",'
                       '"clusterIP":"","clusterIPs":null,"ports":null,"selector":null}}', check=False)
    assert result.returncode != 0 and "ExternalNameNotAllowed" in result.stderr, result.stdout + result.stderr
    assert owner.jsonpath("{.spec.type}", "service", "web", "-n", namespace) == "ClusterIP"
    # A new ExternalName Service is refused as well.
    refused(owner, {**hijack, "metadata": {"name": "grafana"}}, namespace, "ExternalNameNotAllowed")


def test_hand_written_endpoints_are_forbidden(tenant: dict[str, Any]) -> None:
    """CVE-2021-25740 the other way: a selector-less `web` with Endpoints naming any address."""
    owner, namespace = tenant["owner"], tenant["namespace"]
    endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": namespace},
                 "subsets": [{"addresses": [{"ip": "10.96.0.10"}], "ports": [{"port": 3000}]}]}
    result = owner.apply(endpoints, check=False)
    assert result.returncode != 0 and "forbidden" in result.stderr.lower(), result.stdout + result.stderr
    assert owner.can_i("list", "endpoints", "-n", namespace)  # reading them stays


def test_a_cluster_critical_pod_is_refused(tenant: dict[str, Any]) -> None:
    """A pod of priority system-cluster-critical would preempt other tenants' pods on shared nodes."""
    owner, namespace = tenant["owner"], tenant["namespace"]
    refused(owner, pod("preempt", priorityClassName="system-cluster-critical"), namespace,
            "PriorityClassNotAllowed", "spec.priorityClassName", "system-cluster-critical")
    refused(owner, deployment("preempt", priorityClassName="system-cluster-critical"), namespace,
            "PriorityClassNotAllowed", "spec.template.spec.priorityClassName")


def test_the_priority_quota_refuses_it_without_the_webhook(tenant: dict[str, Any]) -> None:
    """The API server enforces it alone: the platform admin, whom the webhook lets through, gets the
    quota's refusal; and a pod without a priority class is not counted by that quota."""
    admin, namespace = tenant["admin"], tenant["namespace"]
    wait_for(lambda: exists(admin, "resourcequota", "tenantry-priority", namespace), timeout=30,
             message="quota tenantry-priority")
    refused(admin, pod("preempt-admin", priorityClassName="system-cluster-critical"), namespace,
            "exceeded quota: tenantry-priority")
    admin.apply(in_namespace(pod("plain-admin"), namespace))
    assert exists(admin, "pod", "plain-admin", namespace)


HOST_ACCESS = {
    "hostNetwork": ({"hostNetwork": True}, "HostNetworkNotAllowed", "hostNetwork"),
    "hostPID": ({"hostPID": True}, "HostPIDNotAllowed", "hostPID"),
    "hostPath": ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}],
                  "containers": [{"name": "web", "image": "nginx", "volumeMounts": [
                      {"name": "root", "mountPath": "/host"}]}]},
                 "HostPathNotAllowed", "volumes[0].hostPath"),
    "privileged": ({"containers": [{"name": "web", "image": "nginx", "securityContext": {"privileged": True}}]},
                   "PrivilegedNotAllowed", "containers[0].securityContext.privileged"),
    "capabilities": ({"containers": [{"name": "web", "image": "nginx", "securityContext": {
        "capabilities": {"add": ["SYS_ADMIN"]}}}]},
        "CapabilityNotAllowed", "containers[0].securityContext.capabilities.add"),
    "hostPort": ({"containers": [{"name": "web", "image": "nginx", "ports": [
        {"containerPort": 80, "hostPort": 80}]}]}, "HostPortNotAllowed", "containers[0].ports[0].hostPort"),
}


@pytest.mark.parametrize("attack", sorted(HOST_ACCESS))
def test_host_access_is_refused_as_a_pod_and_as_a_deployment(tenant: dict[str, Any], attack: str) -> None:
    owner, namespace = tenant["owner"], tenant["namespace"]
    spec, reason, field = HOST_ACCESS[attack]
    name = attack.lower()
    refused(owner, pod(name, **spec), namespace, reason, f"spec.{field}")
    refused(owner, deployment(name, **spec), namespace, reason, f"spec.template.spec.{field}")
    assert not exists(owner, "deployment", name, namespace)


def test_an_image_from_a_registry_the_region_does_not_allow_is_refused(tenant: dict[str, Any]) -> None:
    owner, namespace = tenant["owner"], tenant["namespace"]
    said = refused(owner, deployment("miner", containers=[{"name": "web", "image": "evil.example/miner:1"}]),
                   namespace, "RegistryNotAllowed", "spec.template.spec.containers[0].image", "evil.example/miner")
    assert all(registry in said for registry in ALLOWED_REGISTRIES)
    refused(owner, pod("hub", containers=[{"name": "web", "image": "bitnami/redis"}]), namespace,
            "RegistryNotAllowed", "docker.io/bitnami/redis")


def test_storage_the_plan_does_not_sell_is_refused(tenant: dict[str, Any]) -> None:
    owner, namespace = tenant["owner"], tenant["namespace"]
    refused(owner, claim("fast", NOT_SOLD), namespace, "StorageClassNotSold", "spec.storageClassName",
            f"'{NOT_SOLD}' is not sold on plan 'starter'")
    refused(owner, claim("elsewhere", "gold"), namespace, "StorageClassNotSold")  # a class the Region lists not


def test_the_storage_quota_refuses_it_without_the_webhook(tenant: dict[str, Any]) -> None:
    admin, namespace = tenant["admin"], tenant["namespace"]
    refused(admin, claim("fast-admin", NOT_SOLD), namespace, "exceeded quota: tenantry",
            f"{NOT_SOLD}.storageclass.storage.k8s.io")
    admin.apply(in_namespace(claim("standard-admin", SOLD), namespace))


@pytest.mark.parametrize(("kind", "reason"), [("NodePort", "NodePortNotAllowed"),
                                              ("LoadBalancer", "LoadBalancerNotAllowed")])
def test_node_ports_and_load_balancers_are_refused(tenant: dict[str, Any], kind: str, reason: str) -> None:
    owner, namespace = tenant["owner"], tenant["namespace"]
    refused(owner, service(kind.lower(), type=kind), namespace, reason, "spec.type", "ClusterIP")


# ------------------------------------------------------------------------------------------ the registration


def test_the_rules_are_registered_fail_closed_for_tenant_namespaces_only(tenant: dict[str, Any],
                                                                       stage: Stage) -> None:
    """What the platform admin sees of the webhook: the isolation rules fail closed, and only tenant
    namespaces are sent to them; elsewhere the cluster's own workloads are not the operator's business."""
    admin = tenant["admin"]
    configuration = admin.get_json("validatingwebhookconfiguration", "tenantry")
    hooks = {hook["name"]: hook for hook in configuration["webhooks"]}
    for name in ("isolation-core", "isolation-apps", "isolation-batch"):
        hook = hooks[f"{name}.tenantry.dev"]
        assert hook["failurePolicy"] == "Fail"
        assert hook["namespaceSelector"] == {"matchExpressions": [
            {"key": "tenantry.dev/namespace-role", "operator": "In", "values": ["tenant"]}]}
        assert hook["timeoutSeconds"] <= 10
    # A developer of the platform, with the same rights in a namespace of its own, is not checked there.
    elsewhere, developer = unique_name("platform-ns"), "dev@platform.example"
    stage.apply_as_platform({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": elsewhere}})
    admin.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                 "metadata": {"name": "dev", "namespace": elsewhere},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": "tenantry-tenant-owner"},
                 "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": developer}]})
    dev = stage.kubectl.as_user(developer)
    wait_for(lambda: dev.can_i("create", "services", "-n", elsewhere), timeout=30, message="the developer's binding")
    dev.apply(in_namespace({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "grafana"},
                            "spec": {"type": "ExternalName", "externalName": "grafana.example"}}, elsewhere))
