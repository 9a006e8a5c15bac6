"""Which Ingress of the cluster serves which host: the index behind cluster-wide `HostConflict`.

A tenant's custom domain must not be a host some Ingress already serves anywhere in the cluster,
Tenantry's or not (DESIGN.md §3, Capsule's cluster-wide collision scope): two Ingresses for one
host make the ingress controller pick one, and the tenant's TLS Secret could win a platform host.
Tenants' own hosts are decided by the AdmissionBook (custom domains, reseller domains); this index
holds every *other* Ingress: those the operator did not make for a tenant.

Kept small on purpose: host -> the (namespace, name) of the Ingresses serving it, and back; never
the objects. Pure data, no I/O: `controller/cluster_ingresses.py` keeps it in step with a watch.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

IngressKey = tuple[str, str]  # (namespace, name)


def ingress_hosts(ingress: Mapping[str, Any]) -> tuple[str, ...]:
    """The hosts an Ingress serves: those of its rules and of its TLS section, lowercased, sorted."""
    spec = ingress.get("spec") or {}
    hosts = {str(rule.get("host")).lower() for rule in spec.get("rules") or () if rule.get("host")}
    hosts |= {str(host).lower() for tls in spec.get("tls") or () for host in tls.get("hosts") or () if host}
    return tuple(sorted(hosts))


def wildcard_of(host: str) -> str | None:
    """The wildcard host that would also serve `host` (*.example.com for www.example.com)."""
    _, dot, parent = host.partition(".")
    return f"*.{parent}" if dot and "." in parent else None


class IngressHostIndex:
    """host -> Ingresses serving it. Entries are keyed by `(source, namespace, name)`, so that two
    watches (say, one of unlabelled Ingresses and one of labelled ones) never undo each other's
    entries when an Ingress moves from one to the other."""

    def __init__(self) -> None:
        self._hosts: dict[tuple[Hashable, IngressKey], tuple[str, ...]] = {}
        self._holders: dict[str, set[tuple[Hashable, IngressKey]]] = {}

    def put(self, source: Hashable, ingress: IngressKey, hosts: Iterable[str]) -> set[str]:
        """Record the hosts one Ingress serves now; returns the hosts that gained or lost it."""
        key = (source, ingress)
        new = tuple(sorted(set(hosts)))
        old = self._hosts.get(key, ())
        if new == old:
            return set()
        for host in old:
            holders = self._holders.get(host)
            if holders is not None:
                holders.discard(key)
                if not holders:
                    del self._holders[host]
        for host in new:
            self._holders.setdefault(host, set()).add(key)
        if new:
            self._hosts[key] = new
        else:
            self._hosts.pop(key, None)
        return set(old) ^ set(new)

    def remove(self, source: Hashable, ingress: IngressKey) -> set[str]:
        return self.put(source, ingress, ())

    def replace_source(self, source: Hashable, ingresses: Mapping[IngressKey, Iterable[str]]) -> set[str]:
        """Everything one source holds now (a fresh list): entries it no longer has are dropped."""
        changed: set[str] = set()
        for held_by, ingress in list(self._hosts):
            if held_by == source and ingress not in ingresses:
                changed |= self.remove(source, ingress)
        for ingress, hosts in ingresses.items():
            changed |= self.put(source, ingress, hosts)
        return changed

    def holder(self, host: str, *, except_namespace: str | None = None) -> tuple[IngressKey, str] | None:
        """((namespace, name), the host it serves) of an Ingress serving `host` (itself, or by a
        wildcard), outside `except_namespace`; the first by namespace and name, or None."""
        host = host.lower()
        for served in (host, wildcard_of(host)):
            if served is None:
                continue
            found = sorted(ingress for _, ingress in self._holders.get(served, ()) if ingress[0] != except_namespace)
            if found:
                return found[0], served
        return None

    def __len__(self) -> int:
        return len(self._hosts)
