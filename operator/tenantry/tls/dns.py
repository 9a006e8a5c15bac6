"""Ownership proof for custom domains: a DNS TXT record `_tenantry-challenge.<host>` = the token.

The token is derived from the Tenant's uid and the host (no state to keep, stable across restarts,
and a new Tenant of the same name gets a new one), and is published in `status.domains[].token`.

`query_txt` is a small stdlib DNS client (RFC 1035: one question over UDP, TCP when the answer is
truncated) rather than a new runtime dependency: the operator needs exactly one record type from one
configured resolver (`dnsResolver: host:port`; the first nameserver of /etc/resolv.conf otherwise).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import socket
import struct
from pathlib import Path

CHALLENGE_PREFIX = "_tenantry-challenge."
TXT, CLASS_IN = 16, 1


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


def build_query(name: str, query_id: int) -> bytes:
    header = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)  # recursion desired, one question
    labels = b"".join(bytes([len(p)]) + p.encode("idna") for p in name.rstrip(".").split("."))
    return header + labels + b"\x00" + struct.pack("!HH", TXT, CLASS_IN)


def _skip_name(message: bytes, offset: int) -> int:
    while True:
        length = message[offset]
        if length & 0xC0 == 0xC0:
            return offset + 2
        if length == 0:
            return offset + 1
        offset += length + 1


def parse_txt_answer(message: bytes, query_id: int) -> tuple[list[str], bool]:
    """(TXT strings of the answer, truncated?). 'No such name' is an empty answer, not an error."""
    if len(message) < 12:
        raise DnsError("the DNS answer is too short")
    answer_id, flags, questions, answers, _, _ = struct.unpack("!HHHHHH", message[:12])
    if answer_id != query_id:
        raise DnsError("the DNS answer does not belong to the question")
    if flags & 0x0200:
        return [], True
    rcode = flags & 0x000F
    if rcode == 3:
        return [], False  # NXDOMAIN
    if rcode != 0:
        raise DnsError(f"the resolver answered with error code {rcode}")
    offset = 12
    for _ in range(questions):
        offset = _skip_name(message, offset) + 4
    texts = []
    for _ in range(answers):
        offset = _skip_name(message, offset)
        rtype, _, _, length = struct.unpack("!HHIH", message[offset:offset + 10])
        offset += 10
        data = message[offset:offset + length]
        offset += length
        if rtype != TXT:
            continue  # e.g. a CNAME on the way
        parts, i = [], 0
        while i < len(data):
            size = data[i]
            parts.append(data[i + 1:i + 1 + size])
            i += 1 + size
        texts.append(b"".join(parts).decode(errors="replace"))
    return texts, False


def _ask(name: str, address: str, timeout: float) -> list[str]:
    host, port = parse_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    query_id = secrets.randbelow(0x10000)
    query = build_query(name, query_id)
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.settimeout(timeout)
            udp.sendto(query, (host, port))
            while True:
                message, _ = udp.recvfrom(65535)
                if len(message) >= 2 and struct.unpack("!H", message[:2])[0] == query_id:
                    break
        texts, truncated = parse_txt_answer(message, query_id)
        if not truncated:
            return texts
        with socket.create_connection((host, port), timeout=timeout) as tcp:
            tcp.sendall(struct.pack("!H", len(query)) + query)
            size = struct.unpack("!H", _read(tcp, 2))[0]
            return parse_txt_answer(_read(tcp, size), query_id)[0]
    except (OSError, IndexError, struct.error) as error:
        raise DnsError(f"asking {address} for TXT {name} failed: {error.__class__.__name__}") from None


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


async def query_txt(name: str, resolver: str | None = None, timeout: float = 2.0) -> list[str]:
    """The TXT strings of `name` (empty when it does not exist), asked of `resolver` (host:port)."""
    return await asyncio.to_thread(_ask, name, resolver or system_resolver(), timeout)
