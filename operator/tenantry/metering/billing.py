"""Publishing a meter's billing ledger (tenantry.metering.ledger) where the reseller can read it.

Each reseller's usage and daily bills become ConfigMaps in its control namespace `reseller-<name>`,
which its admins may read (`tenantry-reseller` role) and nobody but the meters may write: the meter's
ServiceAccount gets write access to ConfigMaps there, and nowhere else, through the RoleBinding
`tenantry-meter-billing` the operator makes in every control namespace (builders/billing.py).
They carry `app.kubernetes.io/managed-by: tenantry-meter`, not the operator's label, so the operator
never takes them for its own children (and never prunes them).

Level-based like the rest: what the ledger says is applied (server-side apply) when it differs from
what was last published; a failed write is tried again with back-off; a namespace that is gone (the
reseller was deleted) drops the reseller from the ledger.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from tenantry.kube import ApiError, KubeClient
from tenantry.metering.ledger import BillingLedger
from tenantry.naming import LABEL_MANAGED_BY, LABEL_REGION, LABEL_RESELLER, reseller_namespace
from tenantry.pacing import RetryPacer

log = logging.getLogger("tenantry.meter.billing")

MANAGED_BY_METER = "tenantry-meter"
LABEL_BILLING = "tenantry.dev/billing"  # usage | bill
LABEL_DAY = "tenantry.dev/day"
USAGE_KEY, BILL_KEY = "usage.json", "bill.json"


def usage_config_map_name(region: str) -> str:
    return f"tenantry-usage-{region}"


def bill_config_map_name(day: str, region: str) -> str:
    return f"tenantry-bill-{day}-{region}"


def _labels(reseller: str, region: str, kind: str) -> dict[str, str]:
    return {LABEL_MANAGED_BY: MANAGED_BY_METER, LABEL_RESELLER: reseller, LABEL_REGION: region,
            LABEL_BILLING: kind}


def build_usage_config_map(document: Mapping[str, Any]) -> dict[str, Any]:
    reseller, region = document["reseller"], document["region"]
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": usage_config_map_name(region), "namespace": reseller_namespace(reseller),
                         "labels": _labels(reseller, region, "usage")},
            "data": {USAGE_KEY: json.dumps(document, indent=1, sort_keys=True)}}


def build_bill_config_map(document: Mapping[str, Any]) -> dict[str, Any]:
    reseller, region, day = document["reseller"], document["region"], document["day"]
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": bill_config_map_name(day, region), "namespace": reseller_namespace(reseller),
                         "labels": {**_labels(reseller, region, "bill"), LABEL_DAY: day}},
            "data": {BILL_KEY: json.dumps(document, indent=1, sort_keys=True)}}


async def publish(client: KubeClient, ledger: BillingLedger) -> bool:
    """Bring the reseller-readable ConfigMaps in line with the ledger; False when a write failed."""
    ok = True
    for reseller in ledger.resellers():
        try:
            document = ledger.usage_document(reseller)
            if document is not None and not ledger.usage_is_published(reseller, document):
                await client.apply(build_usage_config_map(document))
                ledger.usage_published(reseller, document)
            for day in ledger.complete_days(reseller):
                await client.apply(build_bill_config_map(ledger.bill_document(reseller, day)))
                ledger.bill_published(reseller, day)
                log.info("The wholesale bill of reseller %s for %s in region %s is published.", reseller, day,
                         ledger.region)
            for day in ledger.expired_bills(reseller):
                await client.delete("ConfigMap", bill_config_map_name(day, ledger.region), reseller_namespace(reseller))
                ledger.bill_removed(reseller, day)
        except ApiError as error:
            if error.not_found:  # its control namespace is gone: the reseller was deleted
                log.info("Reseller %s is gone; its usage and bills are no longer published.", reseller)
                ledger.forget(reseller)
                continue
            log.warning("Could not publish the usage or bills of reseller %s: %s", reseller, error)
            ok = False
        except (TimeoutError, aiohttp.ClientError) as error:
            log.warning("Could not publish the usage or bills of reseller %s: %s", reseller, error)
            ok = False
    # The ledger now says what was published; the meter's next tick writes it (off the event loop,
    # and never while another write of it is under way).
    return ok


class BillingPublisher:
    """Runs `publish` when woken (after a tick that closed a window), with back-off while it fails."""

    def __init__(self, client: KubeClient, ledger: BillingLedger, *, max_backoff: float = 300.0):
        self.client, self.ledger = client, ledger
        self.pacer = RetryPacer(1.0, max_backoff)

    def wake(self) -> None:
        self.pacer.wake()

    async def run(self) -> None:
        while True:
            try:
                ok = await publish(self.client, self.ledger)
            except asyncio.CancelledError:
                raise
            except Exception:  # the meter must keep metering whatever happens here
                log.exception("Publishing usage and bills failed; trying again.")
                ok = False
            await self.pacer.pause(ok)
