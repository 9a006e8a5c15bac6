"""Test certificates made with `cryptography`: a root, an intermediate, leaves with any SAN, key type,
validity window, and the usual ways a supplied certificate goes wrong."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


def new_key(kind: str = "ec") -> Any:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: Any, password: bytes | None = None) -> bytes:
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Issued:
    cert: x509.Certificate
    key: Any

    @property
    def cert_pem(self) -> bytes:
        return cert_pem(self.cert)

    @property
    def key_pem(self) -> bytes:
        return key_pem(self.key)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(cn: str, *, issuer: Issued | None = None, dns_names: Sequence[str] = (), ca: bool = False,
              key_kind: str = "ec", not_before: datetime.datetime | None = None,
              not_after: datetime.datetime | None = None, issuer_name: str | None = None,
              name_constraints: x509.NameConstraints | None = None) -> Issued:
    key = new_key(key_kind)
    signer = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(issuer_name) if issuer_name else (issuer.cert.subject if issuer else _name(cn)))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - DAY)
        .not_valid_after(not_after or NOW + 90 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns_names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]),
                                        critical=False)
    if name_constraints is not None:
        builder = builder.add_extension(name_constraints, critical=True)
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return Issued(builder.sign(signer, algorithm), key)


@dataclass
class Pki:
    root: Issued
    intermediate: Issued

    def leaf(self, *dns_names: str, **kwargs: Any) -> Issued:
        return make_cert(dns_names[0] if dns_names else "leaf", issuer=self.intermediate, dns_names=dns_names,
                         **kwargs)

    def bundle(self, leaf: Issued, *, with_intermediate: bool = True, with_ca: bool = False) -> dict[str, bytes]:
        crt = leaf.cert_pem + (self.intermediate.cert_pem if with_intermediate else b"")
        data = {"tls.crt": crt, "tls.key": leaf.key_pem}
        if with_ca:
            data["ca.crt"] = self.root.cert_pem
        return data


def new_pki(name: str = "Test", *, permitted: Sequence[str] = (), excluded: Sequence[str] = (),
            intermediate_days: int = 1825) -> Pki:
    """A root and an intermediate; with `permitted`/`excluded`, the intermediate carries those DNS name
    constraints (RFC 5280), as a CA sold for a customer's own domains does."""
    root = make_cert(f"{name} Root CA", ca=True, not_after=NOW + 3650 * DAY)
    constraints = x509.NameConstraints(
        permitted_subtrees=[x509.DNSName(n) for n in permitted] or None,
        excluded_subtrees=[x509.DNSName(n) for n in excluded] or None) if permitted or excluded else None
    intermediate = make_cert(f"{name} Intermediate CA", issuer=root, ca=True,
                             not_after=NOW + intermediate_days * DAY, name_constraints=constraints)
    return Pki(root, intermediate)
