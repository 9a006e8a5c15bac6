"""The DNS TXT ownership proof (tenantry.tls.dns) against the loopback DNS server of the tests."""

from __future__ import annotations

import asyncio
import socket

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


def test_answers_to_other_questions_and_server_errors() -> None:
    query = dns.build_query("a.example", 7)
    with pytest.raises(dns.DnsError):
        dns.parse_txt_answer(query[:2] + b"\x81\x82" + query[4:], 7)  # SERVFAIL
    with pytest.raises(dns.DnsError):
        dns.parse_txt_answer(query, 8)
    truncated = query[:2] + b"\x83\x80" + query[4:]
    assert dns.parse_txt_answer(truncated, 7) == ([], True)
