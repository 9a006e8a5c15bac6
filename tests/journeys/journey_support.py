"""What the journeys share: the people (platform admin, reseller admins, tenant owners, the
operator's and the meter's ServiceAccounts), the YAML they apply, the certificate files a registrar
sells, and waiting on what `kubectl` shows them.

Written from README.md and DESIGN.md: every object is applied as a person applies a file, every
check reads what `kubectl` prints for the person concerned.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.cluster import make_unique_name_factory, wait_for
from support.kubectl import Kubectl
from support.pki import DAY, NOW, Issued, Pki, new_pki

API = "tenantry.dev/v1alpha1"
PLATFORM_ADMIN = ("platform-admin@tenantry.example", "system:masters")
OPERATOR_SA = "system:serviceaccount:tenantry-system:tenantry"
METER_SA = "system:serviceaccount:tenantry-system:tenantry-meter"
ALLOTMENT = {"cpu": "16", "memory": "64Gi", "storage": "500Gi", "pods": "400"}
SMALL = {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "10"}
POLL = 0.5  # seconds between two kubectl calls while waiting: kubectl is a process, the machine is small

unique_name = make_unique_name_factory()


# ---------------------------------------------------------------------------- YAML people apply
def region_doc(name: str, *, verification: str = "None", pricing: Mapping[str, str] | None = None,
               capacity: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Region", "metadata": {"name": name}, "spec": {
        "displayName": name.upper(),
        "nodePool": {"nodeSelector": {"pool": name},
                     "tolerations": [{"key": "pool", "operator": "Equal", "value": name, "effect": "NoSchedule"}]},
        "ingress": {"className": "nginx", "controllerNamespace": "ingress-nginx"},
        "domainVerification": verification,
        "capacity": dict(capacity or {"cpu": "64", "memory": "256Gi", "storage": "2Ti", "pods": "2000"}),
        "pricing": dict(pricing or {"currency": "USD", "cpu": "0.020", "memory": "0.0025", "storage": "0.00015"}),
    }}


def reseller_region(region: str, domain: str, tls: Mapping[str, Any] | None = None,
                    allotment: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"name": region, "domain": domain, "tls": dict(tls or {"mode": "SelfSigned"}),
            "allotment": dict(allotment or ALLOTMENT)}


def reseller_doc(name: str, regions: list[dict[str, Any]], *, licenses: int = 10,
                 admins: list[dict[str, str]] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Reseller", "metadata": {"name": name}, "spec": {
        "companyName": f"{name} Hosting", "email": f"billing@{name}.example", "licenses": licenses,
        "admins": admins if admins is not None else [{"kind": "User", "name": admin_of(name)},
                                                     {"kind": "Group", "name": f"{name}-admins"}],
        "branding": {"displayName": f"{name} Cloud", "primaryColor": "#0a7cff", "supportEmail": f"help@{name}.example"},
        "regions": regions, **spec,
    }}


def plan_doc(reseller: str, name: str, *, quota: Mapping[str, str] | None = None, custom_domains: int = 0,
             pricing: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Plan", "metadata": {"name": name, "namespace": f"reseller-{reseller}"},
            "spec": {"displayName": name.title(), "quota": dict(quota or SMALL),
                     "defaults": {"cpu": "100m", "memory": "128Mi"}, "customDomains": custom_domains,
                     "pricing": dict(pricing or {"currency": "EUR", "monthly": "19.00", "cpu": "0.05",
                                                 "memory": "0.006", "storage": "0.0004"})}}


def tenant_doc(reseller: str, name: str, region: str, plan: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Tenant", "metadata": {"name": name, "namespace": f"reseller-{reseller}"},
            "spec": {"displayName": name.title(), "email": f"{name}@{reseller}.customers.example",
                     "region": region, "plan": plan, **spec}}


def admin_of(reseller: str) -> str:
    return f"alice@{reseller}.example"


def owner_of(tenant: str) -> str:
    return f"joe@{tenant}.example"


# ---------------------------------------------------------------------------- what kubectl shows
def conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def condition_is(obj: Mapping[str, Any], type_: str, status: str, reason: str | None = None) -> bool:
    found = conditions(obj).get(type_)
    return bool(found and found["status"] == status and (reason is None or found["reason"] == reason))


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def wait_object(kubectl: Kubectl, predicate: Callable[[dict[str, Any]], Any], *args: str, message: str,
                timeout: float = 45) -> dict[str, Any]:
    """`kubectl get ARGS -o json` until `predicate` holds; the object as the person sees it."""
    def check() -> dict[str, Any] | None:
        obj = kubectl.get_json(*args)
        return obj if predicate(obj) else None

    return wait_for(check, timeout, interval=POLL, message=f"{message} (as {kubectl.who})")


def wait_condition(kubectl: Kubectl, type_: str, status: str, reason: str | None, *args: str,
                   timeout: float = 45) -> dict[str, Any]:
    return wait_object(kubectl, lambda o: condition_is(o, type_, status, reason), *args, timeout=timeout,
                       message=f"`kubectl get {' '.join(args)}` to show {type_}={status} {reason or ''}")


def wait_event(kubectl: Kubectl, namespace: str | None, name: str, reason: str, type_: str | None = None,
               timeout: float = 30) -> dict[str, Any]:
    """The Event `kubectl get events` shows about `name` with this reason."""
    def found() -> dict[str, Any] | None:
        return next((e for e in kubectl.events(namespace, name)
                     if e.get("reason") == reason and (type_ is None or e.get("type") == type_)), None)

    return wait_for(found, timeout, interval=POLL, message=f"a {reason} Event about {name} (as {kubectl.who})")


def gone(kubectl: Kubectl, *args: str) -> bool:
    result = kubectl.run("get", *args, check=False)
    return result.returncode != 0 and "NotFound" in result.stderr


def secret_value(kubectl: Kubectl, namespace: str, name: str, key: str) -> bytes:
    import base64

    text = kubectl.jsonpath("{.data." + key.replace(".", "\\.") + "}", "secret", name, "-n", namespace)
    return base64.b64decode(text)


# ---------------------------------------------------------------------------- purchased certificates
@dataclass
class Purchase:
    """What a registrar sells for `*.domain`: the leaf, the intermediate and the root, and the key;
    written as files, the way they arrive."""

    domain: str
    pki: Pki
    leaf: Issued
    directory: Path

    @property
    def leaf_file(self) -> Path:
        return self.directory / "leaf.crt"

    @property
    def fullchain_file(self) -> Path:
        return self.directory / "fullchain.crt"

    @property
    def key_file(self) -> Path:
        return self.directory / "leaf.key"

    @property
    def root_file(self) -> Path:
        return self.directory / "root.crt"

    @property
    def not_after(self) -> datetime.datetime:
        return self.leaf.cert.not_valid_after_utc

    def write(self) -> Purchase:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.leaf_file.write_bytes(self.leaf.cert_pem)
        (self.directory / "intermediate.crt").write_bytes(self.pki.intermediate.cert_pem)
        self.root_file.write_bytes(self.pki.root.cert_pem)
        self.fullchain_file.write_bytes(self.leaf.cert_pem + self.pki.intermediate.cert_pem)
        self.key_file.write_bytes(self.leaf.key_pem)
        self.key_file.chmod(0o600)
        return self

    def renewed(self, days: int, directory: Path) -> Purchase:
        """Next year's certificate from the same registrar: a new leaf and key, a later notAfter."""
        leaf = self.pki.leaf(f"*.{self.domain}", not_after=NOW + days * DAY)
        return Purchase(self.domain, self.pki, leaf, directory).write()


