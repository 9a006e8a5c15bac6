"""Regions on their own clusters (DESIGN.md §7, docs/multi-cluster.md), on three real control planes:
the session's control cluster and two member clusters started beside it (tests/support/members.py).

One reseller sells in `central` (a node pool of the control cluster), `m1` (member 1) and `m2`
(member 2). The platform admin applies Regions and the Reseller, the reseller's admin applies Plans
and Tenants with `kubectl --as`, all in the control cluster; each test then looks in every cluster
for what must be there, and what must not. The tests share the member control planes and run in
file order; each leaves the fleet running.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.utils import parse_quantity
from multicluster_support import (
    CENTRAL,
    M1,
    M2,
    POLL,
    Fleet,
    admin_of,
    children,
    condition_is,
    conditions,
    fully_provisioned,
    namespace_exists,
    namespace_or_none,
    owner_of,
    plan_doc,
    region_doc,
    reseller_doc,
    tenant_doc,
    unique_name,
)

from support.cluster import audit_offset, count_writes, wait_for
from support.events import told
from support.members import (
    KUBECONFIG_KEY,
    MEMBER_OPERATOR_USER,
    NAMESPACE,
    MemberCluster,
    delete_secret,
    kubeconfig_for,
    put_kubeconfig_secret,
)

DRIFT_SECONDS = 20  # "corrected within seconds", with room for a loaded 2-core machine
OUTAGE_SECONDS = 60  # noticing a stopped member API server, and resuming once it is back


def _figure(record_property: Callable[[str, object], None], name: str, value: float) -> None:
    """A measured figure for the closing note: in the JUnit XML and printed (`-s`)."""
    record_property(name, round(value, 2))
    print(f"[multicluster] {name} = {value:.2f}")


# ---------------------------------------------------------------------------- the harness itself
def test_members_are_registered_with_a_working_kubeconfig_secret(members: list[MemberCluster],
                                                                 api_client: client.ApiClient) -> None:
    """The harness, without the operator: each member's kubeconfig Secret of the control cluster opens
    the member as its operator ServiceAccount, which holds the chart's role there and nothing more."""
    core = client.CoreV1Api(api_client)
    servers = set()
    for member in members:
        secret = core.read_namespaced_secret(member.secret_name, NAMESPACE)
        text = base64.b64decode(secret.data[KUBECONFIG_KEY]).decode()
        configuration = client.Configuration()
        config.load_kube_config_from_dict(yaml.safe_load(text), client_configuration=configuration)
        configuration.proxy = None
        with client.ApiClient(configuration) as api:
            assert configuration.host == member.server
            names = {ns.metadata.name for ns in client.CoreV1Api(api).list_namespace().items}
            assert NAMESPACE in names and "default" in names
            review = client.AuthorizationV1Api(api).create_self_subject_access_review(
                client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
                    resource_attributes=client.V1ResourceAttributes(
                        verb="bind", group="rbac.authorization.k8s.io", resource="clusterroles",
                        name="tenantry-tenant-owner"))))
            assert review.status.allowed, "the operator's identity may bind the platform roles in the member"
            review = client.AuthorizationV1Api(api).create_self_subject_access_review(
                client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
                    resource_attributes=client.V1ResourceAttributes(verb="create", resource="pods",
                                                                    namespace="default"))))
            assert not review.status.allowed, "the operator's identity is least-privileged in the member"
        # The platform ClusterRoles the operator binds are installed in the member.
        roles = {r.metadata.name for r in client.RbacAuthorizationV1Api(member.api).list_cluster_role().items}
        assert {"tenantry-reseller", "tenantry-reseller-support", "tenantry-tenant-owner",
                "tenantry-operator"} <= roles
        assert member.git_version().startswith("v1.")
        servers.add(member.server)
    assert len(servers) == 2 and api_client.configuration.host not in servers


def test_the_harness_rotates_a_credential_and_restarts_an_api_server(members: list[MemberCluster],
                                                                     api_client: client.ApiClient) -> None:
    """The fault helpers the tests below rely on, without the operator: a rotation leaves the old
    token refused and the Secret holding a working new one; a stopped member API server refuses
    connections and serves again, same address, once started."""
    member1, member2 = members
    old = member2.token
    new = member2.rotate_credential(api_client)
    assert new != old and member2.answers(old) == 401 and member2.answers(new) == 200
    secret = client.CoreV1Api(api_client).read_namespaced_secret(member2.secret_name, NAMESPACE)
    assert new in base64.b64decode(secret.data[KUBECONFIG_KEY]).decode()

    member1.stop_apiserver()
    try:
        with pytest.raises(OSError):
            member1.answers(member1.token)
    finally:
        member1.start_apiserver()
    assert member1.answers(member1.token) == 200


