"""What the multi-cluster tests share: the fleet (three regions of one reseller, in three clusters), the
people acting on it with `kubectl --as`, and reading what exists in which cluster.

Written from DESIGN.md §7 and docs/multi-cluster.md: the platform admin applies Regions and Resellers,
the reseller's admin applies Plans and Tenants, in the control cluster; the tenants' namespaces and
everything in them are looked for in every cluster, to prove each is where it belongs and nowhere else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from support.cluster import make_unique_name_factory, wait_for
from support.kubectl import Kubectl
from support.members import MemberCluster
from support.operator import OperatorProcess

API = "tenantry.dev/v1alpha1"
GROUP, VERSION = "tenantry.dev", "v1alpha1"
PLATFORM_ADMIN = ("platform-admin@tenantry.example", "system:masters")
ALLOTMENT = {"cpu": "16", "memory": "64Gi", "storage": "500Gi", "pods": "400"}
SMALL = {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "10"}
CENTRAL, M1, M2 = "central", "m1", "m2"  # the fleet's regions, by role
POLL = 0.5  # seconds between two polls: the machine is small and shared

# The children §3 lists for every admitted tenant, by (kind, name); the TLS Secret's name depends on the
# mode, so it is looked for by type.
NAMED_CHILDREN = (("ResourceQuota", "tenantry"), ("LimitRange", "tenantry"),
                  ("NetworkPolicy", "tenantry-isolation"), ("RoleBinding", "tenantry-owners"),
                  ("RoleBinding", "tenantry-reseller-support"), ("Ingress", "tenantry"),
                  ("ConfigMap", "tenantry-branding"))

unique_name = make_unique_name_factory()


def admin_of(reseller: str) -> str:
    return f"alice@{reseller}.example"


def owner_of(tenant: str) -> str:
    return f"joe@{tenant}.example"


def conditions(obj: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    return {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions") or []}


def condition_is(obj: Mapping[str, Any] | None, type_: str, status: str, reason: str | None = None) -> bool:
    found = conditions(obj).get(type_)
    return bool(found and found["status"] == status and (reason is None or found["reason"] == reason))


def region_doc(name: str, secret_ref: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Region as a platform admin writes it; with `secret_ref`, a member cluster's (§7)."""
    spec: dict[str, Any] = {
        "displayName": name.upper(),
        "nodePool": {"nodeSelector": {"pool": name},
                     "tolerations": [{"key": "pool", "operator": "Equal", "value": name, "effect": "NoSchedule"}]},
        "ingress": {"className": "nginx", "controllerNamespace": "ingress-nginx"},
        "domainVerification": "None",
        "capacity": {"cpu": "64", "memory": "256Gi", "storage": "2Ti", "pods": "2000"},
        "pricing": {"currency": "USD", "cpu": "0.020", "memory": "0.0025", "storage": "0.00015"},
    }
    if secret_ref is not None:
        spec["cluster"] = {"kubeconfigSecretRef": dict(secret_ref)}
    return {"apiVersion": API, "kind": "Region", "metadata": {"name": name}, "spec": spec}


def reseller_doc(name: str, regions: list[str], licenses: int) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Reseller", "metadata": {"name": name}, "spec": {
        "companyName": f"{name} Hosting", "email": f"billing@{name}.example", "licenses": licenses,
        "admins": [{"kind": "User", "name": admin_of(name)}],
        "branding": {"displayName": f"{name} Cloud", "primaryColor": "#0a7cff"},
        "regions": [{"name": r, "domain": f"{r}.{name}.example", "tls": {"mode": "SelfSigned"},
                     "allotment": dict(ALLOTMENT)} for r in regions],
    }}


def plan_doc(reseller: str, name: str = "small") -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Plan", "metadata": {"name": name, "namespace": f"reseller-{reseller}"},
            "spec": {"displayName": name.title(), "quota": dict(SMALL), "defaults": {"cpu": "100m", "memory": "128Mi"},
                     "pricing": {"currency": "EUR", "monthly": "19.00", "cpu": "0.05"}}}


def tenant_doc(reseller: str, name: str, region: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Tenant", "metadata": {"name": name, "namespace": f"reseller-{reseller}"},
            "spec": {"displayName": name.title(), "email": f"{name}@{reseller}.customers.example",
                     "region": region, "plan": "small", "owners": [{"kind": "User", "name": owner_of(name)}],
                     **spec}}


# ---------------------------------------------------------------------------- what is in a cluster
def namespace_exists(api: client.ApiClient, name: str) -> bool:
    try:
        client.CoreV1Api(api).read_namespace(name)
        return True
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise


def namespace_or_none(api: client.ApiClient, name: str) -> client.V1Namespace | None:
    try:
        return client.CoreV1Api(api).read_namespace(name)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def children(api: client.ApiClient, namespace: str) -> set[tuple[str, str]]:
    """The §3 children present in `namespace` of that cluster, as (kind, name), TLS Secrets as
    ("Secret/tls", name)."""
    core, net, rbac = client.CoreV1Api(api), client.NetworkingV1Api(api), client.RbacAuthorizationV1Api(api)
    found: set[tuple[str, str]] = set()
    listings: list[tuple[str, Callable[[str], Any]]] = [
        ("ResourceQuota", core.list_namespaced_resource_quota), ("LimitRange", core.list_namespaced_limit_range),
        ("NetworkPolicy", net.list_namespaced_network_policy), ("RoleBinding", rbac.list_namespaced_role_binding),
        ("Ingress", net.list_namespaced_ingress), ("ConfigMap", core.list_namespaced_config_map),
    ]
    for kind, list_ in listings:
        found |= {(kind, str(item.metadata.name)) for item in list_(namespace).items}
    found |= {("Secret/tls", str(s.metadata.name)) for s in core.list_namespaced_secret(namespace).items
              if s.type == "kubernetes.io/tls"}
    return found


def fully_provisioned(api: client.ApiClient, namespace: str) -> bool:
    """Every §3 child is in `namespace` of that cluster, a TLS Secret included."""
    if not namespace_exists(api, namespace):
        return False
    present = children(api, namespace)
    return set(NAMED_CHILDREN) <= present and any(kind == "Secret/tls" for kind, _ in present)


# ---------------------------------------------------------------------------- the fleet
@dataclass
class Fleet:
    """One reseller selling in `central` (a node pool of the control cluster), `m1` and `m2` (member
    clusters 1 and 2); the people who act on it; where each tenant's namespace must be."""

    kubectl: Kubectl  # control cluster, admin
    control: client.ApiClient  # control cluster, admin (reading state)
    members: list[MemberCluster]
    operator: OperatorProcess | None = None
    licenses: int = 40
    reseller: str = ""
    regions: dict[str, str] = field(default_factory=dict)  # role -> Region name
    made: list[tuple[str, str]] = field(default_factory=list)  # cluster-scoped (kind, name) to delete
    tenant_region: dict[str, str] = field(default_factory=dict)  # tenant -> region role, as created

    # -- people --------------------------------------------------------------------------------------
    @property
    def platform_admin(self) -> Kubectl:
        return self.kubectl.as_user(*PLATFORM_ADMIN)

    @property
    def alice(self) -> Kubectl:
        """The reseller's admin in the control cluster, where she manages Plans and Tenants."""
        return self.kubectl.as_user(admin_of(self.reseller))

    def member_of(self, role: str) -> MemberCluster:
        return {M1: self.members[0], M2: self.members[1]}[role]

    def api_of(self, role: str) -> client.ApiClient:
        """The admin client of the cluster where a region's tenants live."""
        return self.control if role == CENTRAL else self.member_of(role).api

    def kubectl_of(self, role: str) -> Kubectl:
        return self.kubectl if role == CENTRAL else self.member_of(role).kubectl

    def clusters(self) -> dict[str, client.ApiClient]:
        """Every cluster by a name for messages: control, member-1, member-2."""
        return {"control": self.control, **{m.label: m.api for m in self.members}}

    def cluster_name(self, role: str) -> str:
        return "control" if role == CENTRAL else self.member_of(role).label

    # -- setting up ----------------------------------------------------------------------------------
    def open(self) -> None:
        self.reseller = unique_name("mc", max_length=20)
        self.regions = {CENTRAL: unique_name("central", max_length=30), M1: unique_name("mone", max_length=30),
                        M2: unique_name("mtwo", max_length=30)}
        self.apply_as_platform(
            region_doc(self.regions[CENTRAL]),
            region_doc(self.regions[M1], self.members[0].secret_ref()),
            region_doc(self.regions[M2], self.members[1].secret_ref()))
        self.apply_as_platform(reseller_doc(self.reseller, list(self.regions.values()), self.licenses))
        wait_for(lambda: self.alice.can_i("create", "tenants.tenantry.dev", "-n", self.control_namespace),
                 timeout=60, interval=POLL, message=f"{admin_of(self.reseller)} may create tenants")
        self.alice.apply(plan_doc(self.reseller))

    def apply_as_platform(self, *docs: dict[str, Any]) -> None:
        self.platform_admin.apply(*docs)
        self.made += [(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] in ("Region", "Reseller")]

    def cleanup(self) -> None:
        """The reseller first, and wait (bounded) until its tenants are gone, so that the operator
        removes their namespaces from the members while the members still run; then the regions."""
        for kind, name in self.made:
            if kind == "Reseller":
                self.kubectl.run("delete", "reseller", name, "--wait=false", "--ignore-not-found", check=False)
        deadline = time.monotonic() + 90
        resellers = [name for kind, name in self.made if kind == "Reseller"]
        while time.monotonic() < deadline and any(namespace_exists(self.control, f"reseller-{r}") for r in resellers):
            time.sleep(POLL)
        for kind, name in self.made:
            if kind == "Region":
                self.kubectl.run("delete", "region", name, "--wait=false", "--ignore-not-found", check=False)

    # -- tenants -------------------------------------------------------------------------------------
    @property
    def control_namespace(self) -> str:
        return f"reseller-{self.reseller}"

    def namespace_of(self, tenant: str) -> str:
        return f"{self.reseller}--{tenant}"

    def new_tenants(self, role: str, count: int = 1, prefix: str = "t", **spec: Any) -> list[str]:
        """The reseller's admin applies `count` Tenants in region `role` in one `kubectl apply` (a rollout)."""
        names = [unique_name(f"{prefix}-{role}", max_length=40) for _ in range(count)]
        self.alice.apply(*(tenant_doc(self.reseller, n, self.regions[role], **spec) for n in names))
        self.tenant_region.update(dict.fromkeys(names, role))
        return names

    def tenant(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(client.CustomObjectsApi(self.control).get_namespaced_custom_object(
                GROUP, VERSION, self.control_namespace, "tenants", name))
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def tenants(self) -> list[dict[str, Any]]:
        listed = client.CustomObjectsApi(self.control).list_namespaced_custom_object(
            GROUP, VERSION, self.control_namespace, "tenants")
        return list(listed["items"])

    def region(self, role: str) -> dict[str, Any]:
        return dict(client.CustomObjectsApi(self.control).get_cluster_custom_object(
            GROUP, VERSION, "regions", self.regions[role]))

    def reseller_obj(self) -> dict[str, Any]:
        return dict(client.CustomObjectsApi(self.control).get_cluster_custom_object(
            GROUP, VERSION, "resellers", self.reseller))

    def wait_tenant(self, name: str, type_: str = "Ready", status: str = "True", reason: str | None = None,
                    timeout: float = 60) -> dict[str, Any]:
        return wait_for(lambda: (t := self.tenant(name)) and condition_is(t, type_, status, reason) and t,
                        timeout, interval=POLL, message=f"Tenant {name}: {type_}={status} {reason or ''}".rstrip())

    def wait_tenants(self, names: list[str], type_: str = "Ready", status: str = "True", reason: str | None = None,
                     timeout: float = 60) -> list[dict[str, Any]]:
        def all_there() -> list[dict[str, Any]] | None:
            objs = [self.tenant(n) for n in names]
            return [o for o in objs if o] if all(condition_is(o, type_, status, reason) for o in objs) else None

        return wait_for(all_there, timeout, interval=POLL,
                        message=f"Tenants {names}: {type_}={status} {reason or ''}".rstrip())

    def wait_region(self, role: str, type_: str, status: str, reason: str | None = None,
                    timeout: float = 60) -> dict[str, Any]:
        return self.wait_region_named(self.regions[role], type_, status, reason, timeout)

    def wait_region_named(self, name: str, type_: str, status: str, reason: str | None = None,
                          timeout: float = 60) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            region = dict(client.CustomObjectsApi(self.control).get_cluster_custom_object(
                GROUP, VERSION, "regions", name))
            return region if condition_is(region, type_, status, reason) else None

        return wait_for(check, timeout, interval=POLL, message=f"Region {name}: {type_}={status} {reason or ''}")

    def admitted_count(self) -> int:
        """Tenants of the reseller whose status says Admitted=True (what status.licenses.used must count)."""
        return sum(1 for t in self.tenants() if condition_is(t, "Admitted", "True"))

    def wait_status_licences_used(self, used: int, timeout: float = 30) -> dict[str, Any]:
        """The Reseller's status.licenses.used reaches exactly `used`."""
        def check() -> dict[str, Any] | None:
            licences = dict((self.reseller_obj().get("status") or {}).get("licenses") or {})
            return licences if licences.get("used") == used else None

        return wait_for(check, timeout, interval=POLL, message=f"Reseller {self.reseller}: licenses.used == {used}")

    def tenant_namespaces_in(self, api: client.ApiClient) -> set[str]:
        """Namespaces of this reseller's tenants in one cluster, by the labels §3 puts on them."""
        listed = client.CoreV1Api(api).list_namespace(
            label_selector=f"tenantry.dev/reseller={self.reseller},tenantry.dev/tenant")
        return {str(ns.metadata.name) for ns in listed.items}
