"""Issuing and validating certificates (tenantry.tls.certs): one clear reason per way a supplied
certificate goes wrong, and reuse of a leaf that is still good (no needless re-issue)."""

from __future__ import annotations

import datetime

import pytest

from support.pki import DAY, NOW, make_cert, new_pki
from tenantry.tls import certs
from tenantry.tls.certs import CertificateProblem, validate_bundle

HOST = "www.bakery.example"


def problem(data: dict[str, bytes], host: str | None = HOST, **kwargs: object) -> CertificateProblem:
    with pytest.raises(CertificateProblem) as raised:
        validate_bundle(data, host, NOW, **kwargs)  # type: ignore[arg-type]
    assert "PRIVATE KEY" not in raised.value.message
    return raised.value


@pytest.mark.parametrize("key_kind", ["rsa", "ec", "ed25519"])
def test_a_good_bundle_of_each_key_type_is_accepted(key_kind: str) -> None:
    pki = new_pki()
    leaf = pki.leaf(HOST, key_kind=key_kind)
    info = validate_bundle(pki.bundle(leaf, with_ca=True), HOST, NOW, min_validity=7 * DAY)
    assert info.dns_names == (HOST,)
    assert "Intermediate" in info.issuer
    assert info.not_after == leaf.cert.not_valid_after_utc


def test_wildcards_cover_one_label_only() -> None:
    pki = new_pki()
    data = pki.bundle(pki.leaf("*.bakery.example"))
    assert validate_bundle(data, "shop.bakery.example", NOW).dns_names == ("*.bakery.example",)
    deep = problem(data, "a.shop.bakery.example")
    assert deep.reason == certs.HOST_NOT_COVERED and "one label" in deep.message
    apex = problem(data, "bakery.example")
    assert apex.reason == certs.HOST_NOT_COVERED


def test_wrong_san_is_named() -> None:
    pki = new_pki()
    found = problem(pki.bundle(pki.leaf("other.example")))
    assert found.reason == certs.HOST_NOT_COVERED and "other.example" in found.message and HOST in found.message


def test_mismatched_key() -> None:
    pki = new_pki()
    data = pki.bundle(pki.leaf(HOST))
    data["tls.key"] = pki.leaf(HOST).key_pem
    assert problem(data).reason == certs.KEY_MISMATCH


def test_leaf_not_first_is_a_key_mismatch_with_a_hint() -> None:
    pki = new_pki()
    leaf = pki.leaf(HOST)
    data = {"tls.crt": pki.intermediate.cert_pem + leaf.cert_pem, "tls.key": leaf.key_pem}
    found = problem(data)
    assert found.reason == certs.KEY_MISMATCH and "leaf first" in found.message


def test_missing_intermediate() -> None:
    pki = new_pki()
    found = problem(pki.bundle(pki.leaf(HOST), with_intermediate=False))
    assert found.reason == certs.INCOMPLETE_CHAIN and "intermediate" in found.message


def test_missing_intermediate_with_a_ca_bundle() -> None:
    pki = new_pki()
    found = problem(pki.bundle(pki.leaf(HOST), with_intermediate=False, with_ca=True))
    assert found.reason == certs.INCOMPLETE_CHAIN


def test_broken_chain_an_intermediate_of_the_same_name_that_did_not_sign() -> None:
    pki, impostor = new_pki(), new_pki()  # same subject names, other keys
    leaf = pki.leaf(HOST)
    data = {"tls.crt": leaf.cert_pem + impostor.intermediate.cert_pem, "tls.key": leaf.key_pem}
    assert problem(data).reason == certs.BROKEN_CHAIN


def test_chain_must_end_at_the_given_ca() -> None:
    pki, other = new_pki("A"), new_pki("B")
    data = pki.bundle(pki.leaf(HOST))
    data["ca.crt"] = other.root.cert_pem
    assert problem(data).reason == certs.INCOMPLETE_CHAIN


def test_expired_not_yet_valid_and_expiring_soon() -> None:
    pki = new_pki()
    expired = pki.leaf(HOST, not_before=NOW - 100 * DAY, not_after=NOW - DAY)
    assert problem(pki.bundle(expired)).reason == certs.EXPIRED
    future = pki.leaf(HOST, not_before=NOW + DAY, not_after=NOW + 100 * DAY)
    assert problem(pki.bundle(future)).reason == certs.NOT_YET_VALID
    soon = pki.leaf(HOST, not_after=NOW + 3 * DAY)
    found = problem(pki.bundle(soon), min_validity=7 * DAY)
    assert found.reason == certs.EXPIRES_SOON and "7 day" in found.message
    assert validate_bundle(pki.bundle(soon), HOST, NOW).not_after > NOW


