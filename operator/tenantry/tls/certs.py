"""Issuing and validating certificates. Pure: bytes and a clock in, certificates or a problem out.

`validate_bundle` checks a supplied certificate (tls.crt with leaf and intermediates, tls.key,
optional ca.crt) the way a browser would see it served for one host, and says exactly what is wrong
(`CertificateProblem.reason` is a CamelCase condition reason). `issue_ca` and `issue_leaf` make the
operator's own certificates; `reusable_leaf` says whether a leaf already in place can stay, which
is what keeps a second reconcile from writing.

Messages never contain key material or the text of a parsing exception (which may quote input).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TLS_CRT, TLS_KEY, CA_CRT = "tls.crt", "tls.key", "ca.crt"

# Condition reasons for a certificate that cannot be used.
SECRET_NOT_FOUND = "SecretNotFound"
MISSING_DATA = "MissingCertificateData"
INVALID_PEM = "InvalidPEM"
SWAPPED_FILES = "SwappedFiles"
ENCRYPTED_KEY = "EncryptedKey"
UNSUPPORTED_KEY = "UnsupportedKeyType"
KEY_MISMATCH = "KeyMismatch"
INCOMPLETE_CHAIN = "IncompleteChain"
BROKEN_CHAIN = "BrokenChain"
HOST_NOT_COVERED = "HostNotCovered"
NOT_YET_VALID = "NotYetValid"
EXPIRED = "Expired"
EXPIRES_SOON = "ExpiresSoon"
NOT_A_CA = "NotACertificateAuthority"

LEAF_VALIDITY = datetime.timedelta(days=90)
CA_VALIDITY = datetime.timedelta(days=3650)
# Backdating absorbs clock skew between the operator and the clients that check the certificate.
BACKDATE = datetime.timedelta(minutes=5)

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


class CertificateProblem(Exception):
    """Why a certificate cannot be served. `reason` is CamelCase; `message` says what to change."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass(frozen=True)
class CertInfo:
    """The public facts of a certificate, as status shows them."""

    not_before: datetime.datetime
    not_after: datetime.datetime
    issuer: str
    subject: str
    dns_names: tuple[str, ...]
    is_ca: bool = False

    def as_status(self) -> dict[str, object]:
        return {"notAfter": rfc3339(self.not_after), "issuer": self.issuer, "dnsNames": list(self.dns_names)}


@dataclass(frozen=True)
class Authority:
    """A CA that can sign leaves: its certificate, key, and the chain above it (PEM)."""

    cert_pem: bytes
    key_pem: bytes
    chain_pem: bytes = b""  # certificates above the CA, if it is an intermediate
    cert: x509.Certificate = field(init=False, repr=False, compare=False)
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cert", x509.load_pem_x509_certificate(self.cert_pem))
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            raise CertificateProblem(UNSUPPORTED_KEY, "The CA key is not an RSA, ECDSA or Ed25519 key.")
        object.__setattr__(self, "key", key)


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- reading ------------------------------------------------------------------------------------


def cert_info(cert: x509.Certificate) -> CertInfo:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    try:
        is_ca = bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        is_ca = False
    return CertInfo(not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                    issuer=cert.issuer.rfc4514_string(), subject=cert.subject.rfc4514_string(),
                    dns_names=names, is_ca=is_ca)


def _blocks(data: bytes) -> list[str]:
    return [m.group(1).decode() for m in _PEM_BLOCK.finditer(data)]


