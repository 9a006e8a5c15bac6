"""The TLS phase's decisions as pure functions: gathered inputs in, a decision out.

The shape of cert-manager's policy chain: controller/tls.py gathers what the decisions need (the
Store, the Secrets users supplied, DNS answers, whether cert-manager is installed), calls these
functions, and hands every write to controller/apply.py. Nothing here does I/O or reads the clock
(`now` is an input). Issuing a certificate makes a new key, the one result that is not the same for
the same inputs; a certificate in place is therefore kept whenever it may be (`certs.reusable_leaf`),
so that a second reconcile produces the same manifests and the apply module writes nothing.

The rules, per host and `tls.mode` (key custody: see tenantry.tls):
- SelfSigned: a leaf from the reseller's Tenantry CA, `tenantry-tls-<host>` in the tenant namespace.
- Secret, a tenant's custom domain: its own Secret, validated, then copied to `tenantry-tls-<host>`;
  while a replacement is broken, the last good copy keeps serving (`keep_last_good`).
- Secret, the default host of a reseller region: a CA certificate issues a leaf per tenant; a leaf
  (a bought wildcard and its chain) is copied only where no owner can read it, else withheld.
- Issuer: a cert-manager Certificate `tenantry-<host>`; without cert-manager, CertManagerMissing.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
from tenantry.models import TLSConfig
from tenantry.naming import managed_labels, reseller_namespace
from tenantry.tls import certs
from tenantry.tls.certs import Authority, CertificateProblem, CertInfo
from tenantry.tls.dns import DnsError, challenge_name

CERTIFICATE_READY = "CertificateReady"
DOMAINS_ROUTED = "DomainsRouted"
VERIFICATION_PENDING = "VerificationPending"
RESELLER_KEY_WITHHELD = "ResellerKeyWithheld"
CERT_MANAGER_MISSING = "CertManagerMissing"
CERTIFICATE_NOT_READY = "CertificateNotReady"
CA_UNAVAILABLE = "CertificateAuthorityUnavailable"
INVALID_SECRET_NAME = "InvalidSecretName"
PLATFORM_DOMAIN_NOT_PERMITTED = "PlatformDomainNotPermitted"


@dataclass(frozen=True)
class Policy:
    """The operator's settings the decisions follow."""

    renew_before: datetime.timedelta = datetime.timedelta(days=30)  # certificateRenewBeforeDays
    min_validity: datetime.timedelta = datetime.timedelta(days=7)  # certificateMinValidityDays

    @property
    def leaf_validity(self) -> datetime.timedelta:
        # Long enough that a fresh leaf is never already inside the renewal margin.
        return max(certs.LEAF_VALIDITY, 3 * self.renew_before)


def _status(host: str, info: CertInfo) -> dict[str, Any]:
    return {"host": host, **info.as_status()}


def _source(secret: Mapping[str, Any] | None) -> str | None:
    return ((secret or {}).get("metadata", {}).get("annotations") or {}).get(ANNOTATION_SOURCE)


def is_ca_bundle(data: Mapping[str, bytes]) -> bool:
    """Whether a supplied Secret holds a CA certificate (it then issues leaves) rather than a leaf."""
    try:
        first = certs.load_certificates(data.get(certs.TLS_CRT) or b"")[0]
    except CertificateProblem:
        return False
    return certs.cert_info(first).is_ca


# -- the reseller's Tenantry CA -------------------------------------------------------------------


def ca_manifest(reseller_body: Mapping[str, Any], authority: Authority) -> dict[str, Any]:
    name = reseller_body["metadata"]["name"]
    return build_tls_secret(CA_SECRET, reseller_namespace(name), managed_labels(reseller=name),
                            certs.authority_secret_data(authority), owner=reseller_body)


