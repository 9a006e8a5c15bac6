"""Tenants, Plans and Resellers checked at `kubectl apply`: the asynchronous refusals, answered sooner.

The decisions are those of the operator (`AdmissionBook.preview` in tenantry/admission.py, the spec models,
tenantry/subjects.py); nothing here decides differently. What the webhook adds is the timing: a refusal that is
certain is a denial at apply, one that may still change is a warning (kubectl prints `Warning:` lines) and the
object is stored, to be admitted by itself when the blocker goes. The status conditions stay the source of
truth: these rules fail open (failure policy Ignore), and the operator checks everything again.

Certain (denied): a spec the model refuses; a Tenant outside a reseller's control namespace; an unknown region
or plan (confirmed by one read of the API, so that a Plan created a moment ago, which the operator has not
seen yet, is not refused); an owner Tenantry never binds; more custom domains than the plan allows; an e-mail
address or custom domain that a reseller or an admitted tenant holds (the holder confirmed by a read); a
region change of an admitted tenant; a Reseller admin Tenantry never binds.
May change (warned): no licence free now; not enough of the reseller's allotment now; the reseller inactive; an
e-mail address or domain claimed by an older tenant that is still waiting; a plan not seeded yet (one of the
platform's default plans, which the operator creates in a new reseller namespace); a Plan larger than the
reseller's allotment in every region it sells in (the platform may raise allotments); a new Tenant whose
namespace name is held by a namespace not made for it (retained from an earlier tenant of the same name, or
made outside Tenantry: NamespaceTaken, tenantry/namespace_claim.py), found by one read on creation.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from tenantry.admission import (
    DUPLICATE_EMAIL,
    HOST_CONFLICT,
    INSUFFICIENT_CAPACITY,
    LICENSE_LIMIT_REACHED,
    RESELLER_INACTIVE,
    UNKNOWN_PLAN,
    UNKNOWN_REGION,
    full_quota,
)
from tenantry.controller.specs import INVALID_SPEC, read_spec, tenant_claim
from tenantry.namespace_claim import NAMESPACE_TAKEN, namespace_claim, namespace_taken_message
from tenantry.naming import (
    GROUP,
    PLAN,
    QUOTA_RESOURCES,
    REGION,
    RESELLER,
    TENANT,
    reseller_from_namespace,
    tenant_namespace,
)
from tenantry.quantity import format_quantity
from tenantry.webhook.registry import (
    ALL_NAMESPACES,
    CREATE,
    IGNORE,
    UPDATE,
    ClusterView,
    Exempt,
    Request,
    Verdict,
    allow,
    deny,
    rule,
)

NOT_IN_RESELLER_NAMESPACE = "NotInResellerNamespace"
INVALID_ADMIN = "InvalidAdmin"

# Refusals that may go away by themselves: the object is stored, with a warning.
_MAY_CHANGE = {LICENSE_LIMIT_REACHED, INSUFFICIENT_CAPACITY, RESELLER_INACTIVE}
# What a waiting tenant is told, by reason.
_WAITS = {
    LICENSE_LIMIT_REACHED: "no licence is free now; the tenant will wait (Admitted=False, LicenseLimitReached)",
    INSUFFICIENT_CAPACITY: "the reseller's allotment has no room for this plan now; the tenant will wait "
                           "(Admitted=False, InsufficientCapacity)",
    RESELLER_INACTIVE: "the reseller cannot get new tenants now; the tenant will wait (Admitted=False, "
                       "ResellerInactive)",
}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _with_created(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object with a creationTimestamp: the API server sets it before validating admission, but an
    empty one would make a new tenant the oldest of all."""
    meta = body.get("metadata") or {}
    if meta.get("creationTimestamp"):
        return body
    return {**body, "metadata": {**meta, "creationTimestamp": _now()}}


def _parse(kind: str, body: Mapping[str, Any]) -> tuple[Any, str | None]:
    """The spec as the operator reads it, never from its cache of parsed specs: that cache is keyed by uid and
    generation, and a request the webhook denies carries a generation that a corrected retry carries again."""
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k != "uid"}
    return read_spec(kind, {**body, "metadata": meta})


