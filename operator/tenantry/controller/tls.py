"""The TLS and custom-domain phase: which hosts a tenant is routed on, and the certificate of each.

Called by the Tenant reconcile (`tenant_tls`) and the Reseller reconcile (`reseller_tls`) before
they apply their children. It reads inputs (the Store; Secrets someone supplied, read with
`op.client.get` because they are not ours and the operator keeps none of their data; DNS), decides
with the pure functions of `tenantry.tls.certs`, and returns desired children plus status for the
caller to apply and write.
It writes directly only in two places, both explained where they happen: the reseller's CA the
first time a tenant needs it, and the eager deletion of a reseller key copy when a tenant gains
owners (key custody, see tenantry.tls).

Supplied Secrets are watched metadata-only (controller/supplied_secrets.py): creating, replacing or
deleting one reconciles, within a second, exactly the Tenants and Resellers whose spec names it (and
a reseller's tenants in the regions that use it). So nothing here polls them: an unusable supplied
Secret is looked at again when it changes, or at the periodic resync (a certificate that becomes
valid with time alone).

No regeneration without cause: a certificate in place is kept while it is intact, for the same
hosts, from the current CA and not within `certificateRenewBeforeDays` of expiry, so a second
reconcile produces the same manifests and writes nothing.

Per host, by `tls.mode`:
- SelfSigned: a leaf from the reseller's CA (Secret `tenantry-ca` in reseller-<r>), in the tenant
  namespace as `tenantry-tls-<host>`.
- Secret (tenant custom domain): the tenant's own Secret in its namespace, validated, then copied to
  `tenantry-tls-<host>`: the Ingress only ever names validated material, and the last good copy keeps
  serving while a broken replacement is reported.
- Secret (reseller region, the default host): a CA certificate issues a per-tenant leaf; a leaf
  (wildcard) certificate is copied only into the namespace of a tenant without owners, otherwise
  withheld (`ResellerKeyWithheld`).
- Issuer: a cert-manager Certificate `tenantry-<host>` into `tenantry-tls-<host>`; an Issuer of
  kind `Issuer` must live in the tenant namespace, a ClusterIssuer anywhere. Without cert-manager's
  CRDs, `CertificateReady=False`, reason `CertManagerMissing`.

The reseller's panel (`spec.platformDomain`, `reseller_tls`): a supplied leaf that covers it, else a
leaf from a CA the reseller supplied (`choose_panel_issuer`), else from its Tenantry CA.

Custom domains are routed once verified (DNS TXT `_tenantry-challenge.<host>` = the token in
`status.domains[].token`, asked of `dnsResolver`), or at once in a Region with
`domainVerification: None`. Verification is sticky while the domain stays in the spec (status keeps
it), so removing the TXT record later does not unroute a live site.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tenantry.admission import HOST_CONFLICT, TOO_MANY_DOMAINS
from tenantry.builders.tenant import HostRoute
from tenantry.builders.tls import (
    ANNOTATION_SOURCE,
    CA_SECRET,
    PLATFORM_TLS_SECRET,
    build_certificate,
    build_tls_secret,
    certificate_name,
    decode_data,
    tls_secret_name,
)
from tenantry.conditions import Condition
from tenantry.controller import metrics
from tenantry.controller.apply import apply_one, with_spec_hash
from tenantry.controller.context import Operator
from tenantry.controller.informer import Informer
from tenantry.controller.store import owner_of
from tenantry.kube import ApiError
from tenantry.models import RegionSpec, ResellerSpec, TenantSpec, TLSConfig
from tenantry.naming import RESELLER, TENANT, managed_labels, reseller_namespace
from tenantry.tls import certs
from tenantry.tls.certs import Authority, CertificateProblem, CertInfo
from tenantry.tls.dns import DnsError, challenge_name, challenge_token, query_txt

log = logging.getLogger("tenantry.tls")

CERTIFICATE_READY = "CertificateReady"
DOMAINS_ROUTED = "DomainsRouted"
VERIFICATION_PENDING = "VerificationPending"
RESELLER_KEY_WITHHELD = "ResellerKeyWithheld"
CERT_MANAGER_MISSING = "CertManagerMissing"
CERTIFICATE_NOT_READY = "CertificateNotReady"
CA_UNAVAILABLE = "CertificateAuthorityUnavailable"
INVALID_SECRET_NAME = "InvalidSecretName"
PLATFORM_DOMAIN_NOT_PERMITTED = "PlatformDomainNotPermitted"

_ca_locks: dict[str, asyncio.Lock] = {}
_authorities: dict[str, tuple[str, Authority]] = {}  # reseller -> (the CA Secret's data, parsed)
_cert_manager: dict[str, Any] = {"checked": 0.0, "present": False, "informer": None}
_expiry_series: dict[tuple[str, str], set[tuple[str, str, str]]] = {}


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _renew_before(op: Operator) -> datetime.timedelta:
    return datetime.timedelta(days=op.settings.certificate_renew_before_days)


def _min_validity(op: Operator) -> datetime.timedelta:
    return datetime.timedelta(days=op.settings.certificate_min_validity_days)


def _leaf_validity(op: Operator) -> datetime.timedelta:
    # Long enough that a fresh leaf is never already inside the renewal margin.
    return max(certs.LEAF_VALIDITY, 3 * _renew_before(op))


@dataclass
class HostCertificate:
    route: HostRoute
    children: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] | None = None
    problem: tuple[str, str] | None = None
    pending: bool = False  # look again after domainRecheckSeconds


@dataclass
class TenantTls:
    routes: list[HostRoute]
    children: list[dict[str, Any]]
    domains: list[dict[str, Any]]
    certificates: list[dict[str, Any]]
    condition: Condition
    recheck: bool = False
    domains_condition: Condition | None = None


# -- the reseller's CA ----------------------------------------------------------------------------


def ca_manifest(reseller_body: Mapping[str, Any], authority: Authority) -> dict[str, Any]:
    name = reseller_body["metadata"]["name"]
    return build_tls_secret(CA_SECRET, reseller_namespace(name), managed_labels(reseller=name),
                            certs.authority_secret_data(authority), owner=reseller_body)


async def reseller_authority(op: Operator, reseller: str) -> tuple[Authority, dict[str, Any]]:
    """The reseller's CA and its Secret manifest; made (and applied at once, so that every tenant
    signs with the same CA) the first time anyone needs it, or when it is near expiry or broken."""
    lock = _ca_locks.setdefault(reseller, asyncio.Lock())
    async with lock:
        body = op.store.get(RESELLER, reseller)
        if body is None:
            raise CertificateProblem(CA_UNAVAILABLE, f"Reseller {reseller} does not exist; its CA cannot sign.")
        namespace = reseller_namespace(reseller)
        live = op.store.get("Secret", CA_SECRET, namespace)
        version = repr(sorted(((live or {}).get("data") or {}).items()))  # content, not metadata
        cached = _authorities.get(reseller)
        if (live is not None and cached is not None and cached[0] == version
                and cached[1].cert.not_valid_after_utc - utcnow() >= _renew_before(op)):
            return cached[1], ca_manifest(body, cached[1])  # parsed once per content of the Secret
        authority = certs.authority_from_secret(decode_data(live), utcnow(), _renew_before(op))
        if authority is not None:
            _authorities[reseller] = (version, authority)
            return authority, ca_manifest(body, authority)
        if op.store.get("Namespace", namespace) is None:
            raise CertificateProblem(CA_UNAVAILABLE, f"The control namespace {namespace} does not exist yet; "
                                     "the certificate is issued once it does.")
        spec = ResellerSpec.model_validate(body.get("spec") or {})
        authority = certs.issue_ca(f"{spec.company_name[:40]} ({reseller}) Tenantry CA", utcnow())
        manifest = ca_manifest(body, authority)
        await apply_one(op.client, op.store, with_spec_hash(manifest))
        log.info("Reseller %s got a new certificate authority in Secret %s/%s.", reseller, namespace, CA_SECRET)
        return authority, manifest


def tenants_affected_by(op: Operator, obj: Mapping[str, Any]) -> list[tuple[str, str | None, str]]:
    """A changed CA means every leaf it signed must be issued again: all the reseller's tenants."""
    meta = obj.get("metadata") or {}
    if obj.get("kind") != "Secret" or meta.get("name") != CA_SECRET:
        return []
    owner = owner_of(obj)
    if owner is None or owner[0] != RESELLER:
        return []
    reseller = owner[2]
    return [(TENANT, reseller_namespace(reseller), c.name) for c in op.book.tenants_of(reseller)]


