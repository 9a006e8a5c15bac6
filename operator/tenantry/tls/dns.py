"""Ownership proof for custom domains: a DNS TXT record `_tenantry-challenge.<host>` = the token.

The token is derived from the Tenant's uid and the host (no state to keep, stable across restarts,
and a new Tenant of the same name gets a new one), and is published in `status.domains[].token`.

`query_txt` asks one configured resolver (`dnsResolver: host:port`; the first nameserver of
/etc/resolv.conf otherwise) with dnspython's asyncio resolver, which checks that an answer belongs
to the question asked, falls back to TCP for a truncated answer and joins a TXT record's
character-strings; a hand-written client did this before (docs/architecture.md, "Libraries and what
we kept").
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
from pathlib import Path

import dns.asyncresolver
import dns.exception
import dns.resolver

CHALLENGE_PREFIX = "_tenantry-challenge."


class DnsError(Exception):
    """The resolver could not be asked, or answered with an error other than 'no such name'."""


def challenge_name(host: str) -> str:
    return CHALLENGE_PREFIX + host


def challenge_token(tenant_uid: str, host: str) -> str:
    return "tenantry-" + hashlib.sha256(f"{tenant_uid}|{host}".encode()).hexdigest()[:32]


def system_resolver() -> str:
    try:
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                return f"[{parts[1]}]:53" if ":" in parts[1] else f"{parts[1]}:53"
    except OSError:
        pass
    return "127.0.0.1:53"


def parse_address(address: str) -> tuple[str, int]:
    if address.startswith("["):
        host, _, port = address[1:].partition("]:")
        return host, int(port or 53)
    host, _, port = address.rpartition(":")
    return (host, int(port)) if host else (address, 53)


async def _ip_of(host: str) -> str:
    """The resolver's address: dnspython takes IP addresses; `dnsResolver` may name a host (a Service)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        infos = await asyncio.get_running_loop().getaddrinfo(host, 53, type=socket.SOCK_DGRAM)
        return str(infos[0][4][0])


async def query_txt(name: str, resolver: str | None = None, timeout: float = 2.0) -> list[str]:
    """The TXT strings of `name` (empty when it does not exist), asked of `resolver` (host:port)."""
    address = resolver or system_resolver()
    host, port = parse_address(address)
    try:
        client = dns.asyncresolver.Resolver(configure=False)
        client.nameservers = [await _ip_of(host)]
        client.port = port
        client.lifetime = timeout
        answer = await client.resolve(name, "TXT", search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return []  # no such name: no proof, not an error
    except (dns.exception.DNSException, OSError, ValueError) as error:
        raise DnsError(f"asking {address} for TXT {name} failed: {error.__class__.__name__}") from None
    return [b"".join(record.strings).decode(errors="replace") for record in answer.rrset or ()]