async def _exists(view: ClusterView, kind: str, name: str, namespace: str | None = None) -> bool:
    """A fresh answer from the API: the cache may not have seen an object created a moment ago."""
    return view.store.get(kind, name, namespace) is not None or await view.read(kind, name, namespace) is not None


async def _holder_confirmed(view: ClusterView, email: str, key: tuple[str, str]) -> bool | None:
    """For a DuplicateEmail: True when a reseller or an admitted tenant holds the address (certain), False
    when a waiting tenant does (may change), None when the holder is gone (the cache lagged)."""
    holder = view.book.email_holder(email)
    if holder is None:
        return None
    kind, who = holder
    if kind == "reseller":
        return True if await _exists(view, RESELLER, str(who)) else None
    reseller, name = str(who[0]), str(who[1])  # type: ignore[index]
    claim = view.book.tenant((reseller, name))
    if claim is None or (reseller, name) == key:
        return None
    if view.book.record_of(claim) is None:
        return False
    return True if await _exists(view, TENANT, name, f"reseller-{reseller}") else None


def _host_certain(view: ClusterView, claim: Any) -> bool:
    """For a HostConflict: True unless every contested domain is held by a tenant still waiting."""
    for host in claim.domains:
        holder = view.book.host_holder(host)
        if holder is not None and holder != claim.key:
            other = view.book.tenant(holder)
            if other is not None and view.book.record_of(other) is None:
                continue  # an older tenant still waiting: it may be deleted or refused
        if view.book.host_problem(replace(claim, domains=(host,))):
            return True
    return False


async def _refusal(view: ClusterView, request: Request, claim: Any, reason: str, message: str) -> Verdict:
    """A denial when the refusal is certain, else the object passes with a warning."""
    said = f"{message} (Admitted=False, {reason})"
    if reason in _MAY_CHANGE:
        return allow(f"{_WAITS[reason]}: {message}")
    if reason == UNKNOWN_PLAN:
        if await _exists(view, PLAN, claim.plan, request.namespace):
            return allow()  # created a moment ago: the operator sees it within a second
        if claim.plan in view.default_plans:
            return allow(f"plan {claim.plan} is one of the platform's default plans and is not in "
                         f"{request.namespace} yet; the tenant waits until it is (or for spec.plan to name "
                         "another plan).")
        return deny(reason, said)
    if (reason == UNKNOWN_REGION and claim.region not in view.book.regions
            and await _exists(view, REGION, claim.region)):
        return allow()  # created a moment ago
    if reason == DUPLICATE_EMAIL:
        certain = await _holder_confirmed(view, claim.email, claim.key)
        if certain is None:
            return allow()
        if not certain:
            return allow(f"{message} An older tenant still waiting holds it: this tenant waits too (Admitted=False, "
                         f"{reason}).")
    if reason == HOST_CONFLICT and not _host_certain(view, claim):
        return allow(f"{message} An older tenant still waiting holds it: this one waits (Admitted=False, {reason}).")
    return deny(reason, said)


@rule("tenants", group=GROUP, resources=("tenants",), operations=(CREATE, UPDATE), failure_policy=IGNORE,
      namespaces=ALL_NAMESPACES, exempt=Exempt.OPERATOR,
      summary="Tenants at apply: unknown region or plan, an owner never bound, too many domains, a taken e-mail "
              "or domain, a region change: denied; no licence or allotment free now, a namespace of its name "
              "not made for it: warned")
async def check_tenant(request: Request, view: ClusterView) -> Verdict:
    verdict = await _tenant_verdict(request, view)
    if verdict.allowed and request.operation == CREATE:
        taken = await _namespace_taken(request, view)
        if taken:
            verdict = replace(verdict, warnings=(*verdict.warnings, taken))
    return verdict


async def _namespace_taken(request: Request, view: ClusterView) -> str | None:
    """Words for a new Tenant whose namespace name is held by a namespace not made for it. One read, on
    creation only: the operator's cache holds only namespaces with Tenantry's labels, and a retained one
    has lost them."""
    reseller = reseller_from_namespace(request.namespace)
    if not reseller:
        return None
    namespace = await view.read("Namespace", tenant_namespace(reseller, request.name))
    if namespace is None or namespace_claim(namespace, _with_created(request.body), reseller).provisionable:
        return None
    return f"{namespace_taken_message(namespace)} (Ready=False, {NAMESPACE_TAKEN})"


