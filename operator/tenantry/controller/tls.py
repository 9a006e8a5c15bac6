"""The TLS and custom-domain phase: gather the inputs, let tenantry.tls.decide decide, apply.

Called by the Tenant reconcile (`tenant_tls`) and the Reseller reconcile (`reseller_tls`) before they
apply their children; they get back desired children plus status, for the apply module
(controller/apply.py) to apply and write. The decisions themselves - which hosts are routed, which
certificate each gets, key custody, renewal - are the pure functions of `tenantry.tls.decide`,
tested input by input; this module only gathers what they need and carries out the few writes that
cannot wait for the caller's apply, each through controller/apply.py:
- the reseller's CA, applied the first time a tenant needs it, so that every tenant signs with it;
- the copy of a reseller's key in a tenant namespace that gained owners, deleted at once (before
  the owners' RoleBinding is applied by the same reconcile; key custody, see tenantry.tls);
- the Secret cert-manager left behind for a host that is gone.

Inputs: the Store; Secrets users supplied, read with `op.client.get` because they are not ours and
the operator keeps none of their data; DNS TXT records (the ownership proof of a custom domain,
asked of `dnsResolver`); whether cert-manager's Certificate kind is served.

Supplied Secrets are watched metadata-only (controller/supplied_secrets.py): creating, replacing or
deleting one reconciles, within a second, exactly the Tenants and Resellers whose spec names it (and
a reseller's tenants in the regions that use it). So nothing here polls them: an unusable supplied
Secret is looked at again when it changes, or at the periodic resync (a certificate that becomes
valid with time alone).

What is kept between reconciles (CA locks, parsed CAs, the cert-manager watch, the expiry series
set) is the Operator's (`op.tls`, controller/tls_state.py), never this module's.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from tenantry.builders.tls import CA_SECRET, PLATFORM_TLS_SECRET, certificate_name, decode_data, tls_secret_name
from tenantry.conditions import Condition
from tenantry.controller.apply import apply_one, delete_child, with_spec_hash
from tenantry.controller.clusters import Cluster
from tenantry.controller.context import Operator
from tenantry.controller.informer import Informer
from tenantry.controller.store import owner_of
from tenantry.kube import ApiError
from tenantry.models import RegionSpec, ResellerSpec, TenantSpec
from tenantry.naming import RESELLER, TENANT, reseller_namespace
from tenantry.tls import decide
from tenantry.tls.certs import Authority, CertificateProblem
from tenantry.tls.decide import (
    CA_UNAVAILABLE,
    CERTIFICATE_READY,
    CustomDomain,
    HostCertificate,
    HostInputs,
    Hosts,
    PanelIssuer,
    Policy,
    RegionInputs,
    ResellerInputs,
    ResellerTls,
    SuppliedCA,
    Tenancy,
    TenantTls,
    choose_panel_issuer,
)
from tenantry.tls.dns import DnsError, challenge_name, challenge_token, query_txt

# The decisions' names, for the reconciles that call this phase.
__all__ = ["CERTIFICATE_READY", "HostCertificate", "PanelIssuer", "ResellerTls", "SuppliedCA", "TenantTls",
           "cert_manager_available", "choose_panel_issuer", "forget_tenant", "reseller_authority", "reseller_tls",
           "stop_watches", "tenant_tls", "tenants_affected_by"]

log = logging.getLogger("tenantry.tls")


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def policy_of(op: Operator) -> Policy:
    return Policy(renew_before=datetime.timedelta(days=op.settings.certificate_renew_before_days),
                  min_validity=datetime.timedelta(days=op.settings.certificate_min_validity_days))


def _content(secret: Mapping[str, Any] | None) -> str:
    return repr(sorted(((secret or {}).get("data") or {}).items()))  # content, not metadata


# -- the reseller's CA ----------------------------------------------------------------------------


async def reseller_authority(op: Operator, reseller: str) -> tuple[Authority, dict[str, Any]]:
    """The reseller's CA and its Secret manifest; made (and applied at once, so that every tenant
    signs with the same CA) the first time anyone needs it, or when it is near expiry or broken."""
    async with op.tls.ca_lock(reseller):
        body = op.store.get(RESELLER, reseller)
        if body is None:
            raise CertificateProblem(CA_UNAVAILABLE, f"Reseller {reseller} does not exist; its CA cannot sign.")
        namespace = reseller_namespace(reseller)
        live = op.store.get("Secret", CA_SECRET, namespace)
        now, policy = utcnow(), policy_of(op)
        cached = op.tls.authorities.get(reseller)
        if (live is not None and cached is not None and cached[0] == _content(live)
                and cached[1].cert.not_valid_after_utc - now >= policy.renew_before):
            return cached[1], decide.ca_manifest(body, cached[1])  # parsed once per content of the Secret
        spec = ResellerSpec.model_validate(body.get("spec") or {})
        authority, new = decide.reseller_ca(reseller, decode_data(live), op.store.get("Namespace", namespace)
                                            is not None, now, policy, spec.company_name)
        manifest = decide.ca_manifest(body, authority)
        if new:
            await apply_one(op.client, op.store, with_spec_hash(manifest))
            log.info("Reseller %s got a new certificate authority in Secret %s/%s.", reseller, namespace, CA_SECRET)
        op.tls.authorities[reseller] = (_content(op.store.get("Secret", CA_SECRET, namespace)), authority)
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
    present = "Certificate" in op.features
    max_age = op.settings.domain_recheck_seconds if max_age is None else max_age
    if time.monotonic() - op.feature_checked.get("Certificate", -max_age) < max_age:
        return present
    op.feature_checked["Certificate"] = time.monotonic()
    try:
        served = await op.client.kind_exists("Certificate")
    except (ApiError, OSError) as error:
        log.warning("Could not look up cert-manager's Certificate kind: %s", error)
        return present
    if served and not present:
        informer = Informer(op.client, op.store, "Certificate",
                            lambda _t, obj, _old: op.enqueue([o] if (o := owner_of(obj)) else []))
        informer.start()
        try:
            await asyncio.wait_for(informer.synced.wait(), timeout=30)
        except TimeoutError:
            await informer.stop()
            return False
        op.tls.cert_manager = informer
        op.features.add("Certificate")
        log.info("cert-manager's Certificate kind was found; TLS mode Issuer is available.")
    elif not served and present:
        await op.tls.stop()
        for certificate in list(op.store.list("Certificate")):
            meta = certificate["metadata"]
            op.store.delete("Certificate", meta["name"], meta.get("namespace"))
        op.features.discard("Certificate")
        log.warning("cert-manager's Certificate kind is gone; hosts in TLS mode Issuer have no certificate.")
    return served


async def stop_watches(op: Operator) -> None:
    await op.tls.stop()


def forget_tenant(op: Operator, tenant_namespace: str, tenant: str) -> None:
    """A deleted tenant's certificate expiry series go with it."""
    op.tls.forget((tenant_namespace, tenant))


