"""Reseller self-service licence purchases on the real control plane (issue 14), as the reseller's admin
with only the chart's `tenantry-reseller` role (impersonation), the platform admin deleting orders to
refund them, and the billing records arriving at a real HTTP receiver exactly once, across a sink
outage and a SIGKILL of the operator.

The module runs an operator of its own (the session's is stopped meanwhile and started again after):
its configuration sends licence order records to this module's receiver and retries a failing sink
every second at most.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from support.cloudevents_receiver import Receiver
from support.cluster import wait_for
from support.meter import FrozenClock, InProcessMeter, pending_pod
from support.operator import TEST_CONFIG, OperatorProcess
from support.platform import Platform, condition

GROUP, VERSION, PLURAL = "tenantry.dev", "v1alpha1", "licenseorders"
RECORD_TYPE = "dev.tenantry.license-order.v1"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def orders_operator(operator: OperatorProcess, receiver: Receiver,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    operator.stop()
    config = {**TEST_CONFIG, "licenseOrders": {"sink": receiver.url, "retryMaxSeconds": 1}}
    process = OperatorProcess(operator.kubeconfig, tmp_path_factory.mktemp("orders-operator"), config)
    try:
        process.start()
        yield process
    finally:
        process.stop()
        operator.start()


@pytest.fixture
def shop(orders_operator: OperatorProcess, api_client: client.ApiClient,
         unique_name: Callable[..., str]) -> Iterator[Platform]:
    platform = Platform(api_client, unique_name)
    yield platform
    platform.cleanup()


# -- helpers ----------------------------------------------------------------------------------------


def admin_of(reseller: str) -> str:
    return f"admin@{reseller}.example"  # support.platform's default reseller admin


class Orders:
    """LicenseOrders as one principal sees them (the reseller's admin, or the platform admin)."""

    def __init__(self, api: client.ApiClient, reseller: str):
        self.api = client.CustomObjectsApi(api)
        self.namespace = f"reseller-{reseller}"

    def buy(self, quantity: int) -> str:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LicenseOrder",
                "metadata": {"generateName": "order-"}, "spec": {"quantity": quantity}}
        return str(self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)
                   ["metadata"]["name"])

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name))
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def decided(self, name: str, timeout: float = 30) -> dict[str, Any]:
        return wait_for(lambda: (o := self.get(name)) and (o.get("status") or {}).get("phase") in
                        ("Fulfilled", "Rejected") and o, timeout, message=f"order {name} decided")

    def delete(self, name: str) -> None:
        self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)


def licences(platform: Platform, reseller: str) -> dict[str, int]:
    return dict(((platform.get("Reseller", reseller) or {}).get("status") or {}).get("licenses") or {})


def wait_licences(platform: Platform, reseller: str, **expected: int) -> dict[str, int]:
    return wait_for(lambda: (found := licences(platform, reseller)) and
                    all(found.get(k) == v for k, v in expected.items()) and found,
                    timeout=30, message=f"reseller {reseller} licences {expected}")


def ready_reseller(platform: Platform, *, licenses: int = 0, limit: int | None = None,
                   active: bool = True) -> tuple[str, str]:
    region = platform.region()
    overrides: dict[str, Any] = {"active": active}
    if limit is not None:
        overrides["licensePolicy"] = {"selfServiceLimit": limit}
    reseller = platform.reseller(region, licenses=licenses, **overrides)
    platform.wait_namespace(f"reseller-{reseller}")
    platform.plan(reseller)
    # The admin's RoleBinding in the control namespace is what lets it buy.
    wait_licences(platform, reseller, total=licenses)
    return region, reseller


def order_id(uid: str, kind: str = "order") -> str:
    return hashlib.sha256(f"license-{kind}|{uid}".encode()).hexdigest()


def records_of(receiver: Receiver, reseller: str) -> list[dict[str, Any]]:
    return [r for r in receiver.records() if r.get("type") == RECORD_TYPE and r.get("subject") == reseller]


