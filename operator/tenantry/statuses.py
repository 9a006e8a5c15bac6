"""Typed models of the five kinds' status: what the operator writes, and what the meter and metrics read.

Like the spec models in `tenantry.models`, these are the source of the CRD schemas (`tenantry.crdgen`
renders them; attribute docstrings become the descriptions `kubectl explain` shows). Each field is
one the operator writes today; every field is optional, because a status is written in parts (a
Tenant refused at admission has no namespace) and an older operator may have written less.

Two ways to read: `read_status` raises when a status does not fit its model (hand-edited, or
written by a future operator), for readers that skip and count such an object (the meter);
`parse_status` never raises and reads such a status as empty (the operator's own metrics).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError
from pydantic.alias_generators import to_camel

from tenantry import naming
from tenantry.models import Quantity, Text, list_map

# metav1.Condition's rules for type and reason (k8s.io/apimachinery/pkg/apis/meta/v1/types.go).
CONDITION_TYPE_PATTERN = (r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                          r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$")
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Generation = Annotated[StrictInt, Field(ge=0, json_schema_extra={"format": "int64"})]
Count = Annotated[StrictInt, Field(ge=0, json_schema_extra={"format": "int32"})]
SignedCount = Annotated[StrictInt, Field(json_schema_extra={"format": "int32"})]
Names = Annotated[tuple[str, ...], Field(json_schema_extra={"x-kubernetes-list-type": "atomic"})]


class StatusModel(BaseModel):
    """Base of every status model: camelCase aliases, unknown fields ignored, immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True,
                              use_attribute_docstrings=True)

    def to_status(self) -> dict[str, Any]:
        """The status as the API stores it: camelCase keys, fields never set left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusCondition(StatusModel):
    """One aspect of the object's state."""

    type: Annotated[str, Text("a condition type", "Ready", CONDITION_TYPE_PATTERN, 316)]
    """Type of condition in CamelCase, e.g. Ready."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: Annotated[str, Text("a condition reason", "Ready", CONDITION_REASON_PATTERN, 1024)]
    """Why the condition last changed, in CamelCase (e.g. LicenseLimitReached)."""
    message: Annotated[str, Text("a message", "Region eu-west is sold by 2 reseller(s).", None, 32768, min_length=0)]
    """What happened and, when something is wrong, what to change."""
    last_transition_time: Timestamp
    """When the status last changed."""
    observed_generation: Generation | None = None
    """The metadata.generation the condition was computed from."""


Conditions = Annotated[tuple[StatusCondition, ...], list_map("type")]


class KindStatus(StatusModel):
    """What every kind's status has: the generation acted on and the conditions (Ready among them)."""

    observed_generation: Generation | None = None
    """The metadata.generation the operator last acted on."""
    conditions: Conditions = ()
    """Current state of the object, in the shape of metav1.Condition. Every kind has Ready."""

    def condition(self, type_: str) -> StatusCondition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    def is_true(self, type_: str) -> bool:
        found = self.condition(type_)
        return found is not None and found.status == "True"


class QuotaAmounts(StatusModel):
    """Amounts of the four quota resources (Kubernetes quantities)."""

    cpu: Quantity | None = None
    """CPU, in cores (a Kubernetes quantity: "2", "500m"). Maps to requests.cpu."""
    memory: Quantity | None = None
    """Memory, in bytes (a Kubernetes quantity: 4Gi, 512Mi). Maps to requests.memory."""
    storage: Quantity | None = None
    """Persistent storage, in bytes (a Kubernetes quantity: 20Gi, 1Ti). Maps to requests.storage."""
    pods: Quantity | None = None
    """Number of pods (an integer, or a quantity string such as "20"). Maps to pods."""

    def as_strings(self) -> dict[str, str]:
        """The amounts that are set, keyed by naming.QUOTA_RESOURCES."""
        return {r: value for r in naming.QUOTA_RESOURCES if (value := getattr(self, r)) is not None}


class CertificateInfo(StatusModel):
    """The certificate currently served (no private key material)."""

    not_after: Timestamp | None = None
    """When the certificate expires."""
    issuer: str | None = None
    """The certificate's issuer (distinguished name, or the cert-manager issuer)."""
    dns_names: Names = ()
    """Names the certificate is valid for."""


