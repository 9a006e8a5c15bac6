"""Which Tenants and Resellers name which supplied TLS Secret: the index the Operator holds.

Kept from the specs the watches of those kinds bring; read by supplied_secrets.keys_to_wake when a
Secret changes. A module of its own, below controller/context.py, so that the Operator can hold a
`SecretReferences` without importing the watch that uses it (which imports the Operator).
"""

from __future__ import annotations

from collections.abc import Iterable

from tenantry.controller.store import ObjectKey as Key
from tenantry.models import ResellerSpec, TenantSpec
from tenantry.naming import reseller_from_namespace, reseller_namespace, tenant_namespace

SecretKey = tuple[str, str]  # (namespace, name)


def tenant_secret_refs(namespace: str, name: str, spec: TenantSpec) -> set[SecretKey]:
    """The Secrets a Tenant (in control namespace `namespace`) supplies for its custom domains; they
    live in its own namespace. Named whether or not the domain is verified yet: a Secret created
    while the proof is pending must still be read once the domain is routed, and that reconcile
    comes from the proof, so an early wake-up costs one reconcile that changes nothing."""
    reseller = reseller_from_namespace(namespace)
    if not reseller:
        return set()
    where = tenant_namespace(reseller, name)
    return {(where, d.tls.secret_name) for d in spec.domains if d.tls.mode == "Secret" and d.tls.secret_name}


def reseller_secret_refs(name: str, spec: ResellerSpec) -> set[SecretKey]:
    """The Secrets a Reseller supplies for its regions, in its control namespace."""
    where = reseller_namespace(name)
    return {(where, r.tls.secret_name) for r in spec.regions if r.tls.mode == "Secret" and r.tls.secret_name}


class SecretReferences:
    """(namespace, Secret name) -> keys of the Tenants and Resellers whose spec names it, and back."""

    def __init__(self) -> None:
        self._owners: dict[SecretKey, set[Key]] = {}
        self._secrets: dict[Key, frozenset[SecretKey]] = {}

    def replace(self, owner: Key, secrets: Iterable[SecretKey]) -> None:
        """What `owner` names now (nothing, once it is deleted or its spec is invalid)."""
        new = frozenset(secrets)
        old = self._secrets.pop(owner, frozenset())
        if new:
            self._secrets[owner] = new
        for secret in old - new:
            owners = self._owners.get(secret)
            if owners is not None:
                owners.discard(owner)
                if not owners:
                    del self._owners[secret]
        for secret in new - old:
            self._owners.setdefault(secret, set()).add(owner)

    def owners(self, namespace: str, name: str) -> set[Key]:
        return set(self._owners.get((namespace, name), ()))

    def __len__(self) -> int:
        return len(self._owners)
