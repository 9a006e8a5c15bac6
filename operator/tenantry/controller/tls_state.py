"""What the TLS phase keeps between reconciles, owned by one Operator (`op.tls`).

Held by the Operator rather than at module level, so that two operators in one process (tests,
a standby beside a leader) share nothing: each has its own CA locks and parsed CAs, its own
cert-manager watch, and its own record of the expiry series it set.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field

from tenantry.controller import metrics
from tenantry.controller.informer import Informer
from tenantry.tls.certs import Authority


@dataclass
class TlsState:
    # One lock per reseller: every tenant of a reseller must sign with the same CA, made once.
    ca_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    # reseller -> (the CA Secret's data, parsed): a CA is parsed once per content of its Secret.
    authorities: dict[str, tuple[str, Authority]] = field(default_factory=dict)
    # cert-manager's Certificates, watched while its CRD is installed (controller/tls.cert_manager_available).
    cert_manager: Informer | None = None
    # owner (namespace, name; "" for a reseller) -> the expiry series (namespace, secret, host) it set.
    expiry_series: dict[tuple[str, str], set[tuple[str, str, str]]] = field(default_factory=dict)

    def ca_lock(self, reseller: str) -> asyncio.Lock:
        return self.ca_locks.setdefault(reseller, asyncio.Lock())

    def set_expiry(self, owner: tuple[str, str], served: Sequence[tuple[str, str, str, str]]) -> None:
        """tenantry_certificate_expiry_timestamp_seconds{namespace,name,host} of one owner's served
        certificates (namespace, secret, host, notAfter), dropping the series it set before and no longer has."""
        series = set()
        for namespace, secret, host, not_after in served:
            expiry = datetime.datetime.strptime(not_after, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
            metrics.CERTIFICATE_EXPIRY.labels(namespace, secret, host).set(expiry.timestamp())
            series.add((namespace, secret, host))
        for stale in self.expiry_series.get(owner, set()) - series:
            with contextlib.suppress(KeyError):
                metrics.CERTIFICATE_EXPIRY.remove(*stale)
        self.expiry_series[owner] = series

    def forget(self, owner: tuple[str, str]) -> None:
        """A deleted owner's expiry series go with it."""
        for labels in self.expiry_series.pop(owner, set()):
            with contextlib.suppress(KeyError):
                metrics.CERTIFICATE_EXPIRY.remove(*labels)

    async def stop(self) -> None:
        if self.cert_manager is not None:
            await self.cert_manager.stop()
            self.cert_manager = None