def reseller_ca(reseller: str, live: Mapping[str, bytes] | None, namespace_exists: bool, now: datetime.datetime,
                policy: Policy, company_name: str) -> tuple[Authority, bool]:
    """The reseller's CA: the one in its Secret while intact and not within `renew_before` of expiry,
    else a new one (True: it must be applied before anything it signs is)."""
    authority = certs.authority_from_secret(live, now, policy.renew_before)
    if authority is not None:
        return authority, False
    namespace = reseller_namespace(reseller)
    if not namespace_exists:
        raise CertificateProblem(CA_UNAVAILABLE, f"The control namespace {namespace} does not exist yet; "
                                 "the certificate is issued once it does.")
    return certs.issue_ca(f"{company_name[:40]} ({reseller}) Tenantry CA", now), True


# -- which of a tenant's hosts are routed ---------------------------------------------------------


@dataclass(frozen=True)
class CustomDomain:
    host: str
    tls: TLSConfig
    token: str  # the DNS proof's value (dns.challenge_token)
    conflict: str | None = None  # why another tenant or Ingress holds the host (AdmissionBook.host_problem)
    previous: Mapping[str, Any] = field(default_factory=dict)  # its entry in status.domains


@dataclass(frozen=True)
class Hosts:
    """What decides a tenant's hosts: its default host in the region, and its custom domains."""

    default_host: str | None  # None: the reseller sells no such region
    default_tls: TLSConfig | None
    default_taken: tuple[str, str] | None  # (reseller, domain) holding the region's domain first
    region_domain: str
    domains: Sequence[CustomDomain]
    allowed: int  # custom domains the plan allows
    verification: str  # the region's domainVerification: "DNS" or "None"


@dataclass(frozen=True)
class WantedHost:
    host: str
    tls: TLSConfig
    is_default: bool


@dataclass
class Routing:
    wanted: list[WantedHost]
    domains: list[dict[str, Any]]  # status.domains
    unrouted: list[tuple[str, str, str]]  # (host, reason, message)
    recheck: bool  # a DNS proof is awaited: look again after domainRecheckSeconds
    proven: list[str]  # hosts whose DNS proof was found just now


def _needs_proof(hosts: Hosts, index: int, domain: CustomDomain) -> bool:
    if index >= hosts.allowed or domain.conflict or hosts.verification == "None":
        return False
    # Sticky: a domain proven once stays routed while it stays in the spec (status remembers it).
    return not (domain.previous.get("verified") and domain.previous.get("token") == domain.token)


def challenges(hosts: Hosts) -> list[str]:
    """The custom domains whose DNS proof must be asked for now."""
    return [d.host for i, d in enumerate(hosts.domains) if _needs_proof(hosts, i, d)]


def route_hosts(hosts: Hosts, answers: Mapping[str, Sequence[str] | DnsError]) -> Routing:
    """Which hosts are routed, given the TXT records found for `challenges(hosts)` (or why they
    could not be asked for)."""
    wanted: list[WantedHost] = []
    unrouted: list[tuple[str, str, str]] = []
    if hosts.default_host is not None and hosts.default_tls is not None:
        if hosts.default_taken is None:
            wanted.append(WantedHost(hosts.default_host, hosts.default_tls, True))
        else:  # a domain another reseller holds first: routing it here would hijack that reseller's tenants
            unrouted.append((hosts.default_host, HOST_CONFLICT,
                             f"Not routed ({HOST_CONFLICT}): the reseller's domain {hosts.region_domain} collides "
                             f"with {hosts.default_taken[1]} of reseller {hosts.default_taken[0]}."))
    domains: list[dict[str, Any]] = []
    recheck = False
    proven: list[str] = []
    for index, domain in enumerate(hosts.domains):
        host, token, record = domain.host, domain.token, challenge_name(domain.host)
        entry: dict[str, Any] = {"host": host, "verified": False, "token": token}
        domains.append(entry)
        if index >= hosts.allowed:
            entry["message"] = (f"Not routed: the plan allows {hosts.allowed} custom domain(s); remove domains "
                                "or choose a larger plan.")
            unrouted.append((host, TOO_MANY_DOMAINS, entry["message"]))
            continue
        if domain.conflict:
            entry["message"] = f"Not routed ({HOST_CONFLICT}): {domain.conflict}"
            unrouted.append((host, HOST_CONFLICT, entry["message"]))
            continue
        if hosts.verification == "None":
            entry.update(verified=True, message="Routed: the region trusts custom domains without a DNS proof.")
        elif not _needs_proof(hosts, index, domain):
            entry.update(verified=True, message=domain.previous.get("message") or "Ownership proven by DNS TXT record.")
        else:
            answer = answers.get(host, ())
            if isinstance(answer, DnsError):
                entry["message"] = (f"The DNS TXT record {record} could not be checked ({answer}); "
                                    f"will try again. Its value must be {token}.")
            elif token in answer:
                entry.update(verified=True, message=f"Ownership proven by DNS TXT record {record}.")
                proven.append(host)
            else:
                entry["message"] = (f"Waiting for ownership proof: create a DNS TXT record {record} "
                                    f"with the value {token}; the domain is routed once it is found.")
            if not entry["verified"]:
                recheck = True
                unrouted.append((host, VERIFICATION_PENDING, entry["message"]))
        if entry["verified"]:
            wanted.append(WantedHost(host, domain.tls, False))
    return Routing(wanted, domains, unrouted, recheck, proven)