# -- cert-manager ---------------------------------------------------------------------------------


async def cert_manager_available(op: Operator, *, max_age: float | None = None) -> bool:
    """Whether cert-manager's Certificate kind is served, looked up at most every `max_age` seconds
    (default: domainRecheckSeconds), so that installing or removing cert-manager is noticed without a
    restart. While it is there, its Certificates are watched like any other child: pruned when no
    longer wanted, and their readiness wakes the tenant."""
    state = _cert_manager
    max_age = op.settings.domain_recheck_seconds if max_age is None else max_age
    if time.monotonic() - state["checked"] < max_age:
        return bool(state["present"])
    state["checked"] = time.monotonic()
    try:
        present = await op.client.kind_exists("Certificate")
    except (ApiError, OSError) as error:
        log.warning("Could not look up cert-manager's Certificate kind: %s", error)
        return bool(state["present"])
    if present and not state["present"]:
        informer = Informer(op.client, op.store, "Certificate",
                            lambda _t, obj, _old: op.enqueue([o] if (o := owner_of(obj)) else []))
        informer.start()
        try:
            await asyncio.wait_for(informer.synced.wait(), timeout=30)
        except TimeoutError:
            await informer.stop()
            return False
        state.update(present=True, informer=informer)
        op.features.add("Certificate")
        log.info("cert-manager's Certificate kind was found; TLS mode Issuer is available.")
    elif not present and state["present"]:
        await stop_watches()
        for certificate in list(op.store.list("Certificate")):
            meta = certificate["metadata"]
            op.store.delete("Certificate", meta["name"], meta.get("namespace"))
        state.update(present=False, informer=None)
        op.features.discard("Certificate")
        log.warning("cert-manager's Certificate kind is gone; hosts in TLS mode Issuer have no certificate.")
    return present