# -- a tenant's hosts -----------------------------------------------------------------------------


async def _dns_answers(op: Operator, hosts: list[str]) -> dict[str, list[str] | DnsError]:
    """The TXT records of each host's challenge name, asked together."""

    async def ask(host: str) -> list[str] | DnsError:
        try:
            return await query_txt(challenge_name(host), op.settings.dns_resolver)
        except DnsError as error:
            return error

    return dict(zip(hosts, await asyncio.gather(*(ask(h) for h in hosts)), strict=True))


async def _host_inputs(op: Operator, cluster: Cluster, tenancy: Tenancy, wanted: decide.WantedHost) -> HostInputs:
    """What the host's mode needs, and only that. What is in the tenant's namespace is read in the
    cluster it lives in (`cluster`: a member cluster for a region of its own); the reseller's Secrets
    and CA in this one."""
    live_copy = cluster.store.get("Secret", tls_secret_name(wanted.host), tenancy.namespace)
    tls = wanted.tls
    if tls.mode == "Issuer":
        return HostInputs(wanted, live_copy, cert_manager=await cert_manager_available(op),
                          live_certificate=cluster.store.get("Certificate", certificate_name(wanted.host),
                                                             tenancy.namespace))
    if tls.mode == "Secret" and tls.secret_name:
        where = decide.supplied_secret(tenancy, wanted)
        reader = cluster.client if where and where[0] == tenancy.namespace else op.client
        secret = await reader.get("Secret", where[1], where[0]) if where else None
        return HostInputs(wanted, live_copy, supplied=None if secret is None else decode_data(secret) or {})
    try:
        authority: Authority | CertificateProblem = (await reseller_authority(op, tenancy.reseller))[0]
    except CertificateProblem as problem:
        authority = problem
    return HostInputs(wanted, live_copy, authority=authority)