# -- the certificate of one host ------------------------------------------------------------------


@dataclass(frozen=True)
class Tenancy:
    """Where a tenant's certificates go."""

    reseller: str
    namespace: str  # the tenant namespace
    labels: Mapping[str, str]
    has_owners: bool


@dataclass(frozen=True)
class HostInputs:
    """What one host's certificate depends on; only the inputs of its mode are gathered."""

    host: WantedHost
    live_copy: Mapping[str, Any] | None = None  # Secret tenantry-tls-<host> in the tenant namespace
    supplied: Mapping[str, bytes] | None = None  # mode Secret: the supplied Secret's data (None: missing)
    authority: Authority | CertificateProblem | None = None  # SelfSigned: the reseller's CA, or why none
    cert_manager: bool = False  # mode Issuer: whether cert-manager's Certificate kind is served
    live_certificate: Mapping[str, Any] | None = None  # mode Issuer: the Certificate tenantry-<host>


@dataclass
class HostCertificate:
    route: HostRoute
    children: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] | None = None  # its entry in status.certificates
    problem: tuple[str, str] | None = None  # (reason, message)
    pending: bool = False  # look again after domainRecheckSeconds
    withdraw: str | None = None  # a copy of a reseller's key to delete now (before the owners' RoleBinding)
    note: str | None = None  # what was done, for the log


def supplied_secret(tenancy: Tenancy, host: WantedHost) -> tuple[str, str] | None:
    """(namespace, name) of the Secret a user supplied for the host, which must be read; None when
    the mode names none (or a name the operator owns, refused without reading)."""
    tls = host.tls
    if tls.mode != "Secret" or not tls.secret_name:
        return None
    if host.is_default:
        return reseller_namespace(tenancy.reseller), tls.secret_name
    return None if tls.secret_name.startswith("tenantry-") else (tenancy.namespace, tls.secret_name)


def host_certificate(tenancy: Tenancy, inputs: HostInputs, now: datetime.datetime, policy: Policy) -> HostCertificate:
    """The certificate of one routed host, by its mode."""
    wanted = inputs.host
    try:
        tls = wanted.tls
        if tls.mode == "Issuer":
            return issuer_certificate(tenancy, inputs)
        if tls.mode == "Secret" and tls.secret_name:
            if wanted.is_default:
                return reseller_secret_certificate(tenancy, inputs, now, policy)
            return tenant_secret_certificate(tenancy, inputs, now, policy)
        if isinstance(inputs.authority, CertificateProblem):
            raise inputs.authority
        if inputs.authority is None:
            raise CertificateProblem(CA_UNAVAILABLE, f"The reseller {tenancy.reseller}'s CA was not found.")
        return issued_from(tenancy, wanted.host, inputs.authority, inputs.live_copy, now, policy)
    except CertificateProblem as problem:
        return HostCertificate(HostRoute(wanted.host), problem=(problem.reason, problem.message))


