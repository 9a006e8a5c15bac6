"""Level-based behaviour: an idle operator writes nothing, a restart with nothing changed writes
nothing, and a crash (SIGKILL) in the middle of a rollout converges with the ledger exact."""

from __future__ import annotations

import time
from collections import Counter

from support.cluster import WRITE_VERBS, audit_events, audit_offset, count_writes, wait_for
from support.operator import OPERATOR_USER, OperatorProcess
from support.platform import Platform, condition


def _settle(audit_log: str, quiet_seconds: float = 3.0, timeout: float = 60.0) -> None:
    """Wait until the operator has made no write for `quiet_seconds`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        offset = audit_offset(audit_log)
        time.sleep(quiet_seconds)
        if count_writes(audit_log, offset, user_agent_prefix="", user=OPERATOR_USER) == 0:
            return
    raise AssertionError("the operator kept writing")


def _writes(audit_log: str, offset: int, *names: str) -> Counter[str]:
    """The operator's writes since `offset` to objects of this test (their namespace or name holds
    one of `names`; other tests' clean-up may still be running), as "verb resource" counts."""
    def ours(ref: dict) -> bool:
        where = f"{ref.get('namespace') or ''}/{ref.get('name') or ''}"
        return any(name in where for name in names)

    return Counter(
        f"{e['verb']} {e['objectRef'].get('resource')}"
        + (f"/{e['objectRef']['subresource']}" if e["objectRef"].get("subresource") else "")
        for e in audit_events(audit_log, offset)
        if e.get("verb") in WRITE_VERBS and e.get("user", {}).get("username") == OPERATOR_USER
        and ours(e["objectRef"])
    )


def test_idle_operator_and_a_restart_with_nothing_changed_make_no_writes(
        platform: Platform, operator: OperatorProcess, audit_log: str) -> None:
    region, reseller = platform.setup()
    tenants = [platform.tenant(reseller, region) for _ in range(3)]
    for t in tenants:
        platform.wait_tenant(reseller, t)
    _settle(audit_log)

    offset = audit_offset(audit_log)
    time.sleep(10)
    idle = _writes(audit_log, offset, reseller, region)
    assert not idle, f"an idle operator wrote: {idle}"

    offset = audit_offset(audit_log)
    operator.restart()
    time.sleep(8)  # start-up lists everything and reconciles every object once
    writes = _writes(audit_log, offset, reseller, region)
    applied = [line for line in operator.log_text().splitlines()[-400:]
               if "; applying it." in line or "; creating it." in line]
    assert not writes, f"a restart with nothing changed made writes: {writes}; the operator said: {applied[-10:]}"


def test_crash_mid_rollout_converges_with_the_ledger_exact(platform: Platform, operator: OperatorProcess,
                                                           audit_log: str) -> None:
    region, reseller = platform.setup(licenses=5)
    names = [platform.unique_name("crash", max_length=40) for _ in range(9)]
    for index, name in enumerate(names):
        platform.tenant(reseller, region, name)
        if index == 4:
            operator.kill()  # SIGKILL in the middle of the rollout: no clean-up, no last writes
    operator.start()

    def decided() -> list[dict] | None:
        objs = [platform.tenant_obj(reseller, n) for n in names]
        if all(condition(o, "Admitted") is not None for o in objs):
            return objs  # type: ignore[return-value]
        return None

    objs = wait_for(decided, 90, message="every tenant decided after the crash")
    admitted = [o for o in objs if condition(o, "Admitted")["status"] == "True"]  # type: ignore[index]
    assert len(admitted) == 5
    for obj in objs:
        name = obj["metadata"]["name"]
        has_namespace = platform.namespace(f"{reseller}--{name}") is not None
        assert has_namespace == (obj in admitted), f"{name}: namespace {has_namespace}, admitted {obj in admitted}"
    platform.wait_status("Reseller", reseller, None,
                         lambda o: o["status"]["licenses"] == {"total": 5, "purchased": 0, "used": 5, "available": 0,
                                                                "selfServiceLimit": 100, "purchasedThisMonth": 0},
                         "ledger exact after the crash")


def test_a_field_the_operator_stops_setting_leaves_a_child_it_created(
        platform: Platform, operator: OperatorProcess) -> None:
    """Children the cache shows absent are created (POST), which records their fields as an Update by
    `tenantry`; a later apply must still remove what the operator no longer sets (controller/apply.py)."""
    region, reseller = platform.setup()
    tenant = platform.tenant(reseller, region)  # displayName: the tenant's name
    platform.wait_tenant(reseller, tenant)
    namespace = f"{reseller}--{tenant}"
    branding = platform.core.read_namespaced_config_map("tenantry-branding", namespace)
    assert branding.data["tenantDisplayName"] == tenant
    # It was created, not applied: its fields are tenantry's through an Update.
    assert [(m.manager, m.operation) for m in branding.metadata.managed_fields] == [("tenantry", "Update")]

    platform.patch("Tenant", tenant, {"spec": {"displayName": None}}, f"reseller-{reseller}")
    wait_for(lambda: "tenantDisplayName" not in (platform.core.read_namespaced_config_map(
        "tenantry-branding", namespace).data or {}), timeout=30,
        message="the display name the tenant no longer has to leave its branding ConfigMap")
    branding = platform.core.read_namespaced_config_map("tenantry-branding", namespace)
    assert branding.data["displayName"] == f"{reseller} Cloud"  # what is still wanted stays
    assert [(m.manager, m.operation) for m in branding.metadata.managed_fields] == [("tenantry", "Apply")]
