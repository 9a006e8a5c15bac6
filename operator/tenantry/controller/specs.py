"""Reading specs at the edge: the typed model, or the first problem in words a person can act on,
plus the conversions between a Tenant's status and its admission record."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tenantry.admission import AdmissionRecord, PlanTerms, ResellerTerms, TenantClaim
from tenantry.builders.common import quota_strings
from tenantry.models import PlanSpec, ResellerSpec, SpecError, TenantSpec, parse_spec, spec_problems
from tenantry.naming import reseller_from_namespace
from tenantry.quantity import QuantityError, parse_quantity
from tenantry.subjects import INVALID_ADMIN, tenant_owner_problems

INVALID_SPEC = "InvalidSpec"


# Parsed specs by (kind, uid, generation): every tenant's reconcile reads its reseller's, region's and
# plan's spec, and every watch event its own; parsing them again each time was some 4% of the
# operator's CPU during a wave. A custom resource's generation changes with its spec, and the models
# are frozen, so a cached spec is always the one parsing would give.
_parsed: dict[tuple[str, str, int], tuple[Any, str | None]] = {}
_PARSED_MAX = 20_000


def read_spec(kind: str, body: Mapping[str, Any]) -> tuple[Any, str | None]:
    """(spec, None) for a coherent object, (None, "spec.x: what to change") otherwise."""
    meta = body.get("metadata") or {}
    uid, generation = meta.get("uid"), meta.get("generation")
    if not uid or generation is None:
        return _read_spec(kind, body)
    key = (kind, uid, int(generation))
    result = _parsed.get(key)
    if result is None:
        if len(_parsed) >= _PARSED_MAX:
            _parsed.clear()  # old generations of edited objects; the live ones are parsed again once
        result = _parsed[key] = _read_spec(kind, body)
    return result


def _read_spec(kind: str, body: Mapping[str, Any]) -> tuple[Any, str | None]:
    try:
        spec = parse_spec(kind, body)
    except SpecError as error:
        return None, str(error)
    problems = spec_problems(spec)
    if problems:
        return None, "; ".join(str(p) for p in problems)
    return spec, None


def record_from_status(status: Mapping[str, Any] | None) -> AdmissionRecord | None:
    admission = (status or {}).get("admission")
    if not admission:
        return None
    try:
        quota = {k: parse_quantity(v) for k, v in (admission.get("quota") or {}).items()}
    except QuantityError:
        return None
    return AdmissionRecord(plan=admission.get("plan", ""), region=admission.get("region", ""), quota=quota)


def record_to_status(record: AdmissionRecord, admitted_at: str) -> dict[str, Any]:
    return {"plan": record.plan, "region": record.region, "quota": quota_strings(record.quota),
            "admittedAt": admitted_at}


def tenant_claim(body: Mapping[str, Any], spec: TenantSpec) -> TenantClaim:
    meta = body["metadata"]
    reseller = reseller_from_namespace(meta["namespace"]) or ""
    return TenantClaim(
        reseller=reseller,
        name=meta["name"],
        created=meta.get("creationTimestamp", ""),
        email=spec.email,
        region=spec.region,
        plan=spec.plan,
        domains=tuple(d.host for d in spec.domains),
        record=record_from_status(body.get("status")),
        uid=meta.get("uid", ""),
        verified_domains=tuple(d.get("host", "") for d in (body.get("status") or {}).get("domains") or ()
                               if d.get("verified")),
        owner_problems=tuple(tenant_owner_problems(spec.owners, reseller, meta["name"])),
    )


def reseller_terms(body: Mapping[str, Any], spec: ResellerSpec, *, ready: bool | None = None,
                   purchased: int = 0) -> ResellerTerms:
    """The reseller as admission sees it. `ready`: the Ready status just decided by its reconcile;
    None reads it from the object's status (a watch event, a start-up listing). `purchased`: licences
    it bought with LicenseOrders (not refunded), added to the platform's grant `spec.licenses`."""
    meta = body["metadata"]
    domains = {r.name: r.domain for r in spec.regions}
    current = {*domains.values(), *((spec.platform_domain,) if spec.platform_domain else ())}
    if ready is None:
        status = body.get("status") or {}
        # Ready, or not Ready only because an admin cannot be bound (its domains serve all the same).
        ready = any(c.get("type") == "Ready" and (c.get("status") == "True" or c.get("reason") == INVALID_ADMIN)
                    for c in status.get("conditions") or ())
        written = {r.get("domain") for r in status.get("regions") or ()}
        written.add((status.get("platformCertificate") or {}).get("host"))
        current &= written  # a domain changed since that status is not in service yet
    return ResellerTerms(
        name=meta["name"],
        created=meta.get("creationTimestamp", ""),
        email=spec.email,
        active=spec.active,
        licenses=spec.licenses + purchased,
        allotments={r.name: r.allotment.as_decimals() for r in spec.regions},
        domains=domains,
        platform_domain=spec.platform_domain,
        serving=frozenset(current) if ready else frozenset(),
    )


def plan_terms(spec: PlanSpec) -> PlanTerms:
    return PlanTerms(quota=spec.quota.as_decimals(), custom_domains=spec.custom_domains)


def decimal_quota(values: Mapping[str, Any]) -> dict[str, Decimal]:
    return {k: parse_quantity(v) for k, v in values.items()}