def issued_from(tenancy: Tenancy, host: str, authority: Authority, live: Mapping[str, Any] | None,
                now: datetime.datetime, policy: Policy, source: str | None = None) -> HostCertificate:
    """A leaf for `host` signed by `authority`: the live one while it is good (same hosts, same CA, not
    within the renewal window), a new one otherwise."""
    name = tls_secret_name(host)
    data = decode_data(live)
    info = certs.reusable_leaf(data, [host], authority, now, policy.renew_before)
    note = None
    if info is None or data is None:
        data = certs.issue_leaf(authority, [host], now, policy.leaf_validity)
        info = certs.validate_bundle(data, host, now)
        note = (f"Certificate for {host} was issued into {tenancy.namespace}/{name}, valid until "
                f"{certs.rfc3339(info.not_after)}.")
    secret = build_tls_secret(name, tenancy.namespace, tenancy.labels, data, host=host, source=source)
    return HostCertificate(HostRoute(host, name), [secret], _status(host, info), note=note)


def _supplied(supplied: Mapping[str, bytes] | None, where: str) -> Mapping[str, bytes]:
    if supplied is None:
        raise CertificateProblem(certs.SECRET_NOT_FOUND, f"{where} does not exist; create it (kubectl create "
                                 "secret tls NAME --cert=tls.crt --key=tls.key) or fix tls.secretName.")
    return supplied


def tenant_secret_certificate(tenancy: Tenancy, inputs: HostInputs, now: datetime.datetime,
                              policy: Policy) -> HostCertificate:
    """The tenant's own certificate: validated, then copied to the name the Ingress uses."""
    host, secret_name = inputs.host.host, inputs.host.tls.secret_name or ""
    copy_name = tls_secret_name(host)
    if secret_name.startswith("tenantry-"):
        raise CertificateProblem(INVALID_SECRET_NAME, f"Secret names starting with tenantry- are the operator's; "
                                 f"rename {secret_name} and set tls.secretName to the new name.")
    where = f"Secret {tenancy.namespace}/{secret_name}"
    source = f"{tenancy.namespace}/{secret_name}"
    try:
        data = _supplied(inputs.supplied, where)
        info = certs.validate_bundle(data, host, now, min_validity=policy.min_validity, secret=where)
    except CertificateProblem as problem:
        return keep_last_good(tenancy, host, inputs.live_copy, problem, now)
    secret = build_tls_secret(copy_name, tenancy.namespace, tenancy.labels, data, host=host, source=source)
    note = None if _source(inputs.live_copy) == source else (
        f"Certificate for {host} from {where} was validated and is served from {tenancy.namespace}/{copy_name}.")
    return HostCertificate(HostRoute(host, copy_name), [secret], _status(host, info), note=note)


def keep_last_good(tenancy: Tenancy, host: str, live: Mapping[str, Any] | None, problem: CertificateProblem,
                   now: datetime.datetime) -> HostCertificate:
    """A supplied certificate that became unusable: keep serving the last validated copy while it is
    still valid, and say what is wrong."""
    # No recheck (`pending`): the supplied Secret's next change wakes the tenant (supplied_secrets.py).
    result = HostCertificate(HostRoute(host), problem=(problem.reason, problem.message))
    data = decode_data(live)
    if not data:
        return result
    try:
        info = certs.validate_bundle(data, host, now)
    except CertificateProblem:
        return result
    source = _source(live)
    if source and not source.startswith(f"{tenancy.namespace}/") and tenancy.has_owners:
        return result  # a reseller key must not stay where owners can read it
    copy_name = tls_secret_name(host)
    secret = build_tls_secret(copy_name, tenancy.namespace, tenancy.labels, data, host=host, source=source)
    return HostCertificate(HostRoute(host, copy_name), [secret], _status(host, info),
                           (problem.reason, problem.message + " The last valid certificate is served until then."))