# ---------------------------------------------------------------------------- registration
def test_member_regions_report_their_cluster_and_node_pool(fleet: Fleet) -> None:
    """A Region with spec.cluster shows ClusterReachable=True (Connected), the member's server and
    version, and its node pool's allocatable capacity summed over the member's matching nodes."""
    member1, member2 = fleet.members
    # Two nodes of member 1 are in the region's pool, one is not.
    pool = {"pool": fleet.regions[M1]}
    member1.add_node(unique_name("node"), pool, {"cpu": "4", "memory": "8Gi", "pods": "110"})
    member1.add_node(unique_name("node"), pool, {"cpu": "2500m", "memory": "4Gi", "pods": "110"})
    member1.add_node(unique_name("node"), {"pool": "elsewhere"}, {"cpu": "64", "memory": "256Gi", "pods": "500"})

    for role, member in ((M1, member1), (M2, member2)):
        region = fleet.wait_region(role, "ClusterReachable", "True", "Connected")
        cluster = region["status"]["cluster"]
        assert (cluster["server"], cluster["version"]) == (member.server, member.git_version())

    def pool_counted() -> dict[str, Any] | None:
        status = fleet.region(M1).get("status") or {}
        return status.get("nodePool") if (status.get("nodePool") or {}).get("nodes") == 2 else None

    node_pool = wait_for(pool_counted, 60, interval=POLL, message="status.nodePool of the member-1 region")
    allocatable = node_pool["allocatable"]
    assert parse_quantity(allocatable["cpu"]) == parse_quantity("6500m")
    assert parse_quantity(allocatable["memory"]) == parse_quantity("12Gi")
    assert parse_quantity(allocatable["pods"]) == 220
    # Member 2 has no node in its pool: no node pool is reported.
    assert "nodePool" not in (fleet.region(M2).get("status") or {})
    # The control cluster's region is a node pool as before: no cluster, no ClusterReachable.
    central = fleet.wait_region(CENTRAL, "Ready", "True")
    assert "cluster" not in central.get("status", {})


# ---------------------------------------------------------------------------- provisioning
def test_tenants_are_provisioned_in_their_regions_cluster_and_nowhere_else(
        fleet: Fleet, record_property: Callable[[str, object], None]) -> None:
    began = time.monotonic()
    made = {role: fleet.new_tenants(role, 2) for role in (CENTRAL, M1, M2)}
    for role, names in made.items():
        fleet.wait_tenants(names, timeout=90)
        _figure(record_property, f"time_to_ready_{fleet.cluster_name(role)}_s", time.monotonic() - began)

    clusters = fleet.clusters()
    for role, names in made.items():
        home = fleet.cluster_name(role)
        for name in names:
            tenant = fleet.tenant(name)
            assert tenant is not None
            namespace = fleet.namespace_of(name)
            assert tenant["status"]["namespace"] == namespace
            assert condition_is(tenant, "Admitted", "True") and condition_is(tenant, "Provisioned", "True")
            # Everything per tenant is in its region's cluster...
            assert fully_provisioned(clusters[home], namespace), \
                f"{namespace} in {home}: {sorted(children(clusters[home], namespace))}"
            labels = namespace_or_none(clusters[home], namespace).metadata.labels
            assert labels["app.kubernetes.io/managed-by"] == "tenantry"
            assert (labels["tenantry.dev/reseller"], labels["tenantry.dev/tenant"], labels["tenantry.dev/region"]) \
                == (fleet.reseller, name, fleet.regions[role])
            # ...and nothing of it in any other cluster.
            for other, api in clusters.items():
                if other != home:
                    assert not namespace_exists(api, namespace), f"{namespace} also made in {other}"

    # The Tenants, their status and the reseller's control namespace stay in the control cluster.
    for member in fleet.members:
        assert not namespace_exists(member.api, fleet.control_namespace)
    wait_for(lambda: fleet.reseller_obj()["status"]["licenses"]["used"] >= 6, 30, interval=POLL,
             message="the reseller counts the six licences (it trails admission by a second)")