class HostCertificate(CertificateInfo):
    """The certificate of one host."""

    host: str
    """The hostname."""


# -------------------------------------------------------------------------------------------- Region


class ClusterInfo(StatusModel):
    """The member cluster, as last seen (spec.cluster)."""

    server: str | None = None
    """URL of its API server."""
    version: str | None = None
    """Its Kubernetes version (gitVersion)."""


class NodePoolCapacity(StatusModel):
    """The member cluster's nodes matching the region's node selector (beside the sold spec.capacity)."""

    nodes: Count | None = None
    """Number of those nodes."""
    allocatable: QuotaAmounts | None = None
    """Sum of their allocatable cpu, memory and pods."""


class RegionStatus(KindStatus):
    """Observed state of the Region, written by the operator."""

    cluster: ClusterInfo | None = None
    """The member cluster (only when spec.cluster is set)."""
    node_pool: NodePoolCapacity | None = None
    """The member cluster's node pool capacity (only when spec.cluster is set and such nodes exist)."""

    allocated: QuotaAmounts | None = None
    """Sum of the allotments of all resellers selling in this region."""
    resellers: Count | None = None
    """Number of resellers selling in this region."""
    tenants: Count | None = None
    """Number of admitted tenants in this region."""


# -------------------------------------------------------------------------------------------- Reseller


class LicenseCounts(StatusModel):
    """Licence use: available = total - used (negative when licences were lowered below use)."""

    total: Count | None = None
    """Licences the reseller has, spec.licenses + purchased."""
    purchased: Count | None = None
    """Licences bought with LicenseOrders (fulfilled, not refunded)."""
    used: Count | None = None
    """Licences taken by admitted tenants."""
    available: SignedCount | None = None
    """Licences left for new tenants."""
    self_service_limit: Count | None = None
    """Licences the reseller may buy per calendar month (spec.licensePolicy.selfServiceLimit or the operator's
    default)."""
    purchased_this_month: Count | None = None
    """Licences bought this calendar month (UTC), counted against selfServiceLimit."""


class ResellerRegionStatus(StatusModel):
    """Use of one region."""

    name: str
    """Name of the Region."""
    domain: str | None = None
    """The reseller's domain in the region."""
    allotment: QuotaAmounts | None = None
    """Capacity bought in the region (spec)."""
    allocated: QuotaAmounts | None = None
    """Sum of the plan quotas of the admitted tenants here."""
    tenants: Count | None = None
    """Admitted tenants in the region."""
    certificate: CertificateInfo | None = None
    """The certificate currently served (no private key material)."""


class PlatformCertificate(CertificateInfo):
    """The certificate of spec.platformDomain, in Secret tenantry-platform-tls of the control namespace (no private
    key material)."""

    host: str | None = None
    """The platform domain."""


class ResellerStatus(KindStatus):
    """Observed state of the Reseller, written by the operator."""

    namespace: str | None = None
    """The reseller's control namespace, reseller-<name>, where its Plans and Tenants live."""
    licenses: LicenseCounts | None = None
    """Licence use: available = total - used (negative when licences were lowered below use)."""
    tenants: Count | None = None
    """Number of admitted tenants."""
    seeded_plans: Names = ()
    """Platform default Plans already created in the control namespace. The operator seeds each once and never
    recreates or overwrites one the reseller changed or deleted."""
    platform_certificate: PlatformCertificate | None = None
    """The certificate of spec.platformDomain, in Secret tenantry-platform-tls of the control namespace (no
    private key material)."""
    regions: Annotated[tuple[ResellerRegionStatus, ...], list_map("name")] = ()
    """Per-region use."""

    def region(self, name: str) -> ResellerRegionStatus | None:
        return next((r for r in self.regions if r.name == name), None)


# -------------------------------------------------------------------------------------------- Plan


class PlanStatus(KindStatus):
    """Observed state of the Plan, written by the operator."""

    tenants: Count | None = None
    """Number of admitted tenants on this plan."""


# -------------------------------------------------------------------------------------------- Tenant

TenantPhase = Literal["Pending", "Active", "Suspended", "Terminating"]


class AdmissionStatus(StatusModel):
    """The admission record: what the tenant's licence and capacity were granted for."""

    plan: str | None = None
    """Plan at admission."""
    region: str | None = None
    """Region at admission."""
    quota: QuotaAmounts | None = None
    """Quota reserved at admission."""
    admitted_at: Timestamp | None = None
    """When the tenant was admitted."""


