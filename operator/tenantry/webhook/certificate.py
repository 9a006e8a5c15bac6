"""The webhook's serving certificate and its CA. Pure: the Secret's data and a clock in, what to serve (and
what to write back, if anything) out.

The operator makes a CA of its own (ECDSA P-256, 10 years) and a serving certificate signed by it for the
names the API server calls (the Service's DNS names in the cluster, 127.0.0.1 on a developer's machine),
and keeps both in one Secret (`tenantry-webhook-tls` in the operator's namespace) so that every replica
serves the same certificate and registers the same CA bundle. The serving certificate is renewed 30 days
before it expires (it lives a year), or at once when the names change; the CA a year before it expires,
and the old CA stays in the bundle until then, so that a replica still serving a certificate of the old CA
is trusted throughout the rotation.

With cert-manager (setting `webhook.certificate.issuer: CertManager`, chart value
`webhook.certManager.enabled`) a Certificate resource fills the same Secret (tls.crt, tls.key, ca.crt) and
the operator only reads it.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tenantry.tls.certs import BACKDATE, CA_CRT, TLS_CRT, TLS_KEY, Authority, issue_ca

CA_KEY = "ca.key"
PREVIOUS_CA_CRT = "ca-previous.crt"
CA_COMMON_NAME = "Tenantry admission webhook CA"
CA_VALIDITY = datetime.timedelta(days=3650)
CA_RENEW_BEFORE = datetime.timedelta(days=365)
LEAF_VALIDITY = datetime.timedelta(days=365)
LEAF_RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class ServingCertificate:
    cert_pem: bytes  # the serving certificate and its CA
    key_pem: bytes
    ca_bundle: bytes  # the CAs the API server is told to trust (caBundle)
    not_after: datetime.datetime

    @property
    def renew_at(self) -> datetime.datetime:
        return self.not_after - LEAF_RENEW_BEFORE


def _split_names(names: Sequence[str]) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    dns, ips = [], []
    for name in names:
        try:
            ips.append(ipaddress.ip_address(name))
        except ValueError:
            dns.append(name)
    return dns, ips


def issue_serving(authority: Authority, names: Sequence[str], now: datetime.datetime) -> tuple[bytes, bytes]:
    """A serving certificate for DNS names and IP addresses (the API server checks the one it calls)."""
    dns, ips = _split_names(names)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns] + [x509.IPAddress(i) for i in ips]
    not_after = min(now + LEAF_VALIDITY, authority.cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
        .issuer_name(authority.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(authority.key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM) + authority.cert_pem, key_pem


def _authority(data: Mapping[str, bytes], now: datetime.datetime) -> Authority | None:
    """The stored CA when intact and not within a year of expiry."""
    try:
        authority = Authority(data[CA_CRT], data[CA_KEY])
    except (KeyError, ValueError, TypeError):
        return None
    public = authority.cert.public_key().public_bytes(serialization.Encoding.DER,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    own = authority.key.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    if public != own or authority.cert.not_valid_after_utc - now < CA_RENEW_BEFORE:
        return None
    return authority


def _leaf_usable(data: Mapping[str, bytes], authority: Authority, names: Sequence[str],
                 now: datetime.datetime) -> datetime.datetime | None:
    """The stored serving certificate's expiry, when it can stay: same names, this CA, its key, not due."""
    try:
        leaf = x509.load_pem_x509_certificates(data[TLS_CRT])[0]
        key = serialization.load_pem_private_key(data[TLS_KEY], password=None)
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (KeyError, ValueError, TypeError, x509.ExtensionNotFound):
        return None
    have = sorted([*(str(n) for n in sans.get_values_for_type(x509.DNSName)),
                   *(str(i) for i in sans.get_values_for_type(x509.IPAddress))])
    dns, ips = _split_names(names)
    want = sorted([*dns, *(str(i) for i in ips)])
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if (have != want or leaf.issuer != authority.cert.subject
            or key.public_key().public_bytes(*der) != leaf.public_key().public_bytes(*der)):
        return None
    try:
        authority.cert.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes,  # type: ignore[union-attr,call-arg]
                                           ec.ECDSA(leaf.signature_hash_algorithm))  # type: ignore[arg-type]
    except Exception:
        return None
    if leaf.not_valid_before_utc > now or leaf.not_valid_after_utc - now < LEAF_RENEW_BEFORE:
        return None
    return leaf.not_valid_after_utc


def _bundle(data: Mapping[str, bytes], now: datetime.datetime) -> bytes:
    """The current CA, and the previous one while it is still valid."""
    bundle = data[CA_CRT]
    previous = data.get(PREVIOUS_CA_CRT)
    if previous:
        try:
            old = x509.load_pem_x509_certificate(previous)
        except ValueError:
            return bundle
        if old.not_valid_after_utc > now:
            bundle += previous
    return bundle


def plan_certificate(data: Mapping[str, bytes] | None, names: Sequence[str],
                     now: datetime.datetime) -> tuple[dict[str, bytes] | None, ServingCertificate]:
    """(new Secret data, or None when the stored data stays; the certificate to serve) for these names."""
    data = dict(data or {})
    authority = _authority(data, now)
    new_data: dict[str, bytes] | None = None
    if authority is None:
        fresh = issue_ca(CA_COMMON_NAME, now, CA_VALIDITY)
        new_data = {CA_CRT: fresh.cert_pem, CA_KEY: fresh.key_pem}
        if data.get(CA_CRT):  # a rotation: the old CA is trusted until it expires
            new_data[PREVIOUS_CA_CRT] = data[CA_CRT]
        authority = fresh
        not_after = None
    else:
        not_after = _leaf_usable(data, authority, names, now)
    if not_after is None:
        cert_pem, key_pem = issue_serving(authority, names, now)
        new_data = {**{k: v for k, v in data.items() if k in (CA_CRT, CA_KEY, PREVIOUS_CA_CRT)}, **(new_data or {}),
                    TLS_CRT: cert_pem, TLS_KEY: key_pem}
        data = new_data
        not_after = x509.load_pem_x509_certificates(cert_pem)[0].not_valid_after_utc
    return new_data, ServingCertificate(data[TLS_CRT], data[TLS_KEY], _bundle(data, now), not_after)


def supplied_certificate(data: Mapping[str, bytes] | None) -> ServingCertificate | None:
    """A certificate cert-manager keeps in the Secret (tls.crt, tls.key, ca.crt), or None while incomplete."""
    if not data or not all(data.get(k) for k in (TLS_CRT, TLS_KEY, CA_CRT)):
        return None
    try:
        leaf = x509.load_pem_x509_certificates(data[TLS_CRT])[0]
    except ValueError:
        return None
    return ServingCertificate(data[TLS_CRT], data[TLS_KEY], data[CA_CRT], leaf.not_valid_after_utc)