def test_reseller_admin_and_tenant_owner_work_in_the_member_cluster(fleet: Fleet) -> None:
    """RoleBindings in a member name the same users as in the control cluster (one identity provider
    for all clusters): the reseller's support and the tenant's owner work in the member namespace."""
    (tenant,) = fleet.new_tenants(M1, 1, prefix="people")
    fleet.wait_tenant(tenant, timeout=90)
    namespace = fleet.namespace_of(tenant)
    member = fleet.member_of(M1).kubectl

    owner = member.as_user(owner_of(tenant))
    owner.run("create", "deployment", "web", "--image=nginx", "-n", namespace)
    assert owner.jsonpath("{.metadata.name}", "deployment", "web", "-n", namespace) == "web"
    assert not owner.can_i("delete", "networkpolicies", "-n", namespace)
    assert not owner.can_i("patch", "resourcequotas", "-n", namespace)
    support = member.as_user(admin_of(fleet.reseller))
    assert support.can_i("get", "pods", "-n", namespace)
    assert not support.can_i("delete", "rolebindings", "-n", namespace)
    # The owner has nothing of its own in the control cluster.
    control_owner = fleet.kubectl.as_user(owner_of(tenant))
    assert not control_owner.can_i("create", "deployments.apps", "-n", namespace)


# ---------------------------------------------------------------------------- drift
@pytest.mark.parametrize("role", [M1, M2])
def test_drift_in_a_member_cluster_is_corrected(fleet: Fleet, role: str,
                                                record_property: Callable[[str, object], None]) -> None:
    (tenant,) = fleet.new_tenants(role, 1, prefix="drift")
    fleet.wait_tenant(tenant, timeout=90)
    namespace, api = fleet.namespace_of(tenant), fleet.api_of(role)
    net, core = client.NetworkingV1Api(api), client.CoreV1Api(api)
    wanted_pods = core.read_namespaced_resource_quota("tenantry", namespace).spec.hard["pods"]

    began = time.monotonic()
    net.delete_namespaced_network_policy("tenantry-isolation", namespace)
    core.patch_namespaced_resource_quota("tenantry", namespace, {"spec": {"hard": {"pods": "1000"}}})

    def restored() -> bool:
        present = {p.metadata.name for p in net.list_namespaced_network_policy(namespace).items}
        hard = core.read_namespaced_resource_quota("tenantry", namespace).spec.hard
        return "tenantry-isolation" in present and hard["pods"] == wanted_pods

    wait_for(restored, DRIFT_SECONDS, interval=POLL, message=f"the drift in {namespace} of {role} corrected")
    _figure(record_property, f"drift_corrected_{fleet.cluster_name(role)}_s", time.monotonic() - began)


# ---------------------------------------------------------------------------- deletion
@pytest.mark.parametrize("role", [M1, M2])
def test_deletion_policies_in_a_member_cluster(fleet: Fleet, role: str) -> None:
    deleted, = fleet.new_tenants(role, 1, prefix="del", deletionPolicy="Delete")
    retained, = fleet.new_tenants(role, 1, prefix="keep", deletionPolicy="Retain")
    fleet.wait_tenants([deleted, retained], timeout=90)
    api = fleet.api_of(role)
    # The reseller's count follows its tenants' admission by a second or two: wait for it to settle.
    used = fleet.admitted_count()
    fleet.wait_status_licences_used(used)

    fleet.alice.run("delete", "tenant", deleted, retained, "-n", fleet.control_namespace, "--wait=false")
    wait_for(lambda: fleet.tenant(deleted) is None and fleet.tenant(retained) is None, 60, interval=POLL,
             message="both tenants gone from the control cluster")

    # Delete: the member's namespace goes (the member's namespace controller finishes the job).
    wait_for(lambda: not namespace_exists(api, fleet.namespace_of(deleted)), 90, interval=POLL,
             message=f"namespace {fleet.namespace_of(deleted)} deleted from {fleet.cluster_name(role)}")
    # Retain: the namespace stays in the member, without Tenantry's labels and bindings.
    namespace = fleet.namespace_of(retained)
    kept = namespace_or_none(api, namespace)
    assert kept is not None and kept.metadata.deletion_timestamp is None
    labels = kept.metadata.labels or {}
    assert "app.kubernetes.io/managed-by" not in labels and "tenantry.dev/tenant" not in labels, labels
    rbac = client.RbacAuthorizationV1Api(api)
    bindings = {b.metadata.name for b in rbac.list_namespaced_role_binding(namespace).items}
    assert not bindings & {"tenantry-owners", "tenantry-reseller-support"}, bindings
    # Neither namespace was ever made in another cluster; both licences are free again.
    for name, cluster in fleet.clusters().items():
        if name != fleet.cluster_name(role):
            assert not namespace_exists(cluster, fleet.namespace_of(deleted))
            assert not namespace_exists(cluster, namespace)
    fleet.wait_status_licences_used(used - 2)