def test_swapped_files() -> None:
    pki = new_pki()
    data = pki.bundle(pki.leaf(HOST))
    swapped = {"tls.crt": data["tls.key"], "tls.key": data["tls.crt"]}
    found = problem(swapped)
    assert found.reason == certs.SWAPPED_FILES and "swap" in found.message


def test_encrypted_key() -> None:
    pki = new_pki()
    leaf = pki.leaf(HOST)
    data = pki.bundle(leaf)
    from support.pki import key_pem

    data["tls.key"] = key_pem(leaf.key, password=b"secret")
    found = problem(data)
    assert found.reason == certs.ENCRYPTED_KEY and "passphrase" in found.message


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("tls.crt", b"not a certificate at all", certs.INVALID_PEM),
    ("tls.crt", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", certs.INVALID_PEM),
    ("tls.key", b"junk", certs.INVALID_PEM),
    ("tls.key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", certs.INVALID_PEM),
    ("tls.key", b"", certs.MISSING_DATA),
])
def test_pem_errors_say_which_file(field: str, value: bytes, reason: str) -> None:
    pki = new_pki()
    data = pki.bundle(pki.leaf(HOST))
    data[field] = value
    found = problem(data)
    assert found.reason == reason
    assert field in found.message


def test_self_signed_leaf_is_accepted_for_testing() -> None:
    leaf = make_cert(HOST, dns_names=[HOST])
    assert validate_bundle({"tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem}, HOST, NOW).dns_names == (HOST,)


def test_issued_leaf_validates_and_is_reused_until_renewal_is_due() -> None:
    authority = certs.issue_ca("acme", NOW)
    data = certs.issue_leaf(authority, ["bakery.acme.example"], NOW)
    info = validate_bundle(data, "bakery.acme.example", NOW, min_validity=7 * DAY)
    assert "acme" in info.issuer
    month = datetime.timedelta(days=30)
    assert certs.reusable_leaf(data, ["bakery.acme.example"], authority, NOW, month) == info
    # Renewal: 61 days later it is within the 30-day margin of its 90-day life.
    assert certs.reusable_leaf(data, ["bakery.acme.example"], authority, NOW + 61 * DAY, month) is None
    # Other hosts, another CA: issue again.
    assert certs.reusable_leaf(data, ["other.acme.example"], authority, NOW, month) is None
    assert certs.reusable_leaf(data, ["bakery.acme.example"], certs.issue_ca("acme", NOW), NOW, month) is None


def test_authority_round_trips_through_its_secret() -> None:
    authority = certs.issue_ca("acme", NOW)
    data = certs.authority_secret_data(authority)
    again = certs.authority_from_secret(data, NOW, datetime.timedelta(days=30))
    assert again is not None and again.cert_pem == authority.cert_pem
    assert certs.authority_from_secret({"tls.crt": b"junk", "tls.key": b"junk"}, NOW, DAY) is None


def test_a_supplied_intermediate_ca_signs_leaves_that_chain_to_its_root() -> None:
    pki = new_pki()
    data = {"tls.crt": pki.intermediate.cert_pem + pki.root.cert_pem, "tls.key": pki.intermediate.key_pem}
    validate_bundle(data, None, NOW, want_ca=True)
    leaf = certs.issue_leaf(certs.supplied_authority(data), ["t.acme.example"], NOW)
    leaf["ca.crt"] = pki.root.cert_pem
    validate_bundle(leaf, "t.acme.example", NOW)


def test_a_leaf_is_not_a_ca() -> None:
    pki = new_pki()
    assert problem(pki.bundle(pki.leaf(HOST)), None, want_ca=True).reason == certs.NOT_A_CA


def test_host_matching() -> None:
    assert certs.host_matches("*.a.example", "b.a.example")
    assert not certs.host_matches("*.a.example", "a.example")
    assert not certs.host_matches("*.a.example", "c.b.a.example")
    assert certs.host_matches("A.Example", "a.example.")