def load_certificates(data: bytes, what: str = TLS_CRT) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, in order; a problem naming the file when there is none."""
    blocks = _blocks(data)
    if not blocks:
        raise CertificateProblem(INVALID_PEM, f"{what} is not PEM: it has no '-----BEGIN CERTIFICATE-----' block. "
                                 "Supply the certificate in PEM form (convert DER with "
                                 "`openssl x509 -inform der -in cert.der -out cert.pem`).")
    if "CERTIFICATE" not in blocks:
        raise CertificateProblem(INVALID_PEM, f"{what} holds {', '.join(sorted(set(blocks)))} but no CERTIFICATE "
                                 "block; put the certificate (leaf first, then intermediates) in it.")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateProblem(INVALID_PEM, f"{what} has a CERTIFICATE block that cannot be parsed (truncated "
                                 "or corrupted PEM); export the certificate again.") from None


def load_private_key(data: bytes) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey:
    blocks = _blocks(data)
    if "ENCRYPTED PRIVATE KEY" in blocks or b"Proc-Type: 4,ENCRYPTED" in data:
        raise CertificateProblem(ENCRYPTED_KEY, "tls.key is encrypted with a passphrase; the ingress controller "
                                 "cannot use it. Supply the key unencrypted (`openssl pkey -in key.pem -out "
                                 "plain.pem`) in a Secret only its owner can read.")
    if not any(b.endswith("PRIVATE KEY") for b in blocks):
        raise CertificateProblem(INVALID_PEM, "tls.key is not a PEM private key: it has no private key "
                                 "block (-----BEGIN ...-----).")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise CertificateProblem(INVALID_PEM, "tls.key has a private key block that cannot be parsed (truncated "
                                 "or corrupted PEM); export the key again.") from None
    except Exception:  # unsupported algorithms raise UnsupportedAlgorithm
        raise CertificateProblem(UNSUPPORTED_KEY, "tls.key uses an unsupported algorithm; use an RSA (2048 bits "
                                 "or more), ECDSA (P-256/P-384) or Ed25519 key.") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise CertificateProblem(UNSUPPORTED_KEY, f"tls.key is a {type(key).__name__.replace('PrivateKey', '')} "
                                 "key; use an RSA, ECDSA or Ed25519 key.")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        raise CertificateProblem(UNSUPPORTED_KEY, f"tls.key is a {key.key_size}-bit RSA key; use 2048 bits or more.")
    return key


def _public_der(public_key: object) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def host_matches(pattern: str, host: str) -> bool:
    """RFC 6125: a wildcard stands for exactly one whole left-most label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


def _dns_subtree_contains(subtree: str, host: str) -> bool:
    """RFC 5280 4.2.1.10: a DNS subtree `example.com` holds the name and every name below it; the
    common `.example.com` form only the names below it; an empty one every name."""
    subtree, host = subtree.lower().rstrip("."), host.lower().rstrip(".")
    if not subtree:
        return True
    if subtree.startswith("."):
        return host.endswith(subtree)
    return host == subtree or host.endswith("." + subtree)


def name_constraints_refusal(authority: Authority, host: str) -> str | None:
    """Why a leaf for `host` signed by `authority` would be rejected by clients for the DNS name
    constraints of the CA or of a certificate above it, or None when the host is permitted.

    Only DNS subtrees count: a constraint that names no DNS subtree leaves DNS names free (RFC 5280)."""
    above = x509.load_pem_x509_certificates(authority.chain_pem) if authority.chain_pem else []
    for cert in (authority.cert, *above):
        try:
            constraints = cert.extensions.get_extension_for_class(x509.NameConstraints).value
        except x509.ExtensionNotFound:
            continue
        who = cert.subject.rfc4514_string()
        excluded = [n.value for n in constraints.excluded_subtrees or () if isinstance(n, x509.DNSName)]
        hit = next((n for n in excluded if _dns_subtree_contains(n, host)), None)
        if hit is not None:
            return f"the name constraints of {who} exclude {hit}"
        permitted = [n.value for n in constraints.permitted_subtrees or () if isinstance(n, x509.DNSName)]
        if permitted and not any(_dns_subtree_contains(n, host) for n in permitted):
            return f"the name constraints of {who} permit only {', '.join(permitted)}"
    return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject and _issued_by(cert, cert)


# -- validating a supplied certificate ----------------------------------------------------------