# ---------------------------------------------------------------------------- a member goes away
def test_member_stopped_and_restarted_mid_rollout(fleet: Fleet,
                                                  record_property: Callable[[str, object], None]) -> None:
    member1 = fleet.member_of(M1)
    (steady,) = fleet.new_tenants(M1, 1, prefix="steady")
    (bystander,) = fleet.new_tenants(M2, 1, prefix="bystander")
    fleet.wait_tenants([steady, bystander], timeout=90)
    used_before = fleet.admitted_count()
    fleet.wait_status_licences_used(used_before)

    rollout = fleet.new_tenants(M1, 3, prefix="roll")  # the rollout has started...
    member1.stop_apiserver()  # ...when member 1's API server stops
    stopped = time.monotonic()
    try:
        region = fleet.wait_region(M1, "ClusterReachable", "False", "Unreachable", timeout=OUTAGE_SECONDS)
        _figure(record_property, "member_down_noticed_s", time.monotonic() - stopped)
        message = conditions(region)["ClusterReachable"]["message"]
        assert member1.server in message or member1.secret_name in message, message
        # Its tenants keep their namespaces (nobody can see them now); their readiness is unknown.
        fleet.wait_tenant(steady, "Ready", "Unknown", "ClusterUnreachable", timeout=OUTAGE_SECONDS)

        # Admission goes on: new tenants of the unreachable region are admitted and take a licence.
        during = fleet.new_tenants(M1, 2, prefix="during")
        fleet.wait_tenants(during, "Admitted", "True", timeout=30)
        fleet.wait_tenants(during, "Ready", "Unknown", "ClusterUnreachable", timeout=30)
        # And the reseller is told so, beside the Warning: the status write's Normal Event names Admitted.
        events = client.CoreV1Api(fleet.control)
        for name in during:
            wait_for(lambda name=name: any(
                e.type == "Normal" and "Admitted" in told(e.message or "") for e in events.list_namespaced_event(
                    fleet.control_namespace, field_selector=f"involvedObject.name={name}").items),
                     30, interval=POLL, message=f"a Normal Event telling {name}'s admission")
        fleet.wait_status_licences_used(used_before + len(rollout) + len(during))

        # A tenant refused there (its reseller has no licence) got nothing in the member: its reseller deletes
        # it at once, though the member cannot be asked (every Tenant carries the finalizer from its creation).
        broke = unique_name("broke", max_length=20)
        fleet.apply_as_platform(reseller_doc(broke, [fleet.regions[M1]], licenses=0))
        bob = fleet.kubectl.as_user(admin_of(broke))
        wait_for(lambda: bob.can_i("create", "tenants.tenantry.dev", "-n", f"reseller-{broke}"), 60,
                 interval=POLL, message=f"{admin_of(broke)} may create tenants")
        bob.apply(plan_doc(broke))
        refused = unique_name("refused", max_length=40)
        bob.apply(tenant_doc(broke, refused, fleet.regions[M1]))
        objects = client.CustomObjectsApi(fleet.control)

        def refused_tenant() -> dict[str, Any] | None:
            try:
                return dict(objects.get_namespaced_custom_object("tenantry.dev", "v1alpha1", f"reseller-{broke}",
                                                                 "tenants", refused))
            except client.ApiException as error:
                if error.status == 404:
                    return None
                raise

        wait_for(lambda: condition_is(refused_tenant(), "Admitted", "False", "LicenseLimitReached"), 30,
                 interval=POLL, message="the tenant of a reseller without licences refused")
        bob.run("delete", "tenant", refused, "-n", f"reseller-{broke}", "--wait=false")
        wait_for(lambda: refused_tenant() is None, 30, interval=POLL,
                 message="the refused tenant of the unreachable region deleted")

        # Other regions are not affected: a new tenant in member 2 and one in the control cluster are
        # provisioned as fast as ever, drift in member 2 is corrected, member 2's region stays Connected.
        began = time.monotonic()
        elsewhere = fleet.new_tenants(M2, 1, prefix="m2during") + fleet.new_tenants(CENTRAL, 1, prefix="cdur")
        fleet.wait_tenants(elsewhere, timeout=60)
        _figure(record_property, "other_regions_time_to_ready_during_outage_s", time.monotonic() - began)
        net = client.NetworkingV1Api(fleet.member_of(M2).api)
        net.delete_namespaced_network_policy("tenantry-isolation", fleet.namespace_of(bystander))
        wait_for(lambda: net.read_namespaced_network_policy("tenantry-isolation", fleet.namespace_of(bystander)),
                 DRIFT_SECONDS, interval=POLL, message="drift in member 2 corrected while member 1 is down")
        assert condition_is(fleet.region(M2), "ClusterReachable", "True", "Connected")
        assert condition_is(fleet.tenant(bystander), "Ready", "True")
    finally:
        member1.start_apiserver()
    restarted = time.monotonic()

    fleet.wait_region(M1, "ClusterReachable", "True", "Connected", timeout=OUTAGE_SECONDS)
    everyone = [steady, *rollout, *during]
    fleet.wait_tenants(everyone, timeout=OUTAGE_SECONDS + 30)
    _figure(record_property, "member_back_all_ready_s", time.monotonic() - restarted)
    for name in everyone:
        assert fully_provisioned(member1.api, fleet.namespace_of(name)), name
        assert not namespace_exists(fleet.control, fleet.namespace_of(name))
        assert not namespace_exists(fleet.member_of(M2).api, fleet.namespace_of(name))
    # Nothing lost or duplicated: exactly one licence per tenant.
    fleet.wait_status_licences_used(used_before + len(rollout) + len(during) + len(elsewhere))