def _reseller_copy(tenancy: Tenancy, live: Mapping[str, Any] | None) -> str | None:
    """The name of a live copy of a reseller's Secret in the tenant namespace, if there is one."""
    source = _source(live) or ""
    if live is not None and source.startswith(reseller_namespace(tenancy.reseller) + "/"):
        return str(live["metadata"]["name"])
    return None


def reseller_secret_certificate(tenancy: Tenancy, inputs: HostInputs, now: datetime.datetime,
                                policy: Policy) -> HostCertificate:
    """The default host in a reseller region of mode Secret (key custody, see tenantry.tls)."""
    host, secret_name = inputs.host.host, inputs.host.tls.secret_name or ""
    namespace = reseller_namespace(tenancy.reseller)
    where = f"The reseller's Secret {namespace}/{secret_name}"
    copy_name = tls_secret_name(host)
    # A copy of the reseller's key is withdrawn the moment the tenant has owners: now, not at pruning.
    withdraw = _reseller_copy(tenancy, inputs.live_copy) if tenancy.has_owners else None
    try:
        data = _supplied(inputs.supplied, f"Secret {namespace}/{secret_name}")
        if is_ca_bundle(data):
            certs.validate_bundle(data, None, now, min_validity=policy.min_validity, secret=where, want_ca=True)
            return issued_from(tenancy, host, certs.supplied_authority(data), inputs.live_copy, now, policy)
        info = certs.validate_bundle(data, host, now, min_validity=policy.min_validity, secret=where)
    except CertificateProblem as problem:
        if tenancy.has_owners:
            return HostCertificate(HostRoute(host), problem=(problem.reason, problem.message), withdraw=withdraw)
        return keep_last_good(tenancy, host, inputs.live_copy, problem, now)
    if tenancy.has_owners:
        return HostCertificate(HostRoute(host), withdraw=withdraw, problem=(RESELLER_KEY_WITHHELD, (
            f"{host} is served without a TLS Secret: {where} holds a certificate whose private key would be "
            f"readable by the tenant's owners in {tenancy.namespace}, and a reseller's key is never copied there. "
            "Use tls.mode Issuer for the region (cert-manager issues a certificate per tenant), put a CA "
            "certificate in the Secret (Tenantry then issues one per tenant), or use SelfSigned.")))
    secret = build_tls_secret(copy_name, tenancy.namespace, tenancy.labels, data, host=host,
                              source=f"{namespace}/{secret_name}")
    return HostCertificate(HostRoute(host, copy_name), [secret], _status(host, info))


def issuer_certificate(tenancy: Tenancy, inputs: HostInputs) -> HostCertificate:
    """Mode Issuer: a cert-manager Certificate, routed once cert-manager says it is Ready."""
    host, tls = inputs.host.host, inputs.host.tls
    if not inputs.cert_manager:
        return HostCertificate(HostRoute(host), problem=(CERT_MANAGER_MISSING, (
            "TLS mode Issuer needs cert-manager, and its CRDs (certificates.cert-manager.io) are not installed; "
            "install cert-manager, or use mode SelfSigned or Secret.")), pending=True)
    assert tls.issuer_ref is not None
    ref = f"{tls.issuer_ref.kind}/{tls.issuer_ref.name}"
    manifest = build_certificate(host, tenancy.namespace, tenancy.labels, tls.issuer_ref.kind, tls.issuer_ref.name)
    status = (inputs.live_certificate or {}).get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
        detail = (ready or {}).get("message") or "cert-manager has not issued it yet"
        return HostCertificate(HostRoute(host), [manifest], problem=(CERTIFICATE_NOT_READY, (
            f"cert-manager Certificate {tenancy.namespace}/{certificate_name(host)} from {ref} is not ready: "
            f"{detail}.")), pending=True)
    entry = {"host": host, "issuer": ref, "dnsNames": [host]}
    if status.get("notAfter"):
        entry["notAfter"] = status["notAfter"]
    return HostCertificate(HostRoute(host, tls_secret_name(host)), [manifest], entry)