async def stop_watches() -> None:
    informer = _cert_manager.get("informer")
    if informer is not None:
        await informer.stop()


# -- a tenant's hosts -----------------------------------------------------------------------------


@dataclass
class _Context:
    op: Operator
    reseller: str
    tenant: str
    namespace: str
    labels: dict[str, str]
    has_owners: bool
    now: datetime.datetime


async def tenant_tls(op: Operator, body: Mapping[str, Any], spec: TenantSpec, reseller: str,
                     reseller_spec: ResellerSpec | None, region_spec: RegionSpec | None, custom_domains: int,
                     namespace: str, labels: Mapping[str, str]) -> TenantTls:
    meta = body["metadata"]
    name, uid = meta["name"], meta.get("uid", "")
    ctx = _Context(op, reseller, name, namespace, dict(labels), bool(spec.owners), utcnow())
    wanted: list[tuple[str, TLSConfig, bool]] = []  # (host, tls, is the default host)
    region_entry = reseller_spec.region(spec.region) if reseller_spec else None
    unrouted: list[tuple[str, str, str]] = []  # (host, reason, message)
    if region_entry is not None:
        default_host = f"{name}.{region_entry.domain}"
        taken = op.book.domain_taken(reseller, region_entry.domain)
        if taken is None:
            wanted.append((default_host, region_entry.tls, True))
        else:  # a domain another reseller holds first: routing it here would hijack that reseller's tenants
            unrouted.append((default_host, HOST_CONFLICT,
                             f"Not routed ({HOST_CONFLICT}): the reseller's domain {region_entry.domain} collides "
                             f"with {taken[1]} of reseller {taken[0]}."))

    old_domains = {d.get("host"): d for d in (body.get("status") or {}).get("domains") or []}
    verification = region_spec.domain_verification if region_spec else "DNS"
    claim = op.book.tenant((reseller, name))
    domains: list[dict[str, Any]] = []
    recheck = False
    for index, domain in enumerate(spec.domains):
        host = domain.host
        token = challenge_token(uid, host)
        entry: dict[str, Any] = {"host": host, "verified": False, "token": token}
        domains.append(entry)
        if index >= custom_domains:
            entry["message"] = (f"Not routed: the plan allows {custom_domains} custom domain(s); remove domains "
                                "or choose a larger plan.")
            unrouted.append((host, TOO_MANY_DOMAINS, entry["message"]))
            continue
        conflict = op.book.host_problem(replace(claim, domains=(host,))) if claim is not None else None
        if conflict:
            entry["message"] = f"Not routed ({HOST_CONFLICT}): {conflict}"
            unrouted.append((host, HOST_CONFLICT, entry["message"]))
            continue
        old = old_domains.get(host) or {}
        if verification == "None":
            entry.update(verified=True, message="Routed: the region trusts custom domains without a DNS proof.")
        elif old.get("verified") and old.get("token") == token:
            entry.update(verified=True, message=old.get("message") or "Ownership proven by DNS TXT record.")
        else:
            try:
                texts = await query_txt(challenge_name(host), op.settings.dns_resolver)
            except DnsError as error:
                texts = []
                entry["message"] = (f"The DNS TXT record {challenge_name(host)} could not be checked ({error}); "
                                    f"will try again. Its value must be {token}.")
            else:
                entry["message"] = (f"Waiting for ownership proof: create a DNS TXT record {challenge_name(host)} "
                                    f"with the value {token}; the domain is routed once it is found.")
            if token in texts:
                entry.update(verified=True, message="Ownership proven by DNS TXT record "
                             f"{challenge_name(host)}.")
                log.info("Tenant %s/%s proved ownership of %s by DNS.", meta.get("namespace"), name, host)
            else:
                recheck = True
                unrouted.append((host, VERIFICATION_PENDING, entry["message"]))
        if entry["verified"]:
            wanted.append((host, domain.tls, False))

    results: list[HostCertificate] = []
    for host, tls, is_default in wanted:
        try:
            result = await _host_certificate(ctx, host, tls, is_default, reseller_spec, region_entry)
        except CertificateProblem as problem:
            result = HostCertificate(HostRoute(host), problem=(problem.reason, problem.message))
        results.append(result)
    await _cleanup_issued_secrets(op, (TENANT, meta.get("namespace"), name),
                                  {c["metadata"]["name"] for r in results for c in r.children})

    problems = [(r.route.host, *r.problem) for r in results if r.problem]
    certificates = [r.status for r in results if r.status]
    _export_expiry(meta.get("namespace", ""), name, namespace, results)
    return TenantTls(
        routes=[r.route for r in results],
        children=[c for r in results for c in r.children],
        domains=domains,
        certificates=certificates,
        condition=_certificate_condition(problems, certificates),
        recheck=recheck or any(r.pending for r in results),
        # A default host that is not routed (its reseller's domain collides with one another reseller holds)
        # is reported with the custom domains.
        domains_condition=_domains_condition(unrouted, len(spec.domains) + sum(
            1 for host, _, _ in unrouted if host not in {d.host for d in spec.domains})),
    )


