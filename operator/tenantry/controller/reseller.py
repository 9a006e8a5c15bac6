"""Reconciling one Reseller: its control namespace, its admins' access, its white label, the
platform's default Plans (seeded once), and a status that shows licences and capacity in use."""

from __future__ import annotations

import logging
from typing import Any

from tenantry.builders.billing import build_meter_billing_binding
from tenantry.builders.common import quota_strings
from tenantry.builders.reseller import build_default_plan, build_reseller_children, reseller_branding
from tenantry.conditions import Condition, failure_text
from tenantry.controller.apply import sync_children
from tenantry.controller.context import Operator, publish_status
from tenantry.controller.license_order import licence_fields
from tenantry.controller.platform_roles import bound_platform_roles, roles_bound_condition
from tenantry.controller.specs import INVALID_SPEC, read_spec, reseller_terms
from tenantry.controller.tls import CERTIFICATE_READY, ResellerTls, reseller_tls
from tenantry.kube import ApiError
from tenantry.models import ResellerSpec
from tenantry.naming import RESELLER, reseller_namespace
from tenantry.subjects import INVALID_ADMIN, allowed_subjects, reseller_admin_problems

log = logging.getLogger("tenantry.reseller")


async def reconcile_reseller(op: Operator, name: str) -> None:
    body = op.store.get(RESELLER, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return  # owner references let the garbage collector remove its children
    spec, problem = read_spec(RESELLER, body)
    if spec is None:
        await publish_status(op, body, {}, [Condition("Ready", False, INVALID_SPEC, problem or "")])
        return
    purchased = op.orders.purchased(name)  # licences bought with LicenseOrders
    op.book.set_reseller(reseller_terms(body, spec, purchased=purchased))

    # Only admins Tenantry may bind (tenantry.subjects); a bad one is reported below and never bound.
    admins = [s.model_dump(exclude_none=True) for s in allowed_subjects(spec.admins, reseller_namespace(name))]
    children = build_reseller_children(body, admins, reseller_branding(spec))
    metering = op.settings.metering
    if metering.enabled:  # the meters publish its usage and daily bills there (metering/billing.py)
        children.append(build_meter_billing_binding(name, metering.service_account, metering.namespace))
    if op.store.get("Namespace", reseller_namespace(name)) is None:
        # A new reseller: its namespace first, because its CA and certificates live in it.
        await sync_children(op.client, op.store, (RESELLER, None, name), children)
    # A failure of the TLS phase (an API error reading a Secret, say) must not freeze the rest of the
    # status: licences, tenants and allocations are still reported, then the reconcile is retried.
    # Nothing is applied or pruned meanwhile (the CA and certificate Secrets are among the children).
    tls_failure: Exception | None = None
    try:
        tls = await reseller_tls(op, body, spec)
    except Exception as error:
        tls_failure = error
        tls = ResellerTls([], {r.get("name"): r["certificate"] for r in (body.get("status") or {}).get("regions") or []
                               if r.get("certificate")}, (body.get("status") or {}).get("platformCertificate"),
                          Condition(CERTIFICATE_READY, False, "CertificateFailed",
                                    f"The certificates could not be checked and will be again: {failure_text(error)}"))
    else:
        await sync_children(op.client, op.store, (RESELLER, None, name), children + tls.children)
    seeded = await _seed_default_plans(op, name, (body.get("status") or {}).get("seededPlans", []))

    licenses_used, allocated = op.book.usage(name)
    fields: dict[str, Any] = {
        "namespace": reseller_namespace(name),
        "licenses": licence_fields(op, name, spec, licenses_used),
        "tenants": len(op.book.tenants_of(name)),
        "regions": [
            {"name": region.name, "domain": region.domain,
             "allotment": quota_strings(region.allotment.as_decimals()),
             "allocated": quota_strings(allocated.get(region.name, {}))}
            for region in spec.regions
        ],
        "seededPlans": seeded,
    }
    for entry in fields["regions"]:  # what each region's certificate is (controller/tls.py)
        if entry["name"] in tls.regions:
            entry["certificate"] = tls.regions[entry["name"]]
    if tls.platform is not None:
        fields["platformCertificate"] = tls.platform

    ready = _ready_condition(op, name, spec)
    # Its domains are in service whatever its admins (admission.domain_taken): an admin that is not
    # bound changes nothing for its tenants.
    serving = ready.status is True
    admin_problems = reseller_admin_problems(spec.admins, name)
    if serving and admin_problems:
        ready = Condition("Ready", False, INVALID_ADMIN, " ".join(admin_problems) + " That subject is not bound; "
                          "the reseller's other admins and its tenants are not affected.")
    # A binding to a platform ClusterRole that does not exist grants nothing: say so (platform_roles.py).
    conditions = [ready, tls.condition, roles_bound_condition(bound_platform_roles(children), op.platform_roles)]
    total = fields["licenses"]["total"]
    if licenses_used > total:
        conditions.append(Condition("LicensesOverused", True, "LicensesOverused",
                                    f"{licenses_used} tenants hold licences but the reseller has {total} "
                                    f"(spec.licenses {spec.licenses} + {total - spec.licenses} bought); existing "
                                    "tenants keep running, new ones are refused until licences are raised or "
                                    "bought, or tenants deleted."))
    else:
        conditions.append(Condition("LicensesOverused", False, "WithinLicenses",
                                    f"{licenses_used} of {total} licences are used."))
    await publish_status(op, body, fields, conditions)
    # From this status on, its domains are in service (or not): admission.domain_taken.
    op.book.set_reseller(reseller_terms(body, spec, ready=serving, purchased=purchased))
    if tls_failure is not None:
        raise tls_failure


def _ready_condition(op: Operator, name: str, spec: ResellerSpec) -> Condition:
    unknown = [r.name for r in spec.regions if r.name not in op.book.regions]
    if unknown:
        return Condition("Ready", False, "UnknownRegion",
                         f"Region(s) {', '.join(unknown)} do not exist on this platform; remove them from "
                         f"spec.regions or ask the platform to create them. Known: "
                         f"{', '.join(sorted(op.book.regions)) or 'none'}.")
    holder = op.book.email_holder(spec.email)
    if holder is not None and holder != ("reseller", name):
        return Condition("Ready", False, "DuplicateEmail",
                         f"E-mail address {spec.email} already belongs to another {holder[0]} on this platform; "
                         "use another address in spec.email.")
    conflict = domain_conflict(op, name, spec)
    if conflict:
        return Condition("Ready", False, "DomainConflict", conflict)
    return Condition("Ready", True, "Ready", f"Reseller {name} is set up in {len(spec.regions)} region(s).")


def domain_conflict(op: Operator, name: str, spec: ResellerSpec) -> str | None:
    """A domain of this reseller that equals or nests with a domain another reseller holds first (the
    one already serving it, else the older: admission.domain_taken). Tenants are not routed under
    such a domain (see controller/tls.py) until the reseller picks another."""
    mine = [r.domain for r in spec.regions] + ([spec.platform_domain] if spec.platform_domain else [])
    for domain in mine:
        taken = op.book.domain_taken(name, domain)
        if taken is not None:
            other, theirs = taken
            return (f"Domain {domain} collides with {theirs}, which reseller {other} already uses; its tenants "
                    "are not routed there. Choose a domain that is neither equal to nor nested with another "
                    "reseller's.")
    return None


async def _seed_default_plans(op: Operator, reseller: str, seeded: list[str]) -> list[str]:
    """Create each platform default Plan once. A plan the reseller later changed or deleted is never
    touched again: the names already seeded are remembered in status.seededPlans."""
    result = list(seeded)
    for plan in op.settings.default_plans:
        if plan.name in result:
            continue
        try:
            await op.client.create(build_default_plan(reseller, plan.name, plan.spec))
            log.info("Plan %s/%s was seeded from the platform defaults.", reseller_namespace(reseller), plan.name)
        except ApiError as error:
            if not error.conflict:  # 409: it exists already (a crash between create and status)
                raise
        result.append(plan.name)
    return result