def stale_issued_secrets(certificates: Sequence[Mapping[str, Any]], wanted: set[str]) -> list[tuple[str, str]]:
    """(namespace, name) of the Secrets cert-manager issued for Certificates no longer wanted:
    cert-manager leaves a Certificate's Secret behind, and when a host goes, its key goes too."""
    stale = []
    for certificate in certificates:
        meta = certificate.get("metadata") or {}
        secret = (certificate.get("spec") or {}).get("secretName")
        if meta.get("name") not in wanted and secret and secret.startswith("tenantry-tls-"):
            stale.append((meta.get("namespace") or "", secret))
    return stale


# -- a tenant's TLS, all hosts together -----------------------------------------------------------


@dataclass
class TenantTls:
    routes: list[HostRoute]
    children: list[dict[str, Any]]
    domains: list[dict[str, Any]]
    certificates: list[dict[str, Any]]
    condition: Condition
    recheck: bool = False
    domains_condition: Condition | None = None


def tenant_tls(routing: Routing, results: Sequence[HostCertificate], custom_hosts: Sequence[str]) -> TenantTls:
    """The routes, children and status of a tenant's TLS from its routing and each host's certificate."""
    problems = [(r.route.host, *r.problem) for r in results if r.problem]
    certificates = [r.status for r in results if r.status]
    return TenantTls(
        routes=[r.route for r in results],
        children=[c for r in results for c in r.children],
        domains=routing.domains,
        certificates=certificates,
        condition=certificate_condition(problems, certificates),
        recheck=routing.recheck or any(r.pending for r in results),
        # A default host that is not routed (its reseller's domain collides with one another reseller holds)
        # is reported with the custom domains.
        domains_condition=domains_condition(routing.unrouted, len(custom_hosts) + sum(
            1 for host, _, _ in routing.unrouted if host not in set(custom_hosts))),
    )


def domains_condition(unrouted: Sequence[tuple[str, str, str]], count: int) -> Condition | None:
    """DomainsRouted: whether every custom domain (and the default host) is routed; None when the
    tenant has no custom domains and its default host is routed."""
    if not count:
        return None
    if not unrouted:
        return Condition(DOMAINS_ROUTED, True, DOMAINS_ROUTED, f"All {count} custom domain(s) are routed.")
    return Condition(DOMAINS_ROUTED, False, unrouted[0][1], " ".join(f"{h}: {m}" for h, _, m in unrouted))