def _domains_condition(unrouted: Sequence[tuple[str, str, str]], count: int) -> Condition | None:
    """DomainsRouted: whether every custom domain (and the default host) is routed; None when the
    tenant has no custom domains and its default host is routed."""
    if not count:
        return None
    if not unrouted:
        return Condition(DOMAINS_ROUTED, True, DOMAINS_ROUTED, f"All {count} custom domain(s) are routed.")
    return Condition(DOMAINS_ROUTED, False, unrouted[0][1], " ".join(f"{h}: {m}" for h, _, m in unrouted))


def _certificate_condition(problems: Sequence[tuple[str, str, str]],
                           certificates: Sequence[Mapping[str, Any]]) -> Condition:
    if problems:
        message = " ".join(f"{host}: {message}" for host, _, message in problems)
        return Condition(CERTIFICATE_READY, False, problems[0][1], message)
    if not certificates:
        return Condition(CERTIFICATE_READY, True, "NoHosts", "The tenant has no routed hosts to certify.")
    first = min(certificates, key=lambda c: c.get("notAfter") or "9999")
    expiry = f"; the first to expire is {first['host']} at {first['notAfter']}" if first.get("notAfter") else ""
    return Condition(CERTIFICATE_READY, True, "CertificatesReady",
                     f"Every routed host ({len(certificates)}) has a valid certificate{expiry}.")


def _status(host: str, info: CertInfo) -> dict[str, Any]:
    return {"host": host, **info.as_status()}


async def _host_certificate(ctx: _Context, host: str, tls: TLSConfig, is_default: bool,
                            reseller_spec: ResellerSpec | None, region_entry: Any) -> HostCertificate:
    if tls.mode == "Issuer":
        return await _issuer_certificate(ctx, host, tls)
    if tls.mode == "Secret" and tls.secret_name:
        if is_default:
            return await _reseller_secret_certificate(ctx, host, tls.secret_name)
        return await _tenant_secret_certificate(ctx, host, tls.secret_name)
    authority, _ = await reseller_authority(ctx.op, ctx.reseller)
    return _issued_from(ctx, host, authority)


