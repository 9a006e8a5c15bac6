"""Desired TLS children: Secrets holding certificates, and cert-manager Certificates. Pure.

Certificate *content* is decided by tenantry/tls/decide.py (issue, reuse, or validate-and-copy); these
functions only shape it into manifests with deterministic names, so that the same certificate
always yields the same manifest and an unchanged one is never written again.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from tenantry.builders.common import owner_reference
from tenantry.naming import GROUP

CA_SECRET = "tenantry-ca"
PLATFORM_TLS_SECRET = "tenantry-platform-tls"
TLS_SECRET_PREFIX = "tenantry-tls-"
CERTIFICATE_PREFIX = "tenantry-"
ANNOTATION_HOST = f"{GROUP}/host"
# Where a copied certificate came from ("<namespace>/<name>"): how the key-custody rule finds copies.
ANNOTATION_SOURCE = f"{GROUP}/certificate-source"
CERT_MANAGER_API = "cert-manager.io/v1"


def _name_for(prefix: str, host: str) -> str:
    """`<prefix><host>` (hosts are valid DNS subdomains), hashed when that would be too long."""
    name = prefix + host
    if len(name) <= 253:
        return name
    return prefix + hashlib.sha256(host.encode()).hexdigest()[:40]


def tls_secret_name(host: str) -> str:
    return _name_for(TLS_SECRET_PREFIX, host)


def certificate_name(host: str) -> str:
    return _name_for(CERTIFICATE_PREFIX, host)


def encode_data(data: Mapping[str, bytes]) -> dict[str, str]:
    return {k: base64.b64encode(v).decode() for k, v in sorted(data.items())}


def decode_data(secret: Mapping[str, Any] | None) -> dict[str, bytes] | None:
    if secret is None:
        return None
    try:
        return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    except (ValueError, TypeError):
        return {}


def build_tls_secret(name: str, namespace: str, labels: Mapping[str, str], data: Mapping[str, bytes], *,
                     host: str | None = None, source: str | None = None,
                     owner: Mapping[str, Any] | None = None) -> dict[str, Any]:
    annotations = {}
    if host:
        annotations[ANNOTATION_HOST] = host
    if source:
        annotations[ANNOTATION_SOURCE] = source
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if annotations:
        metadata["annotations"] = annotations
    if owner is not None:
        metadata["ownerReferences"] = [owner_reference(owner)]
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": metadata,
            "data": encode_data(data)}


def build_certificate(host: str, namespace: str, labels: Mapping[str, str], issuer_kind: str,
                      issuer_name: str, dns_names: Sequence[str] | None = None) -> dict[str, Any]:
    """A cert-manager Certificate for one host, into the Secret the Ingress names for that host."""
    return {
        "apiVersion": CERT_MANAGER_API,
        "kind": "Certificate",
        "metadata": {"name": certificate_name(host), "namespace": namespace, "labels": dict(labels),
                     "annotations": {ANNOTATION_HOST: host}},
        "spec": {
            "secretName": tls_secret_name(host),
            "dnsNames": list(dns_names or [host]),
            "issuerRef": {"group": "cert-manager.io", "kind": issuer_kind, "name": issuer_name},
        },
    }