# ---------------------------------------------------------------------------- credentials
def test_kubeconfig_rotated_without_restart(fleet: Fleet, api_client: client.ApiClient) -> None:
    member2 = fleet.member_of(M2)
    (before,) = fleet.new_tenants(M2, 1, prefix="rot")
    fleet.wait_tenant(before, timeout=90)
    pid = fleet_operator_pid(fleet)

    member2.rotate_credential(api_client)  # new token in the Secret, the old one revoked
    offset = audit_offset(member2.audit_log)

    # The operator reconnects with the new credential: drift is corrected, new tenants provisioned.
    namespace = fleet.namespace_of(before)
    net = client.NetworkingV1Api(member2.api)
    net.delete_namespaced_network_policy("tenantry-isolation", namespace)
    wait_for(lambda: net.read_namespaced_network_policy("tenantry-isolation", namespace), 60, interval=POLL,
             message="drift in member 2 corrected after the rotation")
    (after,) = fleet.new_tenants(M2, 1, prefix="rot")
    fleet.wait_tenant(after, timeout=90)
    assert fully_provisioned(member2.api, fleet.namespace_of(after))
    assert count_writes(member2.audit_log, offset, user_agent_prefix="", user=MEMBER_OPERATOR_USER,
                        resource="networkpolicies", namespace=namespace) >= 1
    fleet.wait_region(M2, "ClusterReachable", "True", "Connected")
    assert fleet_operator_pid(fleet) == pid, "the operator was restarted"


def fleet_operator_pid(fleet: Fleet) -> int | None:
    return fleet.operator.pid if fleet.operator else None


@pytest.mark.parametrize("case", ["not-yaml", "no-server", "forbidden"])
def test_bad_kubeconfigs_are_reported_on_the_region(fleet: Fleet, api_client: client.ApiClient, case: str) -> None:
    """InvalidKubeconfig for a Secret that is no kubeconfig or names no server; Forbidden for an
    identity the member authenticates but grants nothing. Fixing the Secret connects the region."""
    member1 = fleet.member_of(M1)
    secret = unique_name(f"bad-{case}", max_length=40)
    text = {
        "not-yaml": "this: is: not [a kubeconfig",
        "no-server": kubeconfig_for(member1.server, b"", "nobody", "token").replace(member1.server, ""),
        "forbidden": member1.kubeconfig_text(member1.token_without_rbac(unique_name("nobody"))),
    }[case]
    put_kubeconfig_secret(api_client, secret, text)
    region = unique_name("bad", max_length=30)
    try:
        fleet.apply_as_platform(region_doc(region, {"namespace": NAMESPACE, "name": secret, "key": KUBECONFIG_KEY}))
        reason = "Forbidden" if case == "forbidden" else "InvalidKubeconfig"
        obj = fleet.wait_region_named(region, "ClusterReachable", "False", reason)
        message = conditions(obj)["ClusterReachable"]["message"]
        assert secret in message or member1.server in message, message
        assert member1.token not in message  # a credential never shows in status

        put_kubeconfig_secret(api_client, secret, member1.kubeconfig_text())  # the platform fixes it
        fleet.wait_region_named(region, "ClusterReachable", "True", "Connected")
    finally:
        fleet.kubectl.run("delete", "region", region, "--ignore-not-found", "--wait=false", check=False)
        delete_secret(api_client, secret)