def _issued_from(ctx: _Context, host: str, authority: Authority, source: str | None = None) -> HostCertificate:
    """A leaf for `host` signed by `authority`, kept while it is good, issued anew otherwise."""
    name = tls_secret_name(host)
    live = decode_data(ctx.op.store.get("Secret", name, ctx.namespace))
    info = certs.reusable_leaf(live, [host], authority, ctx.now, _renew_before(ctx.op))
    data = live
    if info is None or data is None:
        data = certs.issue_leaf(authority, [host], ctx.now, _leaf_validity(ctx.op))
        info = certs.validate_bundle(data, host, ctx.now)
        log.info("Certificate for %s was issued into %s/%s, valid until %s.", host, ctx.namespace, name,
                 certs.rfc3339(info.not_after))
    secret = build_tls_secret(name, ctx.namespace, ctx.labels, data, host=host, source=source)
    return HostCertificate(HostRoute(host, name), [secret], _status(host, info))


async def _read_secret(ctx: _Context, name: str, namespace: str) -> dict[str, bytes]:
    secret = await ctx.op.client.get("Secret", name, namespace)
    if secret is None:
        raise CertificateProblem(certs.SECRET_NOT_FOUND, f"Secret {namespace}/{name} does not exist; create it "
                                 "(kubectl create secret tls NAME --cert=tls.crt --key=tls.key) or fix tls.secretName.")
    return decode_data(secret) or {}


async def _tenant_secret_certificate(ctx: _Context, host: str, secret_name: str) -> HostCertificate:
    """The tenant's own certificate: validated, then copied to the name the Ingress uses."""
    copy_name = tls_secret_name(host)
    if secret_name.startswith("tenantry-"):
        raise CertificateProblem(INVALID_SECRET_NAME, f"Secret names starting with tenantry- are the operator's; "
                                 f"rename {secret_name} and set tls.secretName to the new name.")
    where = f"Secret {ctx.namespace}/{secret_name}"
    source = f"{ctx.namespace}/{secret_name}"
    try:
        data = await _read_secret(ctx, secret_name, ctx.namespace)
        info = certs.validate_bundle(data, host, ctx.now, min_validity=_min_validity(ctx.op), secret=where)
    except CertificateProblem as problem:
        return _keep_last_good(ctx, host, copy_name, problem)
    secret = build_tls_secret(copy_name, ctx.namespace, ctx.labels, data, host=host, source=source)
    if not _same_source(ctx, copy_name, source):
        log.info("Certificate for %s from %s was validated and is served from %s/%s.", host, where, ctx.namespace,
                 copy_name)
    return HostCertificate(HostRoute(host, copy_name), [secret], _status(host, info))


def _same_source(ctx: _Context, copy_name: str, source: str) -> bool:
    live = ctx.op.store.get("Secret", copy_name, ctx.namespace)
    return ((live or {}).get("metadata", {}).get("annotations") or {}).get(ANNOTATION_SOURCE) == source