async def _tenant_verdict(request: Request, view: ClusterView) -> Verdict:
    if not request.spec_changed():
        return allow()  # finalizers, labels, annotations
    body = _with_created(request.body)
    spec, problem = _parse(TENANT, body)
    if spec is None:
        return deny(INVALID_SPEC, f"{problem}.", code=422)
    reseller = reseller_from_namespace(request.namespace)
    if not reseller:
        return deny(NOT_IN_RESELLER_NAMESPACE, f"Tenants live in their reseller's control namespace (reseller-<name>), "
                    f"not in {request.namespace}; create it there.", code=422)
    claim = tenant_claim(body, spec)
    verdict = view.book.preview(claim)
    if not verdict.admitted:
        return await _refusal(view, request, claim, verdict.reason, verdict.message)
    if verdict.change_refused is not None:
        reason, message = verdict.change_refused
        if reason in _MAY_CHANGE:
            return allow(f"{message} (Ready=False, {reason})")
        if reason in (DUPLICATE_EMAIL, HOST_CONFLICT, UNKNOWN_PLAN):
            confirmed = await _refusal(view, request, claim, reason, message)
            if confirmed.allowed:
                return confirmed
        return deny(reason, f"{message} (the tenant stays admitted; Ready=False, {reason})")
    return allow()


def _plan_fits_nowhere(reseller: Any, quota: Mapping[str, Any]) -> str | None:
    """Words for a plan larger than the reseller's allotment in every region, or None."""
    wanted = full_quota(quota)
    shortfalls = []
    for region, allotment in sorted(reseller.allotments.items()):
        have = full_quota(allotment)
        short = [f"{r} {format_quantity(r, wanted[r])} > {format_quantity(r, have[r])}"
                 for r in QUOTA_RESOURCES if wanted[r] > have[r]]
        if not short:
            return None
        shortfalls.append(f"{region}: {', '.join(short)}")
    if not shortfalls:
        return None
    return "; ".join(shortfalls)


@rule("plans", group=GROUP, resources=("plans",), operations=(CREATE, UPDATE), failure_policy=IGNORE,
      namespaces=ALL_NAMESPACES, exempt=Exempt.OPERATOR,
      summary="Plans at apply: a spec the model refuses is denied; a plan larger than the reseller's allotment in "
              "every region is warned")
def check_plan(request: Request, view: ClusterView) -> Verdict:
    if not request.spec_changed():
        return allow()
    spec, problem = _parse(PLAN, request.body)
    if spec is None:
        return deny(INVALID_SPEC, f"{problem}.", code=422)
    reseller = view.book.resellers.get(reseller_from_namespace(request.namespace) or "")
    if reseller is None:
        return allow()
    too_big = _plan_fits_nowhere(reseller, spec.quota.as_decimals())
    if too_big:
        return allow(f"plan {request.name} is larger than reseller {reseller.name}'s allotment in every region it "
                     f"sells in ({too_big}); no tenant on it can be admitted until the platform raises an allotment "
                     "(Admitted=False, InsufficientCapacity).")
    return allow()


@rule("resellers", group=GROUP, resources=("resellers",), operations=(CREATE, UPDATE), failure_policy=IGNORE,
      namespaces=ALL_NAMESPACES, exempt=Exempt.OPERATOR,
      summary="Resellers at apply: a spec the model refuses, or an admin Tenantry never binds, is denied")
def check_reseller(request: Request, view: ClusterView) -> Verdict:
    if not request.spec_changed():
        return allow()
    spec, problem = _parse(RESELLER, request.body)
    if spec is None:
        return deny(INVALID_SPEC, f"{problem}.", code=422)
    from tenantry.subjects import reseller_admin_problems

    problems = reseller_admin_problems(spec.admins, request.name)
    if problems:
        return deny(INVALID_ADMIN, " ".join(problems))
    return allow()