async def tenant_tls(op: Operator, cluster: Cluster, body: Mapping[str, Any], spec: TenantSpec, reseller: str,
                     reseller_spec: ResellerSpec | None, region_spec: RegionSpec | None, custom_domains: int,
                     namespace: str, labels: Mapping[str, str]) -> TenantTls:
    meta = body["metadata"]
    name, uid = meta["name"], meta.get("uid", "")
    now, policy = utcnow(), policy_of(op)

    # Which hosts are routed: the AdmissionBook says who holds what, DNS whether a domain is proven.
    region = reseller_spec.region(spec.region) if reseller_spec else None
    claim = op.book.tenant((reseller, name))
    previous = {d.get("host"): d for d in (body.get("status") or {}).get("domains") or []}
    hosts = Hosts(
        default_host=f"{name}.{region.domain}" if region else None,
        default_tls=region.tls if region else None,
        default_taken=op.book.domain_taken(reseller, region.domain) if region else None,
        region_domain=region.domain if region else "",
        domains=[CustomDomain(d.host, d.tls, challenge_token(uid, d.host),
                              op.book.host_problem(replace(claim, domains=(d.host,))) if claim is not None else None,
                              previous.get(d.host) or {}) for d in spec.domains],
        allowed=custom_domains,
        verification=region_spec.domain_verification if region_spec else "DNS")
    routing = decide.route_hosts(hosts, await _dns_answers(op, decide.challenges(hosts)))
    for host in routing.proven:
        log.info("Tenant %s/%s proved ownership of %s by DNS.", meta.get("namespace"), name, host)

    # Each routed host's certificate.
    tenancy = Tenancy(reseller, namespace, dict(labels), bool(spec.owners))
    results = []
    for wanted in routing.wanted:
        result = decide.host_certificate(tenancy, await _host_inputs(op, cluster, tenancy, wanted), now, policy)
        if result.withdraw:
            await delete_child(cluster.client, cluster.store, "Secret", result.withdraw, namespace)
            log.info("The copy of the reseller's certificate in %s/%s was deleted: the tenant has owners now.",
                     namespace, result.withdraw)
        if result.note:
            log.info("%s", result.note)
        results.append(result)

    owner = (TENANT, meta.get("namespace"), name)
    issued = [cluster.store.get(kind, child, where) or {}
              for kind, where, child in cluster.store.children_of(owner) if kind == "Certificate"]
    for where, secret in decide.stale_issued_secrets(issued, {c["metadata"]["name"] for r in results
                                                              for c in r.children}):
        await delete_child(cluster.client, cluster.store, "Secret", secret, where)
    op.tls.set_expiry((meta.get("namespace", ""), name), decide.expiry_series(namespace, results))
    return decide.tenant_tls(routing, results, [d.host for d in spec.domains])


# -- the reseller's own certificates --------------------------------------------------------------


async def reseller_tls(op: Operator, body: Mapping[str, Any], spec: ResellerSpec) -> ResellerTls:
    """The reseller's CA, its platformDomain certificate, and what each region's TLS source is."""
    name = body["metadata"]["name"]
    namespace = reseller_namespace(name)
    try:
        authority, _ = await reseller_authority(op, name)
    except CertificateProblem as problem:
        return ResellerTls([], {}, None, Condition(CERTIFICATE_READY, False, problem.reason, problem.message))
    regions = []
    for region in spec.regions:
        supplied = None
        if region.tls.mode == "Secret" and region.tls.secret_name:
            secret = await op.client.get("Secret", region.tls.secret_name, namespace)
            supplied = None if secret is None else decode_data(secret) or {}
        regions.append(RegionInputs(region.name, region.domain, region.tls, supplied))
    decision = decide.reseller_tls(ResellerInputs(
        body, authority, regions, spec.platform_domain,
        decode_data(op.store.get("Secret", PLATFORM_TLS_SECRET, namespace))), utcnow(), policy_of(op))
    if decision.note:
        log.info("%s", decision.note)
    op.tls.set_expiry(("", name), decision.served)  # the reseller's supplied certificates and its platform domain's
    if decision.wake_tenants:
        # A replaced Secret wakes this reseller and the tenants it serves (supplied_secrets.py); a
        # certificate that changed status here rolls through all the reseller's tenants once more.
        op.enqueue([(TENANT, namespace, c.name) for c in op.book.tenants_of(name)])
    return decision
