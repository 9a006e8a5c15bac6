"""Operator configuration: typed, validated once at start-up, documented in the chart's values.

Read from a YAML file (`--config PATH` or `$TENANTRY_CONFIG`); every key has a default so that
`tenantry run` works with no file at all. Keys are camelCase, the same as the Helm values under
`config:`, so one name means one thing everywhere.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tenantry.naming import NAME_RE
from tenantry.quantity import QuantityError, parse_quantity
from tenantry.webhook.settings import WebhookSettings, own_namespace


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)


class DefaultPlan(_Model):
    """A Plan created once in every new reseller control namespace (the reseller may edit or delete it)."""

    name: str
    spec: dict[str, Any]

    @field_validator("name")
    @classmethod
    def _name_is_dns(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(f"default plan name {value!r} must match ^[a-z0-9]+(-[a-z0-9]+)*$")
        return value


class LicenseTier(_Model):
    """Wholesale licence price per licence-month for resellers holding at least `minLicenses` licences."""

    min_licenses: int = Field(alias="minLicenses", ge=1)
    price: Decimal


class SpoolVolumeSettings(_Model):
    """The PersistentVolumeClaim each meter asks for (its StatefulSet's claim template), unless
    `spoolClaim` names one the platform made. It holds the spool of records not yet delivered and the
    open window's checkpoint (and a `file:` sink's records): see docs/metering-and-billing.md."""

    size: str = Field("1Gi", description="storage requested per Region's meter (a Kubernetes quantity)")
    storage_class_name: str | None = Field(None, alias="storageClassName",
                                           description="StorageClass of the claim; null: the cluster's default "
                                           "class, \"\": no class (a pre-provisioned PersistentVolume)")

    @field_validator("size")
    @classmethod
    def _size_is_a_quantity(cls, value: str) -> str:
        try:
            size = parse_quantity(value)
        except QuantityError as error:
            raise ValueError(f"metering.spool.size {value!r} is not a Kubernetes quantity (e.g. 1Gi)") from error
        if size <= 0:
            raise ValueError(f"metering.spool.size {value!r} must be larger than zero")
        return value


class OrderTier(_Model):
    """One volume tier of LicenseOrders: an order of at least `minQuantity` licences pays `unitPrice` each."""

    min_quantity: int = Field(alias="minQuantity", ge=1)
    unit_price: Decimal = Field(alias="unitPrice", ge=0)

    @field_validator("unit_price", mode="before")
    @classmethod
    def _no_float(cls, value: object) -> object:
        if isinstance(value, float):
            raise ValueError(f"{value!r} is a float; write money as a quoted decimal string such as \"20.00\"")
        return value


class LicenseOrderSettings(_Model):
    """Reseller self-service licence purchases (LicenseOrder, tenantry.licensing)."""

    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    tiers: tuple[OrderTier, ...] = Field(
        (
            OrderTier(min_quantity=1, unit_price=Decimal("25.00")),
            OrderTier(min_quantity=10, unit_price=Decimal("20.00")),
            OrderTier(min_quantity=50, unit_price=Decimal("17.50")),
            OrderTier(min_quantity=100, unit_price=Decimal("15.00")),
        ),
        description="one-time price per licence by the order's quantity, ordered by minQuantity from 1",
    )
    self_service_limit: int = Field(100, alias="selfServiceLimit", ge=0,
                                    description="licences a reseller may buy per calendar month (UTC) unless its "
                                    "spec.licensePolicy.selfServiceLimit says otherwise")
    sink: str | None = Field(None, pattern=r"^(file:.+|https?://.+)$",
                             description="where order and refund records go; default metering.sink")
    retry_max_seconds: float = Field(60.0, alias="retryMaxSeconds", gt=0,
                                     description="longest wait between two tries of a failing sink")

    @field_validator("tiers")
    @classmethod
    def _tiers_start_at_one(cls, tiers: tuple[OrderTier, ...]) -> tuple[OrderTier, ...]:
        mins = [t.min_quantity for t in tiers]
        if not mins or mins[0] != 1 or mins != sorted(set(mins)):
            raise ValueError("licenseOrders.tiers must start at minQuantity 1 and ascend, each tier once")
        return tiers


class MeteringSettings(_Model):
    image: str = "tenantry:0.1.0"
    sink: str = "file:/var/lib/tenantry/billing/records.jsonl"
    interval: str = "15s"
    window: str = "1h"
    port: int = 9100
    namespace: str = Field("tenantry-system", description="where the operator runs the meters (StatefulSets)")
    enabled: bool = True
    service_account: str = Field("tenantry-meter", alias="serviceAccount",
                                 description="the meters' ServiceAccount (list/watch quotas and Tenantry kinds)")
    spool_claim: str | None = Field(None, alias="spoolClaim",
                                    description="an existing PersistentVolumeClaim for a meter's spool ({region} is "
                                    "replaced); default: a claim of the meter StatefulSet's own (`spool`)")
    spool: SpoolVolumeSettings = Field(SpoolVolumeSettings(),
                                       description="the claim each meter StatefulSet makes when spoolClaim is unset")
    sink_secret: str | None = Field(None, alias="sinkSecret",
                                    description="Secret (in the meters' namespace) whose key `authorization` is sent "
                                    "as the Authorization header of an http(s) sink, e.g. `Bearer <token>`")


class LeaderElectionSettings(_Model):
    """Which `tenantry run` reconciles when several run (the chart runs two): the holder of a
    coordination.k8s.io/v1 Lease (tenantry.controller.leadership; docs/high-availability.md). The timings
    are client-go's and controller-runtime's defaults; every replica must run with the same ones."""

    enabled: bool = Field(True, description="take part in leader election; false: reconcile at once, alone "
                          "(never run two replicas so)")
    lease_name: str = Field("tenantry-operator", alias="leaseName", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
                            description="name of the Lease")
    namespace: str | None = Field(None, description="namespace of the Lease; default: the operator's own (its "
                                  "pod's), else tenantry-system")
    lease_duration_seconds: int = Field(15, alias="leaseDurationSeconds", ge=2,
                                        description="how long a standby waits, after it last saw the lease "
                                        "change, before it takes the lease over")
    renew_deadline_seconds: float = Field(10.0, alias="renewDeadlineSeconds", gt=0,
                                          description="how long the leader keeps trying to renew before it stops "
                                          "writing and exits (less than leaseDurationSeconds)")
    retry_period_seconds: float = Field(2.0, alias="retryPeriodSeconds", gt=0,
                                        description="how often the leader renews and a standby looks at the lease")

    @model_validator(mode="after")
    def _timings_leave_a_margin(self) -> LeaderElectionSettings:
        # client-go's own checks: a leader must give up before a standby may take over, and must
        # have time for more than one renewal before it gives up.
        if self.renew_deadline_seconds >= self.lease_duration_seconds:
            raise ValueError("leaderElection.renewDeadlineSeconds must be less than leaseDurationSeconds")
        if self.renew_deadline_seconds <= 1.2 * self.retry_period_seconds:
            raise ValueError("leaderElection.renewDeadlineSeconds must be more than 1.2 x retryPeriodSeconds")
        return self

    def lease_namespace(self) -> str:
        return own_namespace(self.namespace)


class Settings(_Model):
    resync_seconds: float = Field(300.0, alias="resyncSeconds", gt=0,
                                  description="periodic full reconcile; drift is corrected at once by watches")
    workers: int = Field(16, ge=1, le=256, description="concurrent reconciles")
    pod_security_level: Literal["privileged", "baseline", "restricted"] = Field("baseline", alias="podSecurityLevel")
    default_plans: tuple[DefaultPlan, ...] = Field((), alias="defaultPlans")
    license_currency: str = Field("USD", alias="licenseCurrency")
    license_tiers: tuple[LicenseTier, ...] = Field(
        (
            LicenseTier(min_licenses=1, price=Decimal("25.00")),
            LicenseTier(min_licenses=10, price=Decimal("20.00")),
            LicenseTier(min_licenses=50, price=Decimal("17.50")),
            LicenseTier(min_licenses=100, price=Decimal("15.00")),
        ),
        alias="licenseTiers",
    )
    metering: MeteringSettings = MeteringSettings()
    webhook: WebhookSettings = WebhookSettings()
    license_orders: LicenseOrderSettings = Field(LicenseOrderSettings(), alias="licenseOrders")
    dns_resolver: str | None = Field(None, alias="dnsResolver",
                                     description="host:port of the resolver for domain TXT proofs")
    certificate_renew_before_days: int = Field(30, alias="certificateRenewBeforeDays", ge=1)
    certificate_min_validity_days: int = Field(7, alias="certificateMinValidityDays", ge=0)
    domain_recheck_seconds: float = Field(30.0, alias="domainRecheckSeconds", gt=0,
                                          description="how often a custom domain awaiting its DNS TXT proof, or a "
                                          "cert-manager Certificate not yet ready, is looked at again")
    health_port: int = Field(8080, alias="healthPort")
    metrics_port: int = Field(8000, alias="metricsPort")
    leader_election: LeaderElectionSettings = Field(LeaderElectionSettings(), alias="leaderElection")

    @field_validator("license_tiers")
    @classmethod
    def _tiers_ascend(cls, tiers: tuple[LicenseTier, ...]) -> tuple[LicenseTier, ...]:
        mins = [t.min_licenses for t in tiers]
        if mins != sorted(set(mins)):
            raise ValueError("licenseTiers must be ordered by minLicenses, each tier once")
        return tiers


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Settings from a YAML file (or $TENANTRY_CONFIG), defaults where the file is silent."""
    path = path or os.environ.get("TENANTRY_CONFIG")
    if not path:
        return Settings()
    raw = yaml.safe_load(Path(path).read_text()) or {}
    return Settings.model_validate(raw)