def certificate_condition(problems: Sequence[tuple[str, str, str]],
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


def expiry_series(namespace: str, results: Sequence[HostCertificate]) -> list[tuple[str, str, str, str]]:
    """(namespace, secret, host, notAfter) of the hosts served now, for the expiry metric."""
    return [(namespace, r.route.tls_secret, r.route.host, r.status["notAfter"]) for r in results
            if r.status and r.status.get("notAfter") and r.route.tls_secret]


# -- the reseller's own certificates --------------------------------------------------------------


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


@dataclass(frozen=True)
class RegionInputs:
    name: str
    domain: str
    tls: TLSConfig
    supplied: Mapping[str, bytes] | None = None  # mode Secret: the Secret's data (None: missing)


@dataclass(frozen=True)
class ResellerInputs:
    body: Mapping[str, Any]  # the Reseller, the owner of its certificates
    authority: Authority  # its Tenantry CA
    regions: Sequence[RegionInputs]
    platform_domain: str | None
    live_platform: Mapping[str, bytes] | None  # the data of Secret tenantry-platform-tls


@dataclass
class ResellerTls:
    children: list[dict[str, Any]]
    regions: dict[str, dict[str, Any]]  # region -> status.regions[].certificate
    platform: dict[str, Any] | None  # status.platformCertificate
    condition: Condition
    served: list[tuple[str, str, str, str]] = field(default_factory=list)  # expiry series
    wake_tenants: bool = False  # a region's certificate changed: every tenant of the reseller reconciles
    note: str | None = None


def reseller_tls(inputs: ResellerInputs, now: datetime.datetime, policy: Policy) -> ResellerTls:
    """The reseller's CA Secret, its platformDomain certificate, and what each region's TLS source is."""
    body = inputs.body
    name = body["metadata"]["name"]
    namespace = reseller_namespace(name)
    ca_info = certs.cert_info(inputs.authority.cert)
    children: list[dict[str, Any]] = [ca_manifest(body, inputs.authority)]
    problems: list[tuple[str, str, str]] = []
    regions: dict[str, dict[str, Any]] = {}
    supplied: list[tuple[Mapping[str, bytes], CertInfo, str]] = []
    supplied_cas: list[SuppliedCA] = []
    served: list[tuple[str, str, str, str]] = []
    for region in inputs.regions:
        tls = region.tls
        if tls.mode == "Issuer" and tls.issuer_ref is not None:
            regions[region.name] = {"issuer": f"{tls.issuer_ref.kind}/{tls.issuer_ref.name}"}
        elif tls.mode == "Secret" and tls.secret_name:
            where = f"Secret {namespace}/{tls.secret_name}"
            try:
                if region.supplied is None:
                    raise CertificateProblem(certs.SECRET_NOT_FOUND, f"{where} does not exist; create it or fix "
                                             f"spec.regions[{region.name}].tls.secretName.")
                data = region.supplied
                is_ca = is_ca_bundle(data)
                info = certs.validate_bundle(data, None if is_ca else f"*.{region.domain}", now,
                                             min_validity=policy.min_validity, secret=where, want_ca=is_ca)
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
    note = None
    if inputs.platform_domain:
        host = inputs.platform_domain
        covering = next(((d, i, s) for d, i, s in supplied if any(certs.host_matches(n, host) for n in i.dns_names)),
                        None)
        source: str | None = None
        if covering is not None:
            data, info, source = covering
        else:
            # A leaf of another CA than the chosen one (the supplied CA replaced, or bought at last)
            # is not reusable: reusable_leaf checks who signed it.
            issuer = choose_panel_issuer(host, supplied_cas)
            signer = issuer.ca.authority if issuer.ca is not None else inputs.authority
            data = inputs.live_platform or {}
            reused = certs.reusable_leaf(inputs.live_platform, [host], signer, now, policy.renew_before)
            if reused is None:
                data = certs.issue_leaf(signer, [host], now, policy.leaf_validity)
                reused = certs.validate_bundle(data, host, now)
                note = (f"Reseller {name}: the certificate of its platform domain {host} was issued by "
                        + (f"the CA in Secret {issuer.ca.secret}." if issuer.ca else "its Tenantry CA."))
            info = reused
            if issuer.refusals:
                panel_refusal = (
                    f"The platform domain {host} is served with a certificate of Tenantry's own CA, which "
                    f"browsers warn about: {'; '.join(issuer.refusals)}. Set spec.platformDomain to a host the "
                    "CA permits, or put a certificate that covers the host in a region's Secret.")
        children.append(build_tls_secret(PLATFORM_TLS_SECRET, namespace, managed_labels(reseller=name), data,
                                         host=host, source=source, owner=body))
        platform = {"host": host, **info.as_status()}
        served.append((namespace, PLATFORM_TLS_SECRET, host, str(platform["notAfter"])))

    wake = False
    if any(r.tls.mode == "Secret" for r in inputs.regions):
        # A certificate that changed status here rolls through all the reseller's tenants once more.
        before = {r.get("name"): r.get("certificate") for r in (body.get("status") or {}).get("regions") or []}
        wake = any(before.get(region) != regions.get(region) for region in before.keys() | regions.keys())
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
                              f"The certificates of {len(inputs.regions)} region(s)"
                              f"{' and the platform domain' if platform else ''} are valid.")
    return ResellerTls(children, regions, platform, condition, served, wake, note)