def validate_bundle(data: Mapping[str, bytes], host: str | None, now: datetime.datetime, *,
                    min_validity: datetime.timedelta = datetime.timedelta(0), secret: str = "the Secret",
                    want_ca: bool = False) -> CertInfo:
    """The facts of a usable certificate for `host`, or a CertificateProblem saying what to fix.

    `host` None skips the name check (a CA certificate signs for whatever its tenants are called).
    `want_ca` requires a CA certificate (basicConstraints CA:TRUE) that can sign leaves."""
    crt, key_data, ca = data.get(TLS_CRT), data.get(TLS_KEY), data.get(CA_CRT)
    if not crt or not key_data:
        missing = " and ".join(k for k, v in ((TLS_CRT, crt), (TLS_KEY, key_data)) if not v)
        raise CertificateProblem(MISSING_DATA, f"{secret} has no {missing}; a kubernetes.io/tls Secret needs "
                                 "tls.crt (leaf, then intermediates) and tls.key.")
    crt_blocks, key_blocks = _blocks(crt), _blocks(key_data)
    if (any(b.endswith("PRIVATE KEY") for b in crt_blocks) and "CERTIFICATE" not in crt_blocks
            and "CERTIFICATE" in key_blocks):
        raise CertificateProblem(SWAPPED_FILES, f"{secret} has the private key in tls.crt and the certificate in "
                                 "tls.key; swap the two files.")
    if any(b.endswith("PRIVATE KEY") for b in crt_blocks):
        raise CertificateProblem(INVALID_PEM, f"{secret} has a private key inside tls.crt; tls.crt must hold only "
                                 "certificates, the key belongs in tls.key.")
    chain = load_certificates(crt)
    key = load_private_key(key_data)
    leaf = chain[0]
    if _public_der(key.public_key()) != _public_der(leaf.public_key()):
        other = next((i for i, c in enumerate(chain[1:], 2)
                      if _public_der(c.public_key()) == _public_der(key.public_key())), None)
        hint = (f" (it matches certificate {other} in tls.crt: put the leaf first)" if other else
                " (the key belongs to another certificate)")
        raise CertificateProblem(KEY_MISMATCH, f"{secret}: tls.key does not match the first certificate in "
                                 f"tls.crt{hint}; supply the key and certificate that belong together.")
    roots = load_certificates(ca, CA_CRT) if ca else []
    _check_chain(chain, roots, secret)
    info = cert_info(leaf)
    if want_ca and not info.is_ca:
        raise CertificateProblem(NOT_A_CA, f"{secret} holds a leaf certificate, not a CA certificate.")
    if host is not None:
        _check_host(info, host, secret)
    _check_time(info, now, min_validity, secret)
    return info


def _check_chain(chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate], secret: str) -> None:
    """Each certificate must be signed by the next one it names as issuer, found in tls.crt or ca.crt.

    A leaf alone whose issuer is not in the bundle is an incomplete chain: servers must send the
    intermediates. A chain whose top is issued by a root not given is fine (public roots are in
    every client's trust store); with ca.crt given, the chain must end at it."""
    pool = list(chain[1:]) + list(roots)
    current = chain[0]
    seen = 0
    while not _self_signed(current) and seen <= len(pool):
        seen += 1
        named = [c for c in pool if c.subject == current.issuer]
        if not named:
            if current is chain[0] and not roots:
                raise CertificateProblem(INCOMPLETE_CHAIN, f"{secret}: the certificate was issued by "
                                         f"{current.issuer.rfc4514_string()}, but tls.crt holds no certificate of "
                                         "that issuer; append the intermediate certificate(s) after the leaf.")
            if roots:
                raise CertificateProblem(INCOMPLETE_CHAIN, f"{secret}: the chain stops at "
                                         f"{current.subject.rfc4514_string()}, issued by "
                                         f"{current.issuer.rfc4514_string()}, which is neither in tls.crt nor "
                                         "in ca.crt; add the missing intermediate.")
            return  # issued by a public root, which clients already trust
        issuer = next((c for c in named if _issued_by(current, c)), None)
        if issuer is None:
            raise CertificateProblem(BROKEN_CHAIN, f"{secret}: {current.subject.rfc4514_string()} names "
                                     f"{current.issuer.rfc4514_string()} as issuer, but the certificate of that "
                                     "name in the bundle did not sign it; supply the intermediate that belongs "
                                     "to this certificate.")
        current = issuer
        if current in roots:
            return


def _check_host(info: CertInfo, host: str, secret: str) -> None:
    if not info.dns_names:
        raise CertificateProblem(HOST_NOT_COVERED, f"{secret}: the certificate has no DNS names "
                                 "(subjectAltName); clients ignore the common name. Issue it with a SAN for "
                                 f"{host}.")
    if any(host_matches(name, host) for name in info.dns_names):
        return
    depth = [n for n in info.dns_names if n.startswith("*.") and host.endswith("." + n[2:])]
    if depth:
        raise CertificateProblem(HOST_NOT_COVERED, f"{secret}: {depth[0]} covers exactly one label below "
                                 f"{depth[0][2:]}, and {host} is deeper; a wildcard does not match several "
                                 f"labels. Add {host} (or *.{host.partition('.')[2]}) to the certificate.")
    raise CertificateProblem(HOST_NOT_COVERED, f"{secret}: the certificate is for {', '.join(info.dns_names)}, "
                             f"not {host}; supply a certificate whose subjectAltName covers {host}.")


