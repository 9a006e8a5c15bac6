"""The local control plane does what the other integration tests rely on (DESIGN.md §6).

Each test states one capability a Tenantry test needs: the v1.20 API, namespace deletion by the
namespace controller, quota usage by the resource-quota controller, RBAC, the audit log, and a client
that survives an API server restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from support.cluster import audit_offset, count_writes, new_api_client, wait_for


def _meta(name: str, namespace: str | None = None) -> client.V1ObjectMeta:
    return client.V1ObjectMeta(name=name, namespace=namespace)


def _pending_pod(name: str, cpu: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=_meta(name),
        spec=client.V1PodSpec(
            automount_service_account_token=False,
            containers=[client.V1Container(
                name="main",
                image="registry.invalid/pause:never-pulled",  # no kubelet: the pod stays Pending
                resources=client.V1ResourceRequirements(requests={"cpu": cpu, "memory": "16Mi"},
                                                        limits={"cpu": cpu, "memory": "16Mi"}),
            )],
        ),
    )


def test_api_server_is_v1_20_2(api_client: client.ApiClient) -> None:
    version = client.VersionApi(api_client).get_code()
    assert version.git_version.startswith("v1.20.2"), version.git_version
    assert (version.major, version.minor) == ("1", "20")


def test_namespace_deletion_is_finished_by_the_namespace_controller(
    api_client: client.ApiClient, unique_name: Callable[..., str]
) -> None:
    core = client.CoreV1Api(api_client)
    name = unique_name("ns")
    core.create_namespace(client.V1Namespace(metadata=_meta(name)))
    core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=_meta("content"), data={"a": "b"}))

    core.delete_namespace(name)

    # Terminating first (the apiserver only marks it); gone once the controller has emptied it.
    def gone() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as e:
            return e.status == 404
        return False

    wait_for(gone, timeout=60, message=f"namespace {name} to be deleted by the namespace controller")


def test_resource_quota_usage_is_tracked(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_resource_quota(namespace, client.V1ResourceQuota(
        metadata=_meta("compute"),
        spec=client.V1ResourceQuotaSpec(hard={"pods": "2", "requests.cpu": "1"}),
    ))
    # The quota controller computes status.hard/used; until then admission refuses pods.
    wait_for(lambda: core.read_namespaced_resource_quota("compute", namespace).status.hard,
             timeout=30, message="the quota controller to fill status.hard")

    # The ServiceAccount admission plugin waits for the namespace's `default` service account,
    # which the serviceaccount controller creates: retry until it exists.
    wait_for(lambda: core.create_namespaced_pod(namespace, _pending_pod("p1", "300m")),
             timeout=30, message="pod p1 to be admitted")
    used = wait_for(
        lambda: (u := core.read_namespaced_resource_quota("compute", namespace).status.used)
        and u.get("pods") == "1" and u,
        timeout=30, message="status.used to count pod p1")
    assert used["requests.cpu"] == "300m"

    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, _pending_pod("p2", "800m"))
    assert refused.value.status == 403 and "exceeded quota" in refused.value.body

    # Releasing usage is the controller's job (admission only ever adds): delete and watch it drop.
    core.delete_namespaced_pod("p1", namespace)
    wait_for(lambda: core.read_namespaced_resource_quota("compute", namespace).status.used.get("pods") == "0",
             timeout=40, message="the quota controller to release the deleted pod's usage")


def test_rbac_is_enforced_for_impersonated_users(
    api_client: client.ApiClient,
    impersonated_client: Callable[..., client.ApiClient],
    can_i: Callable[..., bool],
    unique_name: Callable[..., str],
) -> None:
    nobody = impersonated_client("nobody@example.com")
    with pytest.raises(ApiException) as forbidden:
        client.CoreV1Api(nobody).list_namespace()
    assert forbidden.value.status == 403
    assert "nobody@example.com" in forbidden.value.body
    assert not can_i("nobody@example.com", [], "list", "namespaces", None)

    # A grant to a group reaches a user impersonated with several groups (one header per group).
    rbac = client.RbacAuthorizationV1Api(api_client)
    role, group = unique_name("ns-reader"), unique_name("readers")
    rbac.create_cluster_role(client.V1ClusterRole(
        metadata=_meta(role),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["namespaces"], verbs=["get", "list"])],
    ))
    rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(
        metadata=_meta(role),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role),
        subjects=[client.RbacV1Subject(kind="Group", name=group, api_group="rbac.authorization.k8s.io")],
    ))
    try:
        reader = impersonated_client("alice@example.com", ["unrelated", group])
        names = wait_for(lambda: [n.metadata.name for n in client.CoreV1Api(reader).list_namespace().items],
                         timeout=10, message="the new binding to take effect")
        assert "default" in names
        assert can_i("alice@example.com", [group], "list", "namespaces", None)
        assert not can_i("alice@example.com", [group], "delete", "namespaces", None, name="default")
        with pytest.raises(ApiException) as no_delete:
            client.CoreV1Api(reader).delete_namespace("default")
        assert no_delete.value.status == 403
    finally:
        rbac.delete_cluster_role_binding(role)
        rbac.delete_cluster_role(role)


def test_audit_log_records_writes_by_user_agent_and_user(
    control_plane: Any, kubeconfig: str, unique_name: Callable[..., str], namespace: str
) -> None:
    audit_log = control_plane.audit_log
    assert audit_log is not None, "the session's control plane writes an audit log"
    api = new_api_client(kubeconfig)
    api.user_agent = "tenantry-test/1.0"
    core = client.CoreV1Api(api)
    start = audit_offset(audit_log)

    for _ in range(2):
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=_meta(unique_name("cm"))))
    core.list_namespaced_config_map(namespace)  # reads are not audited

    wait_for(lambda: count_writes(audit_log, start, resource="configmaps", namespace=namespace) == 2,
             timeout=10, message="two configmap creates in the audit log")
    assert count_writes(audit_log, start, user_agent_prefix="tenantry-test/", user="tenantry-admin",
                        namespace=namespace) == 2
    assert count_writes(audit_log, start, user="someone-else") == 0
    assert count_writes(audit_log, start, user_agent_prefix="kubectl", namespace=namespace) == 0
    api.close()


def test_client_reconnects_after_apiserver_restart(
    local_control_plane: Any, api_client: client.ApiClient
) -> None:
    cp = local_control_plane
    core = client.CoreV1Api(api_client)
    core.list_namespace()  # a pooled keep-alive connection now exists

    cp.stop_component("apiserver")
    assert not cp.component_running("apiserver")
    with pytest.raises(Exception):  # noqa: B017 - connection refused surfaces as urllib3's MaxRetryError
        core.list_namespace(_request_timeout=3)

    began = time.monotonic()
    cp.start_component("apiserver")  # waits for /readyz
    restarted_in = time.monotonic() - began
    names = [n.metadata.name for n in core.list_namespace().items]
    assert "default" in names
    assert restarted_in < 60


def test_api_recovers_after_etcd_restart(local_control_plane: Any, api_client: client.ApiClient,
                                         unique_name: Callable[..., str]) -> None:
    cp = local_control_plane
    core = client.CoreV1Api(api_client)
    name = unique_name("before-etcd-restart")
    core.create_namespace(client.V1Namespace(metadata=_meta(name)))

    cp.stop_component("etcd")
    wait_for(lambda: not cp.ready(), timeout=20, message="/readyz to report etcd missing")

    cp.start_component("etcd")
    cp.wait_ready()
    # Data survived, and writes go through again (the first requests may still meet the apiserver's
    # etcd client reconnecting, hence the short wait).
    survivor = wait_for(lambda: core.read_namespace(name), timeout=20, message="a read after the etcd restart")
    assert survivor.metadata.name == name
    wait_for(lambda: core.delete_namespace(name), timeout=20, message="a write after the etcd restart")
