"""The DNS TXT ownership proof (tenantry.tls.dns) against the loopback DNS server of the tests."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from support.dns import TEST_DNS
from tenantry.tls import dns


def test_token_is_stable_per_tenant_object_and_host() -> None:
    token = dns.challenge_token("uid-1", "www.a.example")
    assert token == dns.challenge_token("uid-1", "www.a.example")
    assert token != dns.challenge_token("uid-2", "www.a.example")  # a new Tenant of the same name
    assert token != dns.challenge_token("uid-1", "www.b.example")
    assert dns.challenge_name("www.a.example") == "_tenantry-challenge.www.a.example"


@pytest.mark.parametrize(("address", "expected"), [
    ("127.0.0.1:5353", ("127.0.0.1", 5353)),
    ("10.0.0.10", ("10.0.0.10", 53)),
    ("[::1]:53", ("::1", 53)),
    ("kube-dns.kube-system:53", ("kube-dns.kube-system", 53)),
])
def test_resolver_addresses(address: str, expected: tuple[str, int]) -> None:
    assert dns.parse_address(address) == expected


def test_txt_records_are_read_from_a_real_server() -> None:
    name = "_tenantry-challenge.www.unit-dns.example"
    long_value = "x" * 300  # split into several character-strings, joined again
    TEST_DNS.set_txt(name, "first", long_value)
    try:
        assert asyncio.run(dns.query_txt(name, TEST_DNS.address)) == ["first", long_value]
    finally:
        TEST_DNS.remove(name)
    assert asyncio.run(dns.query_txt(name, TEST_DNS.address)) == []  # NXDOMAIN is "no proof", not an error


def test_a_silent_resolver_is_an_error_that_says_so() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(dns.DnsError) as failed:
            asyncio.run(dns.query_txt("_tenantry-challenge.a.example", address, timeout=0.3))
    assert address in str(failed.value)


def test_a_resolver_named_by_host_name_is_asked() -> None:
    name = "_tenantry-challenge.www.by-name.example"
    TEST_DNS.set_txt(name, "proof")
    try:
        assert asyncio.run(dns.query_txt(name, f"localhost:{TEST_DNS.port}")) == ["proof"]
    finally:
        TEST_DNS.remove(name)


def test_a_server_error_is_an_error_not_an_empty_answer() -> None:
    """SERVFAIL (a broken zone, a resolver that cannot reach it) must not read as 'no proof yet'."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as failing:
        failing.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{failing.getsockname()[1]}"

        def answer_servfail() -> None:
            query, client = failing.recvfrom(4096)
            end = query.index(b"\x00", 12) + 5  # the question, echoed
            failing.sendto(query[:2] + b"\x81\x82\x00\x01\x00\x00\x00\x00\x00\x00" + query[12:end], client)

        server = threading.Thread(target=answer_servfail, daemon=True)
        server.start()
        with pytest.raises(dns.DnsError) as failed:
            asyncio.run(dns.query_txt("_tenantry-challenge.a.example", address, timeout=2))
        server.join(5)
    assert address in str(failed.value)