def _check_time(info: CertInfo, now: datetime.datetime, min_validity: datetime.timedelta, secret: str) -> None:
    if info.not_before > now:
        raise CertificateProblem(NOT_YET_VALID, f"{secret}: the certificate is not valid before "
                                 f"{rfc3339(info.not_before)}; check the issuing clock or wait.")
    if info.not_after <= now:
        raise CertificateProblem(EXPIRED, f"{secret}: the certificate expired at {rfc3339(info.not_after)}; "
                                 "renew it.")
    if info.not_after - now < min_validity:
        raise CertificateProblem(EXPIRES_SOON, f"{secret}: the certificate expires at {rfc3339(info.not_after)}, "
                                 f"within {min_validity.days} day(s); renew it before it is used.")


# -- issuing ------------------------------------------------------------------------------------


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def issue_ca(common_name: str, now: datetime.datetime, validity: datetime.timedelta = CA_VALIDITY) -> Authority:
    """A new self-signed CA (ECDSA P-256) that may sign leaves only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenantry"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(_pem(cert), _key_pem(key))


def issue_leaf(authority: Authority, hosts: Sequence[str], now: datetime.datetime,
               validity: datetime.timedelta = LEAF_VALIDITY) -> dict[str, bytes]:
    """A serving certificate for `hosts` signed by `authority`, as kubernetes.io/tls Secret data:
    tls.crt = leaf + CA (+ the CA's own chain), tls.key, ca.crt = the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = authority.cert
    not_after = min(now + validity, ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64])]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                       critical=False)
        .sign(authority.key, None if isinstance(authority.key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    )
    return {TLS_CRT: _pem(cert) + authority.cert_pem + authority.chain_pem, TLS_KEY: _key_pem(key),
            CA_CRT: authority.cert_pem}


def reusable_leaf(data: Mapping[str, bytes] | None, hosts: Sequence[str], authority: Authority,
                  now: datetime.datetime, renew_before: datetime.timedelta) -> CertInfo | None:
    """The info of an operator-issued leaf that can stay as it is: same hosts, signed by the current
    CA, key matching, not within `renew_before` of expiry. None means: issue a new one."""
    if not data or TLS_CRT not in data or TLS_KEY not in data:
        return None
    try:
        chain = x509.load_pem_x509_certificates(data[TLS_CRT])
        key = serialization.load_pem_private_key(data[TLS_KEY], password=None)
    except (ValueError, TypeError):
        return None
    leaf = chain[0]
    if _public_der(key.public_key()) != _public_der(leaf.public_key()) or not _issued_by(leaf, authority.cert):
        return None
    info = cert_info(leaf)
    if sorted(info.dns_names) != sorted(hosts) or info.not_before > now or info.not_after <= now:
        return None
    # Near expiry a leaf is renewed, unless it already lives as long as its CA: a new one could not
    # outlive the CA either (issue_leaf caps it), and reissuing it on every reconcile would be churn.
    if info.not_after - now < renew_before and info.not_after < authority.cert.not_valid_after_utc:
        return None
    if data.get(CA_CRT) != authority.cert_pem:
        return None
    return info


def authority_from_secret(data: Mapping[str, bytes] | None, now: datetime.datetime,
                          renew_before: datetime.timedelta) -> Authority | None:
    """The operator's CA from its Secret, if present, intact, and not near expiry."""
    if not data or TLS_CRT not in data or TLS_KEY not in data:
        return None
    try:
        certs = x509.load_pem_x509_certificates(data[TLS_CRT])
        authority = Authority(_pem(certs[0]), data[TLS_KEY], b"".join(_pem(c) for c in certs[1:]))
    except (ValueError, TypeError, CertificateProblem):
        return None
    info = cert_info(authority.cert)
    if (not info.is_ca or _public_der(authority.key.public_key()) != _public_der(authority.cert.public_key())
            or info.not_after - now < renew_before):
        return None
    return authority


def authority_secret_data(authority: Authority) -> dict[str, bytes]:
    return {TLS_CRT: authority.cert_pem + authority.chain_pem, TLS_KEY: authority.key_pem,
            CA_CRT: authority.cert_pem}


def supplied_authority(data: Mapping[str, bytes]) -> Authority:
    """A reseller-supplied CA (already validated with want_ca=True) as an Authority."""
    certs = x509.load_pem_x509_certificates(data[TLS_CRT])
    return Authority(_pem(certs[0]), data[TLS_KEY], b"".join(_pem(c) for c in certs[1:]))