# ---------------------------------------------------------------------------- the ledger
def test_exact_ledger_across_regions_and_clusters(fleet: Fleet) -> None:
    """After everything above: licences used = tenants admitted in all regions; every admitted tenant's
    namespace exists exactly once, in its region's cluster; no Tenantry namespace is orphaned anywhere;
    then an idle operator writes nothing in the members."""
    def settled() -> list[dict[str, Any]] | None:
        tenants = fleet.tenants()
        ready = all(condition_is(t, "Ready", "True") for t in tenants)
        return tenants if ready and tenants else None

    tenants = wait_for(settled, 90, interval=POLL, message="every tenant of the fleet Ready")
    admitted = [t for t in tenants if condition_is(t, "Admitted", "True")]
    assert len(admitted) == len(tenants)
    fleet.wait_status_licences_used(len(admitted))  # the count trails admission by a second

    by_region = {role: name for role, name in fleet.regions.items()}
    expected: dict[str, set[str]] = {cluster: set() for cluster in fleet.clusters()}
    for tenant in admitted:
        role = next(r for r, name in by_region.items() if name == tenant["spec"]["region"])
        expected[fleet.cluster_name(role)].add(fleet.namespace_of(tenant["metadata"]["name"]))
    for cluster, api in fleet.clusters().items():
        assert fleet.tenant_namespaces_in(api) == expected[cluster], cluster
    made = [ns for names in expected.values() for ns in names]
    assert len(made) == len(set(made)) == len(admitted)

    # Idle: no write by the operator in either member for a while (its meters are not there yet).
    offsets = {m.label: audit_offset(m.audit_log) for m in fleet.members}
    time.sleep(8)  # a window of observation, not a synchronisation
    for member in fleet.members:
        writes = count_writes(member.audit_log, offsets[member.label], user_agent_prefix="",
                              user=MEMBER_OPERATOR_USER)
        assert writes == 0, f"an idle operator wrote {writes} times in {member.label}"


def test_licences_race_across_regions(fleet: Fleet) -> None:
    """A second reseller with 3 licences gets 4 tenants in three regions of three clusters at once:
    exactly 3 are admitted (the oldest), the refused one gets no namespace in any cluster."""
    tight = unique_name("tight", max_length=20)
    fleet.apply_as_platform(reseller_doc(tight, list(fleet.regions.values()), licenses=3))
    alice = fleet.kubectl.as_user(admin_of(tight))
    wait_for(lambda: alice.can_i("create", "tenants.tenantry.dev", "-n", f"reseller-{tight}"), 60,
             interval=POLL, message=f"{admin_of(tight)} may create tenants")
    alice.apply(plan_doc(tight))
    roles = [CENTRAL, M1, M2, M1]
    names = [unique_name(f"race-{role}", max_length=40) for role in roles]
    alice.apply(*(tenant_doc(tight, n, fleet.regions[r]) for n, r in zip(names, roles, strict=True)))

    objects = client.CustomObjectsApi(fleet.control)

    def decided() -> list[dict[str, Any]] | None:
        objs = [objects.get_namespaced_custom_object("tenantry.dev", "v1alpha1", f"reseller-{tight}", "tenants", n)
                for n in names]
        return objs if all("Admitted" in conditions(o) for o in objs) else None

    objs = wait_for(decided, 60, interval=POLL, message="all four tenants decided")
    admitted = [o["metadata"]["name"] for o in objs if condition_is(o, "Admitted", "True")]
    refused = [o for o in objs if condition_is(o, "Admitted", "False", "LicenseLimitReached")]
    assert len(admitted) == 3 and len(refused) == 1, [conditions(o).get("Admitted") for o in objs]
    for name, role in zip(names, roles, strict=True):
        namespace = f"{tight}--{name}"
        home = fleet.cluster_name(role)
        for cluster, api in fleet.clusters().items():
            if name in admitted and cluster == home:
                wait_for(lambda api=api, namespace=namespace: fully_provisioned(api, namespace), 90,
                         interval=POLL, message=f"{namespace} provisioned in {cluster}")
            else:
                assert not namespace_exists(api, namespace), f"{namespace} in {cluster}"
