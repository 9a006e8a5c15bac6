"""Reconciling one Plan: validate it and count the tenants admitted on it."""

from __future__ import annotations

from tenantry.conditions import Condition
from tenantry.controller.context import Operator, publish_status
from tenantry.controller.specs import INVALID_SPEC, read_spec
from tenantry.naming import PLAN, reseller_from_namespace


async def reconcile_plan(op: Operator, namespace: str, name: str) -> None:
    body = op.store.get(PLAN, name, namespace)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    reseller = reseller_from_namespace(namespace) or ""
    spec, problem = read_spec(PLAN, body)
    tenants = sum(1 for _, record in op.book.admitted_of(reseller) if record.plan == name)
    if spec is None:
        message = f"{problem}. Tenants on this plan keep their admitted quota; new tenants are refused."
        await publish_status(op, body, {"tenants": tenants}, [Condition("Ready", False, INVALID_SPEC, message)])
        return
    await publish_status(op, body, {"tenants": tenants},
                         [Condition("Ready", True, "Ready", f"Plan {name} can be sold; {tenants} tenant(s) use it.")])