class DomainStatus(StatusModel):
    """One custom domain."""

    host: str
    """The custom domain."""
    verified: StrictBool | None = None
    """Whether ownership is proven (always true when the region needs no verification)."""
    token: str | None = None
    """Value of the TXT record that proves ownership."""
    message: str | None = None
    """Where to put the TXT record, or why verification failed."""


class TenantStatus(KindStatus):
    """Observed state of the Tenant, written by the operator."""

    phase: TenantPhase | None = None
    """Pending (not admitted yet), Active, Suspended (spec.active false) or Terminating."""
    namespace: str | None = None
    """The tenant's namespace, always <reseller>--<tenant>."""
    hosts: Names = ()
    """Hostnames routed to the tenant: <tenant>.<reseller domain> and verified custom domains."""
    admission: AdmissionStatus | None = None
    """The admission record: what the tenant's licence and capacity were granted for."""
    domains: Annotated[tuple[DomainStatus, ...], list_map("host")] = ()
    """Verification state of each custom domain."""
    certificates: Annotated[tuple[HostCertificate, ...], list_map("host")] = ()
    """The certificate served for each host (no private key material)."""


# -------------------------------------------------------------------------------------------- LicenseOrder

OrderPhase = Literal["Pending", "Fulfilled", "Rejected", "Refunded"]


class OrderPrice(StatusModel):
    """What the order costs, one-time."""

    currency: str | None = None
    """ISO 4217 currency code."""
    tier: str | None = None
    """The volume tier of the quantity, e.g. 10-49 or 100+."""
    unit_price: str | None = None
    """Price per licence in this tier (decimal string)."""
    amount: str | None = None
    """quantity x unitPrice (decimal string)."""


class BillingRecord(StatusModel):
    """A billing record of the order, and whether the platform's sink has taken it."""

    id: str | None = None
    """The record's id, hex sha256 of license-order|<order uid> (license-refund|<order uid> for a refund)."""
    sent: StrictBool | None = None
    """True once the sink took it."""
    sent_at: Timestamp | None = None
    """When the sink took it."""


class OrderBilling(StatusModel):
    """The billing records (CloudEvents dev.tenantry.license-order.v1) this order makes, and whether the platform's
    sink has taken each."""

    order: BillingRecord | None = None
    """The record of the purchase."""
    refund: BillingRecord | None = None
    """The record of the refund (amount negative)."""


class LicenseOrderStatus(KindStatus):
    """The operator's decision. Written once (and once more on a refund); only the operator writes it."""

    phase: OrderPhase | None = None
    """Pending until decided; then Fulfilled or Rejected for good, Refunded once a platform admin deleted a fulfilled
    order."""
    quantity: Annotated[StrictInt, Field(json_schema_extra={"format": "int32"})] | None = None
    """The licences the decision was made for (a later edit of spec.quantity changes nothing)."""
    price: OrderPrice | None = None
    """What the order costs, one-time."""
    fulfilled_at: Timestamp | None = None
    """When the licences were added to the reseller."""
    refunded_at: Timestamp | None = None
    """When the order was refunded (its deletion by a platform admin)."""
    billing: OrderBilling | None = None
    """The billing records (CloudEvents dev.tenantry.license-order.v1) this order makes, and whether the
    platform's sink has taken each."""


STATUS_MODELS: dict[str, type[KindStatus]] = {
    naming.REGION: RegionStatus,
    naming.RESELLER: ResellerStatus,
    naming.PLAN: PlanStatus,
    naming.TENANT: TenantStatus,
    naming.LICENSE_ORDER: LicenseOrderStatus,
}

S = TypeVar("S", bound=KindStatus)


def read_status(model: type[S], obj: Mapping[str, Any]) -> S:
    """The typed status of a whole object (`obj["status"]`), empty when it has none.

    Raises pydantic's ValidationError (a ValueError) when the status does not fit: for readers that
    skip and count an unreadable object (the meter's reflectors, watch_health)."""
    return model.model_validate(obj.get("status") or {})


def parse_status(model: type[S], obj: Mapping[str, Any]) -> S:
    """The typed status of a whole object; an empty status when it has none or does not fit."""
    try:
        return read_status(model, obj)
    except ValidationError:
        return model()