def buy_wildcard(domain: str, directory: Path, days: int = 90) -> Purchase:
    pki = new_pki(f"Registrar {domain}")
    return Purchase(domain, pki, pki.leaf(f"*.{domain}", not_after=NOW + days * DAY), directory).write()


@dataclass
class PurchasedCA:
    """An intermediate CA a platform buys (or runs) to issue one leaf per tenant: its certificate
    chain (intermediate, then root) and key as files."""

    pki: Pki
    directory: Path

    @property
    def chain_file(self) -> Path:
        return self.directory / "ca-chain.crt"

    @property
    def key_file(self) -> Path:
        return self.directory / "ca.key"

    @property
    def not_after(self) -> datetime.datetime:
        return self.pki.intermediate.cert.not_valid_after_utc

    def write(self) -> PurchasedCA:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.chain_file.write_bytes(self.pki.intermediate.cert_pem + self.pki.root.cert_pem)
        self.key_file.write_bytes(self.pki.intermediate.key_pem)
        self.key_file.chmod(0o600)
        return self


def buy_ca(name: str, directory: Path) -> PurchasedCA:
    return PurchasedCA(new_pki(f"{name} Issuing"), directory).write()


def put_tls_secret(kubectl: Kubectl, namespace: str, name: str, cert: Path, key: Path,
                   ca: Path | None = None) -> None:
    """Creates or replaces a kubernetes.io/tls Secret the way the docs say (docs/domains-and-tls.md:
    `kubectl create secret tls ... --dry-run=client -o yaml | kubectl apply -f -`)."""
    if ca is None:
        made = kubectl.run("create", "secret", "tls", name, f"--cert={cert}", f"--key={key}", "-n", namespace,
                           "--dry-run=client", "-o", "yaml")
    else:
        made = kubectl.run("create", "secret", "generic", name, "--type=kubernetes.io/tls",
                           f"--from-file=tls.crt={cert}", f"--from-file=tls.key={key}", f"--from-file=ca.crt={ca}",
                           "-n", namespace, "--dry-run=client", "-o", "yaml")
    kubectl.apply(made.stdout)