def _keep_last_good(ctx: _Context, host: str, copy_name: str, problem: CertificateProblem) -> HostCertificate:
    """A supplied certificate that became unusable: keep serving the last validated copy while it
    is still valid, and say what is wrong."""
    live = ctx.op.store.get("Secret", copy_name, ctx.namespace)
    data = decode_data(live)
    # No recheck (`pending`): the supplied Secret's next change wakes the tenant (supplied_secrets.py).
    result = HostCertificate(HostRoute(host), problem=(problem.reason, problem.message))
    if data and live is not None:
        try:
            info = certs.validate_bundle(data, host, ctx.now)
        except CertificateProblem:
            return result
        source = ((live.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_SOURCE)
        if source and not source.startswith(f"{ctx.namespace}/") and ctx.has_owners:
            return result  # a reseller key must not stay where owners can read it
        secret = build_tls_secret(copy_name, ctx.namespace, ctx.labels, data, host=host, source=source)
        result.route, result.children, result.status = HostRoute(host, copy_name), [secret], _status(host, info)
        result.problem = (problem.reason, problem.message + " The last valid certificate is served until then.")
    return result


async def _reseller_secret_certificate(ctx: _Context, host: str, secret_name: str) -> HostCertificate:
    """The default host in a reseller region of mode Secret (key custody, see tenantry.tls)."""
    namespace = reseller_namespace(ctx.reseller)
    where = f"The reseller's Secret {namespace}/{secret_name}"
    copy_name = tls_secret_name(host)
    try:
        data = await _read_secret(ctx, secret_name, namespace)
        if _is_ca_bundle(data):
            certs.validate_bundle(data, None, ctx.now, min_validity=_min_validity(ctx.op), secret=where,
                                  want_ca=True)
            return _issued_from(ctx, host, certs.supplied_authority(data))
        info = certs.validate_bundle(data, host, ctx.now, min_validity=_min_validity(ctx.op), secret=where)
    except CertificateProblem as problem:
        if ctx.has_owners:
            await _withdraw_reseller_copy(ctx, copy_name)
            return HostCertificate(HostRoute(host), problem=(problem.reason, problem.message))
        return _keep_last_good(ctx, host, copy_name, problem)
    if ctx.has_owners:
        await _withdraw_reseller_copy(ctx, copy_name)
        return HostCertificate(HostRoute(host), problem=(RESELLER_KEY_WITHHELD, (
            f"{host} is served without a TLS Secret: {where} holds a certificate whose private key would be "
            f"readable by the tenant's owners in {ctx.namespace}, and a reseller's key is never copied there. "
            "Use tls.mode Issuer for the region (cert-manager issues a certificate per tenant), put a CA "
            "certificate in the Secret (Tenantry then issues one per tenant), or use SelfSigned.")))
    secret = build_tls_secret(copy_name, ctx.namespace, ctx.labels, data, host=host,
                              source=f"{namespace}/{secret_name}")
    return HostCertificate(HostRoute(host, copy_name), [secret], _status(host, info))


def _is_ca_bundle(data: Mapping[str, bytes]) -> bool:
    try:
        first = certs.load_certificates(data.get(certs.TLS_CRT) or b"")[0]
    except CertificateProblem:
        return False
    return certs.cert_info(first).is_ca


async def _withdraw_reseller_copy(ctx: _Context, copy_name: str) -> None:
    """Delete a copy of a reseller's key from a namespace whose owners could read it, now: before
    the owners' RoleBinding is applied by the same reconcile, not after (when pruning would)."""
    live = ctx.op.store.get("Secret", copy_name, ctx.namespace)
    source = ((live or {}).get("metadata", {}).get("annotations") or {}).get(ANNOTATION_SOURCE, "")
    if live is not None and source.startswith(reseller_namespace(ctx.reseller) + "/"):
        await ctx.op.client.delete("Secret", copy_name, ctx.namespace)
        ctx.op.store.delete("Secret", copy_name, ctx.namespace)
        log.info("The copy of the reseller's certificate in %s/%s was deleted: the tenant has owners now.",
                 ctx.namespace, copy_name)


async def _issuer_certificate(ctx: _Context, host: str, tls: TLSConfig) -> HostCertificate:
    if not await cert_manager_available(ctx.op):
        return HostCertificate(HostRoute(host), problem=(CERT_MANAGER_MISSING, (
            "TLS mode Issuer needs cert-manager, and its CRDs (certificates.cert-manager.io) are not installed; "
            "install cert-manager, or use mode SelfSigned or Secret.")), pending=True)
    assert tls.issuer_ref is not None
    ref = f"{tls.issuer_ref.kind}/{tls.issuer_ref.name}"
    manifest = build_certificate(host, ctx.namespace, ctx.labels, tls.issuer_ref.kind, tls.issuer_ref.name)
    live = ctx.op.store.get("Certificate", certificate_name(host), ctx.namespace) or {}
    status = live.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
        detail = (ready or {}).get("message") or "cert-manager has not issued it yet"
        return HostCertificate(HostRoute(host), [manifest], problem=(CERTIFICATE_NOT_READY, (
            f"cert-manager Certificate {ctx.namespace}/{certificate_name(host)} from {ref} is not ready: {detail}.")),
            pending=True)
    entry = {"host": host, "issuer": ref, "dnsNames": [host]}
    if status.get("notAfter"):
        entry["notAfter"] = status["notAfter"]
    return HostCertificate(HostRoute(host, tls_secret_name(host)), [manifest], entry)


async def _cleanup_issued_secrets(op: Operator, owner: tuple[str, str | None, str], wanted: set[str]) -> None:
    """cert-manager leaves a Certificate's Secret behind; when a host goes, its key goes too."""
    for kind, namespace, name in op.store.children_of(owner):
        if kind != "Certificate" or name in wanted:
            continue
        certificate = op.store.get(kind, name, namespace) or {}
        secret = (certificate.get("spec") or {}).get("secretName")
        if secret and secret.startswith("tenantry-tls-"):
            await op.client.delete("Secret", secret, namespace)


def _export_expiry(tenant_namespace: str, tenant: str, namespace: str, results: Sequence[HostCertificate]) -> None:
    """tenantry_certificate_expiry_timestamp_seconds{namespace,name,host} for the hosts served now."""
    _set_expiry((tenant_namespace, tenant), [
        (namespace, r.route.tls_secret, r.route.host, r.status["notAfter"]) for r in results
        if r.status and r.status.get("notAfter") and r.route.tls_secret])


def _set_expiry(key: tuple[str, str], served: Sequence[tuple[str, str, str, str]]) -> None:
    """Set the expiry series of one owner (namespace, secret, host, notAfter) and drop its stale ones."""
    series = set()
    for namespace, secret, host, not_after in served:
        expiry = datetime.datetime.strptime(not_after, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
        metrics.CERTIFICATE_EXPIRY.labels(namespace, secret, host).set(expiry.timestamp())
        series.add((namespace, secret, host))
    for stale in _expiry_series.get(key, set()) - series:
        with contextlib.suppress(KeyError):
            metrics.CERTIFICATE_EXPIRY.remove(*stale)
    _expiry_series[key] = series


def forget_tenant(tenant_namespace: str, tenant: str) -> None:
    for labels in _expiry_series.pop((tenant_namespace, tenant), set()):
        with contextlib.suppress(KeyError):
            metrics.CERTIFICATE_EXPIRY.remove(*labels)


# -- the reseller's own certificates --------------------------------------------------------------


@dataclass
class ResellerTls:
    children: list[dict[str, Any]]
    regions: dict[str, dict[str, Any]]  # region -> status.regions[].certificate
    platform: dict[str, Any] | None  # status.platformCertificate
    condition: Condition


@dataclass(frozen=True)
class SuppliedCA:
    """A CA the reseller bought, put in a region's Secret (mode Secret), already validated."""

    region: str
    domain: str  # the region's domain
    secret: str  # namespace/name, for messages
    authority: Authority


@dataclass(frozen=True)
class PanelIssuer:
    """Who signs the platform domain's leaf: `ca`, or the reseller's Tenantry CA when it is None.
    `refusals` says why each supplied CA could not (its name constraints), for the condition."""

    ca: SuppliedCA | None
    refusals: tuple[str, ...] = ()


def choose_panel_issuer(host: str, supplied: Sequence[SuppliedCA]) -> PanelIssuer:
    """The CA that issues the leaf of the reseller's panel host, when no supplied leaf covers it.

    A CA the reseller bought beats Tenantry's self-signed one (which browsers warn about): the one
    of the region whose domain is the host's nearest parent or ancestor first, then the regions in
    spec order. A CA whose name constraints do not permit the host is passed over, since clients
    would reject what it signed; when none can, Tenantry's CA issues and `refusals` says why."""
    wanted = host.lower().rstrip(".")

    def nearness(ca: SuppliedCA) -> int:
        domain = ca.domain.lower().rstrip(".")
        return len(domain) if wanted == domain or wanted.endswith("." + domain) else -1

    refusals = []
    for ca in sorted(supplied, key=nearness, reverse=True):  # stable: spec order among equals
        refusal = certs.name_constraints_refusal(ca.authority, host)
        if refusal is None:
            return PanelIssuer(ca)
        refusals.append(f"the CA in Secret {ca.secret} (region {ca.region}) cannot issue for it: {refusal}")
    return PanelIssuer(None, tuple(refusals))


async def reseller_tls(op: Operator, body: Mapping[str, Any], spec: ResellerSpec) -> ResellerTls:
    """The reseller's CA, its platformDomain certificate, and what each region's TLS source is."""
    name = body["metadata"]["name"]
    namespace = reseller_namespace(name)
    now = utcnow()
    children: list[dict[str, Any]] = []
    problems: list[tuple[str, str, str]] = []
    try:
        authority, manifest = await reseller_authority(op, name)
        children.append(manifest)
    except CertificateProblem as problem:
        return ResellerTls([], {}, None, Condition(CERTIFICATE_READY, False, problem.reason, problem.message))
    ca_info = certs.cert_info(authority.cert)

    regions: dict[str, dict[str, Any]] = {}
    supplied: list[tuple[dict[str, bytes], CertInfo, str]] = []
    supplied_cas: list[SuppliedCA] = []
    served: list[tuple[str, str, str, str]] = []  # expiry series: (namespace, secret, host, notAfter)
    for region in spec.regions:
        tls = region.tls
        if tls.mode == "Issuer" and tls.issuer_ref is not None:
            regions[region.name] = {"issuer": f"{tls.issuer_ref.kind}/{tls.issuer_ref.name}"}
        elif tls.mode == "Secret" and tls.secret_name:
            where = f"Secret {namespace}/{tls.secret_name}"
            secret = await op.client.get("Secret", tls.secret_name, namespace)
            try:
                if secret is None:
                    raise CertificateProblem(certs.SECRET_NOT_FOUND, f"{where} does not exist; create it or fix "
                                             f"spec.regions[{region.name}].tls.secretName.")
                data = decode_data(secret) or {}
                is_ca = _is_ca_bundle(data)
                info = certs.validate_bundle(data, None if is_ca else f"*.{region.domain}", now,
                                             min_validity=_min_validity(op), secret=where, want_ca=is_ca)
            except CertificateProblem as problem:
                problems.append((region.name, problem.reason, problem.message))
                continue
            regions[region.name] = info.as_status()
            served.append((namespace, tls.secret_name, region.domain if is_ca else f"*.{region.domain}",
                           certs.rfc3339(info.not_after)))
            if is_ca:
                supplied_cas.append(SuppliedCA(region.name, region.domain, f"{namespace}/{tls.secret_name}",
                                               certs.supplied_authority(data)))
            else:
                supplied.append((data, info, f"{namespace}/{tls.secret_name}"))
        else:
            regions[region.name] = {"notAfter": certs.rfc3339(ca_info.not_after), "issuer": ca_info.subject}

    platform = None
    panel_refusal: str | None = None
    if spec.platform_domain:
        host = spec.platform_domain
        covering = next(((d, i, s) for d, i, s in supplied if any(certs.host_matches(n, host) for n in i.dns_names)),
                        None)
        live = decode_data(op.store.get("Secret", PLATFORM_TLS_SECRET, namespace))
        source: str | None = None
        if covering is not None:
            data, info, source = covering
        else:
            # A leaf of another CA than the chosen one (the supplied CA replaced, or bought at last)
            # is not reusable: reusable_leaf checks who signed it.
            issuer = choose_panel_issuer(host, supplied_cas)
            signer = issuer.ca.authority if issuer.ca is not None else authority
            data = live or {}
            reused = certs.reusable_leaf(live, [host], signer, now, _renew_before(op))
            if reused is None:
                data = certs.issue_leaf(signer, [host], now, _leaf_validity(op))
                reused = certs.validate_bundle(data, host, now)
                log.info("Reseller %s: the certificate of its platform domain %s was issued by %s.", name, host,
                         f"the CA in Secret {issuer.ca.secret}" if issuer.ca else "its Tenantry CA")
            info = reused
            if issuer.refusals:
                panel_refusal = (
                    f"The platform domain {host} is served with a certificate of Tenantry's own CA, which "
                    f"browsers warn about: {'; '.join(issuer.refusals)}. Set spec.platformDomain to a host the "
                    "CA permits, or put a certificate that covers the host in a region's Secret.")
        children.append(build_tls_secret(PLATFORM_TLS_SECRET, namespace, managed_labels(reseller=name), data,
                                         host=host, source=source, owner=body))
        platform = {"host": host, **info.as_status()}

    if platform:
        served.append((namespace, PLATFORM_TLS_SECRET, str(platform["host"]), str(platform["notAfter"])))
    _set_expiry(("", name), served)  # the reseller's supplied certificates and its platform domain's
    if any(r.tls.mode == "Secret" for r in spec.regions):
        # A replaced Secret wakes this reseller and the tenants it serves (supplied_secrets.py); a
        # certificate that changed status here rolls through all the reseller's tenants once more.
        before = {r.get("name"): r.get("certificate") for r in (body.get("status") or {}).get("regions") or []}
        if any(before.get(region) != regions.get(region) for region in before.keys() | regions.keys()):
            op.enqueue([(TENANT, namespace, c.name) for c in op.book.tenants_of(name)])
    # The condition follows the problems found, not the modes: a region of mode Secret holding a valid
    # certificate (the production path) has none.
    if problems:
        condition = Condition(CERTIFICATE_READY, False, problems[0][1],
                              " ".join(f"Region {r}: {m}" for r, _, m in problems)
                              + (f" {panel_refusal}" if panel_refusal else ""))
    elif panel_refusal:
        condition = Condition(CERTIFICATE_READY, False, PLATFORM_DOMAIN_NOT_PERMITTED, panel_refusal)
    else:
        condition = Condition(CERTIFICATE_READY, True, "CertificatesReady",
                              f"The certificates of {len(spec.regions)} region(s)"
                              f"{' and the platform domain' if platform else ''} are valid.")
    return ResellerTls(children, regions, platform, condition)