def plugin(kubeconfig: str | Path, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    """`kubectl tenantry ...` as a person runs it: the installed plugin, its own process, a kubeconfig,
    and `--as` to act as that person."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    command = [sys.executable, "-m", "tenantry.plugin", "--kubeconfig", str(kubeconfig),
               *(["--as", user] if user else []), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def kubeconfig_as(kubeconfig: str, user: str, namespace: str, path: Path) -> Path:
    """A kubeconfig whose user acts as `user` (`as:` in the user entry, as kubectl understands it) and
    whose context's namespace is the reseller's: what a platform hands a reseller admin in a test."""
    config = yaml.safe_load(Path(kubeconfig).read_text())
    config["users"][0]["user"]["as"] = user
    config["contexts"][0]["context"]["namespace"] = namespace
    path.write_text(yaml.safe_dump(config))
    return path


# -- buying -----------------------------------------------------------------------------------------


def test_a_reseller_buys_licences_in_each_tier_with_kubectl_tenantry_and_sees_the_price(
        shop: Platform, kubeconfig: str, receiver: Receiver, tmp_path: Path) -> None:
    _, reseller = ready_reseller(shop, licenses=2, limit=1000)
    # The reseller admin's own kubeconfig: its user acts as the admin, its namespace is reseller-<name>.
    mine = kubeconfig_as(kubeconfig, admin_of(reseller), f"reseller-{reseller}", tmp_path / "admin.kubeconfig")
    expected = {1: ("1-9", "25.00", "25.00"), 10: ("10-49", "20.00", "200.00"),
                50: ("50-99", "17.50", "875.00"), 100: ("100+", "15.00", "1500.00")}
    names = {}
    for quantity, (tier, unit, amount) in expected.items():
        bought = plugin(mine, "buy", str(quantity))
        assert bought.returncode == 0, bought.stdout + bought.stderr
        first = bought.stdout.splitlines()[0]
        assert f": {quantity} licences, tier {tier}, {unit} USD each = {amount} USD" in first, bought.stdout
        assert "Result: Fulfilled" in bought.stdout
        names[quantity] = first.split()[1].rstrip(":")
    shown = plugin(mine, "licenses")
    assert shown.returncode == 0, shown.stderr
    header, row = shown.stdout.splitlines()[:2]
    assert header.split()[:6] == ["RESELLER", "GRANTED", "PURCHASED", "TOTAL", "USED", "AVAILABLE"]
    assert row.split()[:6] == [reseller, "2", "161", "163", "0", "163"]
    assert "You may buy 839 more licences this month" in shown.stdout
    as_json = json.loads(plugin(mine, "licenses", "-o", "json").stdout)
    assert {o["name"]: (o["tier"], o["amount"], o["phase"]) for o in as_json["orders"]} == {
        names[q]: (tier, amount, "Fulfilled") for q, (tier, _, amount) in expected.items()}
    wait_licences(shop, reseller, total=163, purchased=161, used=0, available=163, purchasedThisMonth=161,
                  selfServiceLimit=1000)
    # One record per order, priced as the order says, and each order marked sent.
    got = wait_for(lambda: len(found := records_of(receiver, reseller)) >= 4 and found, timeout=30,
                   message="4 order records")
    assert len(got) == 4
    by_order = {r["data"]["order"]: r for r in got}
    orders = Orders(shop.api, reseller)
    for quantity, name in names.items():
        order = orders.get(name)
        assert order is not None
        record = by_order[name]
        assert record["id"] == order_id(order["metadata"]["uid"])
        assert record["source"] == f"tenantry/reseller/{reseller}"
        assert (record["data"]["quantity"], record["data"]["tier"], record["data"]["amount"]) == (
            quantity, expected[quantity][0], expected[quantity][2])
        assert wait_for(lambda n=name: (o := orders.get(n)) and o["status"]["billing"]["order"]["sent"],
                        timeout=15, message=f"{name} marked sent")


def test_bought_licences_admit_a_waiting_tenant(shop: Platform,
                                                impersonated_client: Callable[..., client.ApiClient]) -> None:
    region, reseller = ready_reseller(shop, licenses=0)
    tenant = shop.tenant(reseller, region)
    shop.wait_refused(reseller, tenant, "LicenseLimitReached")
    refused = condition(shop.tenant_obj(reseller, tenant), "Admitted")
    assert refused is not None and "kubectl tenantry buy" in refused["message"]
    orders = Orders(impersonated_client(admin_of(reseller)), reseller)
    assert orders.decided(orders.buy(1))["status"]["phase"] == "Fulfilled"
    shop.wait_tenant(reseller, tenant, timeout=60)
    wait_licences(shop, reseller, total=1, purchased=1, used=1, available=0)


def test_an_order_over_the_self_service_limit_is_rejected_saying_how_many_fit(
        shop: Platform, impersonated_client: Callable[..., client.ApiClient], receiver: Receiver,
        kubeconfig: str) -> None:
    _, reseller = ready_reseller(shop, licenses=1, limit=20)
    orders = Orders(impersonated_client(admin_of(reseller)), reseller)
    assert orders.decided(orders.buy(15))["status"]["phase"] == "Fulfilled"
    rejected = plugin(kubeconfig, "buy", "10", "--reseller", reseller, user=admin_of(reseller))
    assert rejected.returncode == 1, rejected.stdout + rejected.stderr
    assert "Result: Rejected (OverSelfServiceLimit)" in rejected.stdout
    assert "order at most 5, or ask the platform to raise spec.licensePolicy.selfServiceLimit" in rejected.stdout
    name = rejected.stdout.split()[1].rstrip(":")
    order = orders.decided(name)
    assert order["status"]["phase"] == "Rejected"
    ready = condition(order, "Ready")
    assert ready is not None and (ready["status"], ready["reason"]) == ("False", "OverSelfServiceLimit")
    assert "This order of 10 would bring" in ready["message"] and "purchases to 25, over your self-service " \
        "limit of 20; order at most 5, or ask the platform to raise spec.licensePolicy.selfServiceLimit" \
        in ready["message"]
    assert order["status"]["price"]["amount"] == "200.00"  # what it would have cost
    event = shop.wait_event(f"reseller-{reseller}", name, "OverSelfServiceLimit", "Warning")
    assert "order at most 5" in (event.message or "")
    wait_licences(shop, reseller, total=16, purchased=15, purchasedThisMonth=15)
    # The platform raises the limit: the rejected order stays rejected (decided once), a new one passes.
    shop.patch("Reseller", reseller, {"spec": {"licensePolicy": {"selfServiceLimit": 25}}})
    assert orders.decided(orders.buy(10))["status"]["phase"] == "Fulfilled"
    assert (orders.get(name) or {})["status"]["phase"] == "Rejected"
    wait_licences(shop, reseller, total=26, purchased=25, selfServiceLimit=25)
    assert not [r for r in records_of(receiver, reseller) if r["data"]["order"] == name]


def test_an_inactive_reseller_cannot_buy(shop: Platform,
                                         impersonated_client: Callable[..., client.ApiClient]) -> None:
    _, reseller = ready_reseller(shop, licenses=3, active=False)
    orders = Orders(impersonated_client(admin_of(reseller)), reseller)
    order = orders.decided(orders.buy(5))
    ready = condition(order, "Ready")
    assert order["status"]["phase"] == "Rejected"
    assert ready is not None and ready["reason"] == "ResellerInactive"
    assert "ask the platform to reactivate it" in ready["message"]
    wait_licences(shop, reseller, total=3, purchased=0)


def test_the_reseller_can_neither_change_nor_delete_an_order_and_a_changed_spec_is_not_priced_again(
        shop: Platform, impersonated_client: Callable[..., client.ApiClient], api_client: client.ApiClient) -> None:
    _, reseller = ready_reseller(shop, licenses=0)
    orders = Orders(impersonated_client(admin_of(reseller)), reseller)
    name = orders.buy(3)
    decided = orders.decided(name)
    api, namespace = orders.api, orders.namespace
    attempts = {
        "patch": lambda: api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                                            {"spec": {"quantity": 300}}),
        "update": lambda: api.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                                               {**decided, "spec": {"quantity": 300}}),
        "delete": lambda: api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name),
        "status": lambda: api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": {"phase": "Rejected"}}),
    }
    for verb, attempt in attempts.items():
        with pytest.raises(client.ApiException) as refused:
            attempt()
        assert refused.value.status == 403, verb
    # Even the platform admin's edit of the spec does not re-price a decided order.
    admin = Orders(api_client, reseller)
    admin.api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, {"spec": {"quantity": 300}})
    wait_licences(shop, reseller, total=3, purchased=3)
    after = admin.get(name)
    assert after is not None and after["status"]["quantity"] == 3 and after["status"]["price"]["amount"] == "75.00"


def test_someone_without_the_reseller_role_is_told_what_to_ask_for(shop: Platform, kubeconfig: str) -> None:
    _, reseller = ready_reseller(shop, licenses=1)
    namespace = f"reseller-{reseller}"
    for args, action in ((["tenants"], "list tenants"), (["buy", "1"], "create licenseorders"),
                         (["licenses"], f"get reseller {reseller}"), (["bill"], "list configmaps")):
        refused = plugin(kubeconfig, *args, "-n", namespace, user="stranger@elsewhere.example")
        assert refused.returncode == 1, refused.stdout
        where = "" if action.startswith("get reseller") else f" in {namespace}"
        assert refused.stderr.strip() == (f"error: you may not {action}{where}: ask your platform admin for the "
                                          "tenantry-reseller role"), refused.stderr
    assert Orders(shop.api, reseller).api.list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL)["items"] == []
    nowhere = plugin(kubeconfig, "licenses", user=admin_of(reseller))
    assert nowhere.returncode == 1 and "which reseller?" in nowhere.stderr


# -- refunds ----------------------------------------------------------------------------------------


def test_a_platform_admin_deleting_an_order_refunds_it_and_nobody_is_evicted(
        shop: Platform, impersonated_client: Callable[..., client.ApiClient], api_client: client.ApiClient,
        receiver: Receiver) -> None:
    region, reseller = ready_reseller(shop, licenses=0)
    orders = Orders(impersonated_client(admin_of(reseller)), reseller)
    name = orders.buy(2)
    uid = orders.decided(name)["metadata"]["uid"]
    tenants = [shop.tenant(reseller, region), shop.tenant(reseller, region)]
    for tenant in tenants:
        shop.wait_tenant(reseller, tenant, timeout=60)
    Orders(api_client, reseller).delete(name)
    wait_for(lambda: orders.get(name) is None, timeout=30, message=f"order {name} gone")
    wait_licences(shop, reseller, total=0, purchased=0, used=2)
    shop.wait_condition("Reseller", reseller, None, "LicensesOverused", "True", "LicensesOverused")
    for tenant in tenants:  # sticky: still admitted and Ready
        shop.wait_tenant(reseller, tenant)
    mine = {r["id"]: r for r in records_of(receiver, reseller)}
    assert set(mine) == {order_id(uid), order_id(uid, "refund")}
    refund = mine[order_id(uid, "refund")]
    assert (refund["data"]["amount"], refund["data"]["quantity"], refund["data"]["order"]) == ("-50.00", 2, name)


def test_records_are_sent_exactly_once_across_a_sink_outage_and_a_sigkill(
        shop: Platform, impersonated_client: Callable[..., client.ApiClient], api_client: client.ApiClient,
        receiver: Receiver, orders_operator: OperatorProcess) -> None:
    _, reseller = ready_reseller(shop, licenses=0)
    orders = Orders(impersonated_client(admin_of(reseller)), reseller)
    receiver.failing = True
    try:
        names = [orders.buy(quantity) for quantity in (3, 12, 60)]
        decided = [orders.decided(name) for name in names]
        assert all(o["status"]["phase"] == "Fulfilled" and o["status"]["billing"]["order"]["sent"] is False
                   for o in decided)
        refused_before = receiver.refused
        wait_for(lambda: receiver.refused > refused_before, timeout=15, message="the sink refusing a batch")
        # A refund while the sink is down: the order stays (Terminating, Refunded) until its record is out.
        Orders(api_client, reseller).delete(names[0])
        wait_for(lambda: (o := orders.get(names[0])) and o["status"]["phase"] == "Refunded", timeout=30,
                 message="order refunded, waiting for the sink")
        wait_licences(shop, reseller, total=72, purchased=72)
        orders_operator.kill()
        orders_operator.start()
        assert orders.get(names[0]) is not None  # never let go without its refund record
    finally:
        receiver.failing = False
    wait_for(lambda: orders.get(names[0]) is None, timeout=60, message="the refunded order gone")
    uids = [o["metadata"]["uid"] for o in decided]
    expected = {order_id(uid) for uid in uids} | {order_id(uids[0], "refund")}
    wait_for(lambda: {r["id"] for r in records_of(receiver, reseller)} == expected, timeout=60,
             message="every record delivered")
    for name in names[1:]:
        wait_for(lambda n=name: (o := orders.get(n)) and o["status"]["billing"]["order"]["sent"], timeout=30,
                 message=f"{name} marked sent")
    delivered = [r["id"] for r in records_of(receiver, reseller)]
    assert sorted(delivered) == sorted(expected), "a record was delivered twice"
    wait_licences(shop, reseller, total=72, purchased=72)


# -- usage and bills --------------------------------------------------------------------------------

PLAN_PRICING = {"currency": "EUR", "monthly": "19.00", "cpu": "0.05", "memory": "0.006", "storage": "0.0004"}
REGION_PRICING = {"currency": "USD", "cpu": "0.020", "memory": "0.0025", "storage": "0.00015"}
BIG = {"cpu": "4", "memory": "4Gi", "storage": "10Gi", "pods": "10"}
METER_ACCOUNT = "system:serviceaccount:tenantry-system:tenantry-meter"


def statement_csv(records: Path, reseller: str, start: str, end: str, out: Path) -> list[dict[str, str]]:
    """`tenantry bill` as the platform runs it, its CSV read back."""
    import csv

    done = subprocess.run([sys.executable, "-m", "tenantry", "bill", str(records), "--from", start, "--to", end,
                           "--reseller", reseller, "--format", "csv", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    with open(out / f"{reseller}-{start}-{end}.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def cents(amount: str) -> str:
    from decimal import ROUND_HALF_EVEN, Decimal

    return str(Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def test_usage_and_the_next_days_bill_shown_by_the_plugin_match_tenantry_bill_to_the_cent(
        shop: Platform, api_client: client.ApiClient, kubeconfig: str, tmp_path: Path,
        can_i: Callable[..., bool]) -> None:
    import datetime

    core = client.CoreV1Api(api_client)
    region = shop.region(pricing=REGION_PRICING)
    reseller = shop.reseller(region, licenses=5)
    namespace = f"reseller-{reseller}"
    shop.wait_namespace(namespace)
    shop.plan(reseller, quota=BIG, pricing=PLAN_PRICING)
    # The meters may write ConfigMaps in this control namespace (the operator's RoleBinding), nowhere else.
    wait_for(lambda: can_i(METER_ACCOUNT, [], "create", "configmaps", namespace), timeout=30,
             message="the meters' write access to the control namespace")
    assert not can_i(METER_ACCOUNT, [], "create", "configmaps", "default")
    assert not can_i(METER_ACCOUNT, [], "update", "tenants", namespace, group=GROUP)
    tenants = [shop.tenant(reseller, region), shop.tenant(reseller, region)]
    uids = []
    for tenant, cpu in zip(tenants, ("500m", "1"), strict=True):
        shop.wait_tenant(reseller, tenant, timeout=60)
        pending_pod(core, f"{reseller}--{tenant}", "web-1", cpu, "256Mi", counted=True)
        uids.append((shop.tenant_obj(reseller, tenant) or {})["metadata"]["uid"])

    today = datetime.datetime.now(datetime.UTC).date()
    midnight = int(datetime.datetime.combine(today, datetime.time(), tzinfo=datetime.UTC).timestamp())
    yesterday = (today - datetime.timedelta(days=1)).isoformat()
    clock = FrozenClock(midnight - 3 * 3600)  # yesterday 21:00 UTC
    records = tmp_path / "records.jsonl"
    meter = InProcessMeter(kubeconfig, region, tmp_path / "spool", f"file:{records}", clock, port=-1)
    admin = admin_of(reseller)
    try:
        meter.sees(uids[0], "0.5")
        meter.sees(uids[1], "1")
        clock.now = midnight - 3600 + 600  # 23:10: two windows closed, yesterday is not over
        meter.tick()
        # (Read from the ConfigMap: the plugin shows this month's usage, and yesterday may be last month.)
        wait_for(lambda: json.loads(core.read_namespaced_config_map(f"tenantry-usage-{region}", namespace)
                                    .data["usage.json"])["through"] == f"{yesterday}T23:00:00Z", timeout=30,
                 message="usage through 23:00")
        early = json.loads(plugin(kubeconfig, "bill", "--day", yesterday, "-n", namespace, "-o", "json",
                                  user=admin).stdout)
        assert early["lines"] == []  # a day's bill comes the day after
        pending_pod(core, f"{reseller}--{tenants[0]}", "web-2", "250m", "128Mi", counted=True)
        meter.sees(uids[0], "0.75")
        clock.now = midnight + 2 * 3600 + 60  # today 02:01: yesterday's last window closed
        meter.tick()
        assert meter.deliver()
        wait_for(lambda: json.loads(plugin(kubeconfig, "bill", "--day", yesterday, "-n", namespace, "-o", "json",
                                           user=admin).stdout)["lines"], timeout=30, message="yesterday's bill")
        wait_for(lambda: json.loads(plugin(kubeconfig, "usage", "-n", namespace, "-o", "json", user=admin)
                                    .stdout)["through"] == f"{today}T02:00:00Z", timeout=30,
                 message="usage through 02:00")
    finally:
        meter.stop()

    # The day's wholesale bill, as the reseller sees it, is the platform's daily summary to the cent.
    bill = json.loads(plugin(kubeconfig, "bill", "--day", yesterday, "-n", namespace, "-o", "json",
                             user=admin).stdout)
    rows = statement_csv(records, reseller, yesterday, today.isoformat(), tmp_path / "day")
    daily = {(r["date"], r["meter"], r["currency"]): cents(r["amount"]) for r in rows
             if r["section"] == "daily-wholesale"}
    assert {(line["day"], line["meter"], line["currency"]): line["rounded"] for line in bill["lines"]} == daily
    assert {"cpu", "memory", "license"} <= {meter for _, meter, _ in daily}
    totals = {r["currency"]: r["amount"] for r in rows if r["section"] == "total-wholesale"}
    assert {currency: total["rounded"] for currency, total in bill["total"].items()} == totals
    table = plugin(kubeconfig, "bill", "--day", yesterday, "-n", namespace, user=admin).stdout
    assert any(line.split()[:1] == ["TOTAL"] and totals["USD"] in line for line in table.splitlines()), table

    # Month to date per tenant, retail and wholesale, as the platform's statement of the month says.
    first = today.replace(day=1).isoformat()
    month = statement_csv(records, reseller, first, (today + datetime.timedelta(days=1)).isoformat(),
                          tmp_path / "month")
    from decimal import Decimal

    expected: dict[tuple[str, str, str], Decimal] = {}
    for r in month:
        if r["section"] in ("retail", "wholesale"):
            key = (r["tenant"], r["section"], r["currency"])
            expected[key] = expected.get(key, Decimal(0)) + Decimal(r["amount"])
    usage = json.loads(plugin(kubeconfig, "usage", "-n", namespace, "-o", "json", user=admin).stdout)
    shown = {(t["tenant"], side, currency): amounts["rounded"] for t in usage["tenants"]
             for side in ("retail", "wholesale") for currency, amounts in t[side].items()}
    assert shown == {key: cents(str(amount)) for key, amount in expected.items() if amount}
    listing = plugin(kubeconfig, "tenants", "-n", namespace, user=admin)
    assert listing.returncode == 0, listing.stderr
    line = next(row for row in listing.stdout.splitlines() if row.startswith(tenants[0] + " "))
    assert f"{shown[(tenants[0], 'retail', 'EUR')]} EUR" in line and "Active" in line