# ---------------------------------------------------------------------------- one journey's objects
@dataclass
class Stage:
    """The objects one journey module made (to delete at its end), and its kubectl identities."""

    kubectl: Kubectl
    tmp: Path
    made: list[tuple[str, str]] = field(default_factory=list)  # (kind, name) of cluster-scoped objects

    @property
    def platform_admin(self) -> Kubectl:
        return self.kubectl.as_user(*PLATFORM_ADMIN)

    def reseller_admin(self, reseller: str) -> Kubectl:
        return self.kubectl.as_user(admin_of(reseller))

    def owner(self, tenant: str) -> Kubectl:
        return self.kubectl.as_user(owner_of(tenant))

    def apply_as_platform(self, *docs: dict[str, Any]) -> None:
        """The platform admin applies Regions, Resellers or other cluster objects."""
        self.platform_admin.apply(*docs)
        for doc in docs:
            kind = doc["kind"]
            if kind in ("Region", "Reseller", "Namespace"):
                self.made.append((kind, doc["metadata"]["name"]))

    def open_reseller(self, region: dict[str, Any], reseller: str, *, licenses: int = 10,
                      tls: Mapping[str, Any] | None = None, allotment: Mapping[str, str] | None = None) -> Kubectl:
        """The platform admin applies a Region (its document) and a Reseller selling in it on
        `<reseller>.example`; returns the reseller's admin once it may work in its control namespace."""
        self.apply_as_platform(region)
        self.apply_as_platform(reseller_doc(reseller, [reseller_region(
            region["metadata"]["name"], f"{reseller}.example", tls, allotment)], licenses=licenses))
        self.wait_control_namespace(reseller)
        return self.reseller_admin(reseller)

    def owner_at_work(self, tenant: str, namespace: str, resource: str = "deployments.apps",
                      timeout: float = 30) -> Kubectl:
        """The tenant's owner, once its RoleBinding lets it create `resource` in `namespace`."""
        owner = self.owner(tenant)
        wait_for(lambda: owner.can_i("create", resource, "-n", namespace), timeout=timeout,
                 message=f"the RoleBinding of {owner_of(tenant)} in {namespace}")
        return owner

    def wait_control_namespace(self, reseller: str) -> None:
        wait_for(lambda: self.kubectl.run("get", "namespace", f"reseller-{reseller}", check=False).returncode == 0,
                 timeout=45, interval=POLL, message=f"namespace reseller-{reseller}")
        # The reseller's admins may work there once their RoleBinding is in place.
        admin = self.reseller_admin(reseller)
        wait_for(lambda: admin.can_i("create", "tenants.tenantry.dev", "-n", f"reseller-{reseller}"),
                 timeout=45, interval=POLL, message=f"{admin_of(reseller)} to be allowed to create tenants")

    def cleanup(self) -> None:
        """Resellers first (their control namespaces, and so their tenants, go with them), then the
        rest; nothing waits for the namespaces to be finished."""
        order = {"Reseller": 0, "Region": 1, "Namespace": 2}
        for kind, name in sorted(self.made, key=lambda m: order[m[0]]):
            self.kubectl.run("delete", kind.lower(), name, "--wait=false", "--ignore-not-found", check=False)


def stage_fixture(kubectl: Kubectl, tmp: Path) -> Iterator[Stage]:
    stage = Stage(kubectl, tmp)
    yield stage
    stage.cleanup()


def metric_value(text: str, metric: str, /, **labels: str) -> float | None:
    """The value of one sample of a Prometheus text exposition, by name and exact labels."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric and sample.labels == labels:
                return float(sample.value)
    return None


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []

