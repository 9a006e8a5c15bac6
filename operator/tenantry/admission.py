"""Tenant admission: who gets a licence, capacity, an e-mail address and a host. Pure logic, no I/O.

The `AdmissionBook` holds what admission needs to know about the platform (regions, resellers'
terms, plans, tenant claims) and answers `decide(tenant)` with a `Verdict`. The controller keeps the
book in step with its watches and calls `decide` and `record` without awaiting in between, so no
two decisions interleave (asyncio runs one coroutine step at a time).

The ledger is never counted up and down. Licences and capacity in use are derived, on every
decision, from the set of admitted tenants, i.e. from each tenant's admission record (persisted
in its status). A crash at any point therefore neither leaks nor double-spends: after a restart
the records in status are the truth, and a tenant whose record was not yet written is decided again.

Rules (DESIGN.md §1-2):
- Admission is sticky: an admitted tenant stays admitted whatever happens to licences, the reseller's
  activity or capacity; over-use is reported, never enforced by eviction.
- A pending tenant is admitted when the reseller is active, the region and plan exist, its e-mail and
  hosts are its own, its domains fit the plan, and a licence and the plan's quota fit in what the
  reseller's admitted tenants leave. Older pending tenants of the same reseller go first (ties by
  creationTimestamp, then name), so the outcome does not depend on the order events arrive in.
- A plan change of an admitted tenant is admitted for the difference; a refused change keeps the
  old quota and says why. A region never changes after admission.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

from tenantry.hostindex import IngressHostIndex, wildcard_of
from tenantry.naming import QUOTA_RESOURCES, tenant_namespace
from tenantry.quantity import format_quantity

Quota = Mapping[str, Decimal]
TenantKey = tuple[str, str]  # (reseller, tenant name)

# Refusal reasons of DESIGN.md §2, exact strings.
LICENSE_LIMIT_REACHED = "LicenseLimitReached"
INSUFFICIENT_CAPACITY = "InsufficientCapacity"
RESELLER_INACTIVE = "ResellerInactive"
UNKNOWN_REGION = "UnknownRegion"
UNKNOWN_PLAN = "UnknownPlan"
DUPLICATE_EMAIL = "DuplicateEmail"
HOST_CONFLICT = "HostConflict"
TOO_MANY_DOMAINS = "TooManyDomains"
INVALID_OWNER = "InvalidOwner"  # spec.owners names a subject Tenantry never binds (tenantry.subjects)
# Reasons for a refused change of an admitted tenant.
REGION_CHANGE_REFUSED = "RegionChangeRefused"
ADMITTED = "Admitted"


@dataclass(frozen=True)
class AdmissionRecord:
    """What a tenant was admitted with: the ledger's unit. Persisted in `status.admission`."""

    plan: str
    region: str
    quota: Quota


@dataclass(frozen=True)
class TenantClaim:
    reseller: str
    name: str
    created: str  # creationTimestamp, RFC 3339 in UTC: sorts as text
    email: str
    region: str
    plan: str
    domains: tuple[str, ...] = ()
    record: AdmissionRecord | None = None
    uid: str = ""
    # Custom domains whose ownership the tenant has proven (status.domains[].verified): a proven
    # domain stays with its tenant even against an older claimant.
    verified_domains: tuple[str, ...] = ()
    # What is wrong with spec.owners (tenantry.subjects.tenant_owner_problems): such a tenant is not
    # admitted, and an admitted one is told, its bad owners never bound.
    owner_problems: tuple[str, ...] = ()

    @property
    def key(self) -> TenantKey:
        return (self.reseller, self.name)

    @property
    def order(self) -> tuple[str, str, str]:
        """Older first; ties by name (then reseller, so that the order is total)."""
        return (self.created, self.name, self.reseller)


@dataclass(frozen=True)
class ResellerTerms:
    name: str
    created: str
    email: str
    active: bool
    licenses: int
    allotments: Mapping[str, Quota]  # region -> allotment
    domains: Mapping[str, str] = field(default_factory=dict)  # region -> domain
    platform_domain: str | None = None
    # The domains it already serves: those its last Ready=True status was written with. A domain in
    # service stays with its reseller whatever the age of a newcomer (see `domain_taken`).
    serving: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PlanTerms:
    quota: Quota
    custom_domains: int = 0


@dataclass(frozen=True)
class Verdict:
    admitted: bool
    reason: str
    message: str
    record: AdmissionRecord | None = None
    # For an admitted tenant whose wished change (plan, region, e-mail) was refused.
    change_refused: tuple[str, str] | None = None
    # Not decided yet: look again after this many seconds (see AdmissionBook.settle_seconds).
    retry_after: float = 0.0


def full_quota(quota: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """A quota with all four resources; a resource not given is zero (nothing may be used)."""
    return {resource: Decimal(quota.get(resource, 0)) for resource in QUOTA_RESOURCES}


def host_under(host: str, domain: str) -> bool:
    """True when host equals domain or is a subdomain of it."""
    return host == domain or host.endswith("." + domain)


def _domain_precedence(reseller: ResellerTerms, domain: str) -> tuple[bool, str, str]:
    """Who holds a contested domain: the lowest value (serving it, then older, then by name)."""
    return (domain not in reseller.serving, reseller.created, reseller.name)


def domains_collide(a: str, b: str) -> bool:
    """Equal or nested domains collide (acme.example and shop.acme.example)."""
    return host_under(a, b) or host_under(b, a)


class AdmissionBook:
    """The platform as admission sees it, with indexes for the questions admission asks."""

    # Tenants created within the same instant race for the last licence or the last capacity. The
    # watch may deliver the older one later than the newer, so when an admission would take (nearly)
    # the last of something, the decision waits until the tenant is this old: by then every tenant
    # created before or with it has been seen, and ties go to the older, then the name, as promised.
    # creationTimestamp has whole seconds, so 2 s of age means at least 1 s of real time.
    settle_seconds: float = 2.0
    # "Nearly the last": fewer than this many licences, or tenants of the same plan, would remain.
    # With more room than that, a racer arriving late still fits, and nobody needs to wait.
    contention_margin: int = 5

    def __init__(self) -> None:
        self.regions: set[str] = set()
        self.resellers: dict[str, ResellerTerms] = {}
        self.plans: dict[tuple[str, str], PlanTerms] = {}
        self._tenants: dict[TenantKey, TenantClaim] = {}
        self._by_reseller: dict[str, set[TenantKey]] = {}
        self._by_email: dict[str, set[TenantKey]] = {}
        self._by_host: dict[str, set[TenantKey]] = {}
        # Decisions made here but not yet seen back in a tenant's status (watch lag, a failed write).
        self._unconfirmed: dict[TenantKey, tuple[str, AdmissionRecord]] = {}
        # Every Ingress of the cluster but the tenants' own (kept by controller/cluster_ingresses.py):
        # a custom domain collides with their hosts too.
        self.ingresses = IngressHostIndex()

    # -- keeping the book ------------------------------------------------------------------------

    def set_regions(self, names: Iterable[str]) -> None:
        self.regions = set(names)

    def set_reseller(self, terms: ResellerTerms) -> None:
        self.resellers[terms.name] = terms

    def remove_reseller(self, name: str) -> None:
        self.resellers.pop(name, None)

    def set_plan(self, reseller: str, name: str, terms: PlanTerms | None) -> None:
        if terms is None:
            self.plans.pop((reseller, name), None)
        else:
            self.plans[(reseller, name)] = terms

    def upsert_tenant(self, claim: TenantClaim) -> None:
        """Take a tenant as its latest watch event shows it."""
        key = claim.key
        unconfirmed = self._unconfirmed.get(key)
        if unconfirmed is not None:
            uid, record = unconfirmed
            if uid != claim.uid:
                del self._unconfirmed[key]  # a new object under the same name: the old decision is void
            elif claim.record == record:
                del self._unconfirmed[key]  # status caught up
        self.remove_tenant(key, keep_unconfirmed=True)
        self._tenants[key] = claim
        self._by_reseller.setdefault(claim.reseller, set()).add(key)
        self._by_email.setdefault(claim.email.lower(), set()).add(key)
        for host in claim.domains:
            self._by_host.setdefault(host, set()).add(key)

    def remove_tenant(self, key: TenantKey, *, keep_unconfirmed: bool = False) -> None:
        old = self._tenants.pop(key, None)
        if not keep_unconfirmed:
            self._unconfirmed.pop(key, None)
        if old is None:
            return
        self._by_reseller.get(old.reseller, set()).discard(key)
        self._by_email.get(old.email.lower(), set()).discard(key)
        for host in old.domains:
            self._by_host.get(host, set()).discard(key)

    def record(self, key: TenantKey, record: AdmissionRecord) -> None:
        """Remember a decision at once, before it reaches the tenant's status."""
        claim = self._tenants[key]
        if self.record_of(claim) != record:
            self._unconfirmed[key] = (claim.uid, record)

    def preview(self, claim: TenantClaim) -> Verdict:
        """The verdict a tenant would get as `claim` (being created or changed: the admission webhook asks
        before the API server stores it), with the book left exactly as it was. No settle wait."""
        key = claim.key
        old, unconfirmed = self._tenants.get(key), self._unconfirmed.get(key)
        self.upsert_tenant(claim)
        try:
            return self.decide(key)
        finally:
            self.remove_tenant(key)
            if old is not None:
                self.upsert_tenant(old)
            if unconfirmed is not None:
                self._unconfirmed[key] = unconfirmed

    # -- reading the ledger ----------------------------------------------------------------------

    def tenant(self, key: TenantKey) -> TenantClaim | None:
        return self._tenants.get(key)

    def tenants_of(self, reseller: str) -> list[TenantClaim]:
        return [self._tenants[k] for k in self._by_reseller.get(reseller, ())]

    def all_tenants(self) -> Iterable[TenantClaim]:
        return self._tenants.values()

    def record_of(self, claim: TenantClaim) -> AdmissionRecord | None:
        unconfirmed = self._unconfirmed.get(claim.key)
        if unconfirmed is not None and unconfirmed[0] == claim.uid:
            return unconfirmed[1]
        return claim.record

    def waiting(self, reseller: str | None = None) -> list[TenantClaim]:
        """The tenants not admitted (refused or not yet decided), of one reseller or of all: those a
        freed licence, capacity, e-mail address or host may let in."""
        claims = self.all_tenants() if reseller is None else self.tenants_of(reseller)
        return [c for c in claims if self.record_of(c) is None]

    def admitted_of(self, reseller: str) -> list[tuple[TenantClaim, AdmissionRecord]]:
        result = []
        for claim in self.tenants_of(reseller):
            record = self.record_of(claim)
            if record is not None:
                result.append((claim, record))
        return result

    def usage(self, reseller: str) -> tuple[int, dict[str, dict[str, Decimal]]]:
        """Licences used and quota allocated per region, from the admitted tenants."""
        allocated: dict[str, dict[str, Decimal]] = {}
        admitted = self.admitted_of(reseller)
        for _, record in admitted:
            region = allocated.setdefault(record.region, full_quota({}))
            for resource in QUOTA_RESOURCES:
                region[resource] += record.quota.get(resource, Decimal(0))
        return len(admitted), allocated

    # -- deciding --------------------------------------------------------------------------------

    def decide(self, key: TenantKey, now: float | None = None) -> Verdict:
        """The verdict for one tenant. `now` (epoch seconds) enables the settle wait for contended
        admissions; without it (unit tests) decisions are immediate."""
        claim = self._tenants[key]
        reseller = self.resellers.get(claim.reseller)
        record = self.record_of(claim)
        if record is not None:
            return self._decide_change(claim, record, reseller)
        problem = self._standing_problem(claim, reseller)
        if problem is not None:
            return Verdict(False, *problem)
        assert reseller is not None
        plan = self.plans[(claim.reseller, claim.plan)]
        licenses_used, allocated = self.usage(claim.reseller)
        # Older pending tenants of the same reseller are served first, so that a newer tenant
        # whose event happens to arrive earlier cannot take their licence or capacity.
        for other in sorted(self.tenants_of(claim.reseller), key=lambda c: c.order):
            if other.order >= claim.order:
                break
            if self.record_of(other) is not None or self._standing_problem(other, reseller) is not None:
                continue
            other_quota = full_quota(self.plans[(other.reseller, other.plan)].quota)
            if licenses_used < reseller.licenses and self._fits(reseller, allocated, other.region, other_quota):
                licenses_used += 1
                _add(allocated, other.region, other_quota)
        if licenses_used >= reseller.licenses:
            return Verdict(False, LICENSE_LIMIT_REACHED,
                           f"Reseller {reseller.name} has used all of its {reseller.licenses} licences; buy more "
                           "(a LicenseOrder: kubectl tenantry buy N), ask the platform to raise spec.licenses, "
                           "or delete another tenant.")
        quota = full_quota(plan.quota)
        shortfall = self._shortfall(reseller, allocated, claim.region, quota)
        if shortfall:
            return Verdict(False, INSUFFICIENT_CAPACITY,
                           f"Plan {claim.plan} needs more than reseller {reseller.name} has left in region "
                           f"{claim.region} ({shortfall}); choose a smaller plan, or the platform must raise "
                           "the reseller's allotment.")
        # A custom domain goes to the oldest claimant too, and an admitted tenant keeps it: so a tenant
        # claiming one also waits until every tenant created with it has been seen.
        if now is not None and (claim.domains or self._contended(reseller, licenses_used, allocated, claim.region,
                                                                 quota)):
            age = now - _epoch(claim.created)
            if age < self.settle_seconds:
                return Verdict(False, "AwaitingConcurrentRequests",
                               "Taking one of the last licences, the last capacity or a custom domain; waiting a "
                               "moment for tenants created at the same time.", retry_after=self.settle_seconds - age)
        new_record = AdmissionRecord(plan=claim.plan, region=claim.region, quota=quota)
        return Verdict(True, ADMITTED, f"Admitted on plan {claim.plan} in region {claim.region}.", new_record)

    def _contended(self, reseller: ResellerTerms, licenses_used: int, allocated: dict[str, dict[str, Decimal]],
                   region: str, quota: Quota) -> bool:
        """Would admitting this tenant leave nearly nothing for others of its kind?"""
        margin = self.contention_margin
        if reseller.licenses - licenses_used - 1 < margin:
            return True
        allotment = full_quota(reseller.allotments.get(region, {}))
        used = allocated.get(region, full_quota({}))
        return any(allotment[r] - used[r] - quota[r] < margin * quota[r] for r in QUOTA_RESOURCES if quota[r] > 0)

    def _standing_problem(self, claim: TenantClaim, reseller: ResellerTerms | None) -> tuple[str, str] | None:
        """Reasons a pending tenant cannot be admitted that do not depend on the ledger."""
        if reseller is None:
            return (RESELLER_INACTIVE, f"Reseller {claim.reseller} does not exist; tenants can be admitted "
                    "only for an existing, active reseller.")
        if not reseller.active:
            return (RESELLER_INACTIVE, f"Reseller {reseller.name} is inactive (spec.active: false); "
                    "new tenants are admitted once the platform reactivates it.")
        if claim.region not in self.regions:
            return (UNKNOWN_REGION, f"Region {claim.region} does not exist on this platform; "
                    f"use one of: {', '.join(sorted(reseller.allotments)) or 'none'}.")
        if claim.region not in reseller.allotments:
            return (UNKNOWN_REGION, f"Reseller {reseller.name} does not sell in region {claim.region}; "
                    f"use one of: {', '.join(sorted(reseller.allotments)) or 'none'}.")
        plan = self.plans.get((claim.reseller, claim.plan))
        if plan is None:
            known = sorted(p for (r, p) in self.plans if r == claim.reseller)
            return (UNKNOWN_PLAN, f"Plan {claim.plan} does not exist in reseller-{claim.reseller}; "
                    f"use one of: {', '.join(known) or 'none (create a Plan first)'}.")
        if claim.owner_problems:
            return (INVALID_OWNER, " ".join(claim.owner_problems) + " The tenant gets no namespace and nobody "
                    "is granted anything; it is admitted by itself once spec.owners is fixed.")
        holder = self.email_holder(claim.email)
        if holder is not None and holder != ("tenant", claim.key):
            return (DUPLICATE_EMAIL, f"E-mail address {claim.email} already belongs to another "
                    f"{holder[0]} on this platform; use another address.")
        if len(claim.domains) > plan.custom_domains:
            return (TOO_MANY_DOMAINS, f"Plan {claim.plan} allows {plan.custom_domains} custom domain(s) and "
                    f"the tenant asks for {len(claim.domains)}; remove domains or choose a larger plan.")
        conflict = self.host_problem(claim)
        if conflict is not None:
            return (HOST_CONFLICT, conflict)
        return None

    def _decide_change(self, claim: TenantClaim, record: AdmissionRecord,
                       reseller: ResellerTerms | None) -> Verdict:
        kept = f"Admitted on plan {record.plan} in region {record.region}."
        if claim.region != record.region:
            return Verdict(True, ADMITTED, kept, record, (REGION_CHANGE_REFUSED,
                           f"A tenant cannot move from region {record.region} to {claim.region}; "
                           f"set spec.region back to {record.region}, or create a new tenant in "
                           f"{claim.region} and migrate."))
        holder = self.email_holder(claim.email)
        email_problem = None
        if claim.owner_problems:  # reported first: someone may be counting on access they do not get
            email_problem = (INVALID_OWNER, " ".join(claim.owner_problems) + " The tenant keeps running; that "
                             "subject is not bound, and the other owners keep their access.")
        elif holder is not None and holder != ("tenant", claim.key):
            email_problem = (DUPLICATE_EMAIL, f"E-mail address {claim.email} already belongs to another "
                             f"{holder[0]} on this platform; use another address.")
        plan = self.plans.get((claim.reseller, claim.plan))
        if plan is None:
            return Verdict(True, ADMITTED, kept, record, (UNKNOWN_PLAN,
                           f"Plan {claim.plan} does not exist in reseller-{claim.reseller}; the tenant keeps "
                           f"the quota of plan {record.plan} it was admitted with."))
        # Custom domains of an admitted tenant: a domain beyond the plan's allowance or held by another
        # tenant is refused as a change (it is not routed; see controller/tls.py), the tenant stays.
        conflict = self.host_problem(claim)
        if len(claim.domains) > plan.custom_domains and claim.plan == record.plan:
            email_problem = email_problem or (TOO_MANY_DOMAINS,
                                              f"Plan {claim.plan} allows {plan.custom_domains} custom domain(s) and "
                                              f"the tenant has {len(claim.domains)}; the domains beyond the "
                                              "allowance are not routed. Remove domains or choose a larger plan.")
        elif conflict is not None:
            email_problem = email_problem or (HOST_CONFLICT, conflict + " It is not routed.")
        wanted = full_quota(plan.quota)
        if claim.plan == record.plan and wanted == full_quota(record.quota):
            return Verdict(True, ADMITTED, kept, record, email_problem)
        if len(claim.domains) > plan.custom_domains:
            return Verdict(True, ADMITTED, kept, record, (TOO_MANY_DOMAINS,
                           f"Plan {claim.plan} allows {plan.custom_domains} custom domain(s) and the tenant "
                           f"has {len(claim.domains)}; remove domains first. The quota of plan {record.plan} "
                           "is kept."))
        if reseller is not None:
            _, allocated = self.usage(claim.reseller)
            _subtract(allocated, record.region, full_quota(record.quota))
            # Only resources that grow are checked: shrinking must succeed even where the reseller
            # is already over its allotment (after the platform lowered it).
            current = full_quota(record.quota)
            grown = [r for r in QUOTA_RESOURCES if wanted[r] > current[r]]
            shortfall = self._shortfall(reseller, allocated, record.region, wanted, only=grown)
            if shortfall:
                return Verdict(True, ADMITTED, kept, record, (INSUFFICIENT_CAPACITY,
                               f"Plan {claim.plan} needs more than reseller {reseller.name} has left in region "
                               f"{record.region} ({shortfall}); the quota of plan {record.plan} is kept."))
        new_record = AdmissionRecord(plan=claim.plan, region=record.region, quota=wanted)
        return Verdict(True, ADMITTED, f"Admitted on plan {claim.plan} in region {record.region}.", new_record,
                       email_problem)

    # -- uniqueness ------------------------------------------------------------------------------

    def email_holder(self, email: str) -> tuple[str, object] | None:
        """Who owns an e-mail address: the oldest reseller or admitted tenant using it, else the
        oldest pending tenant. Returns ("reseller", name) or ("tenant", key)."""
        email = email.lower()
        settled: list[tuple[tuple[str, str, str], tuple[str, object]]] = [
            ((r.created, r.name, ""), ("reseller", r.name)) for r in self.resellers.values() if r.email.lower() == email
        ]
        pending: list[tuple[tuple[str, str, str], tuple[str, object]]] = []
        for key in self._by_email.get(email, ()):
            claim = self._tenants[key]
            target = settled if self.record_of(claim) is not None else pending
            target.append((claim.order, ("tenant", key)))
        for group in (settled, pending):
            if group:
                return min(group, key=lambda item: item[0])[1]
        return None

    def host_problem(self, claim: TenantClaim) -> str | None:
        """Why one of a tenant's custom domains cannot be its own, or None."""
        for host in claim.domains:
            if host.startswith("*"):
                return f"Custom domain {host} is a wildcard; name each host instead."
            for reseller in self.resellers.values():
                for domain in (*reseller.domains.values(), *(d for d in (reseller.platform_domain,) if d)):
                    if host_under(host, domain):
                        return (f"Custom domain {host} is, or is under, the reseller domain {domain}; "
                                "tenants get a host there automatically. Use a domain of your own.")
            owner = self.host_holder(host)
            if owner is not None and owner != claim.key:
                return f"Custom domain {host} is already used by another tenant; remove it from spec.domains."
            # Any other Ingress of the cluster. Not for a domain the tenant already serves (verified and
            # routed): an Ingress made later for its host is the newcomer, and a live site is not
            # unrouted by whoever may create Ingresses somewhere. The tenant's own namespace is its own.
            served = None if host in claim.verified_domains else self.ingresses.holder(
                host, except_namespace=tenant_namespace(claim.reseller, claim.name))
            if served is not None:
                (namespace, name), by = served
                how = "" if by == host else f" (its host {by})"
                return (f"Custom domain {host} is already served by Ingress {namespace}/{name}{how}; one host is "
                        "routed to one place only. Remove it from spec.domains, or have that Ingress changed first.")
        return None

    def claimants(self, hosts: Iterable[str]) -> list[TenantKey]:
        """The tenants claiming any of these hosts, or a host a wildcard among them covers: those an
        Ingress taking or leaving the hosts concerns."""
        wanted = set(hosts)
        keys: set[TenantKey] = set()
        for host in wanted:
            keys |= self._by_host.get(host, set())
        if any(host.startswith("*.") for host in wanted):  # rare: look at every claimed host
            keys |= {k for host, claimed_by in self._by_host.items() if wildcard_of(host) in wanted for k in claimed_by}
        return sorted(keys)

    def domain_taken(self, reseller: str, domain: str) -> tuple[str, str] | None:
        """(other reseller, its domain) when `domain` equals or nests with a domain that another
        reseller holds before this one: the reseller already serving it first (so a newcomer never
        unroutes live tenants), then the older (creationTimestamp, then name)."""
        me = self.resellers.get(reseller)
        mine = _domain_precedence(me, domain) if me is not None else None
        for other in self.resellers.values():
            if other.name == reseller:
                continue
            for taken in (*other.domains.values(), *(d for d in (other.platform_domain,) if d)):
                if domains_collide(domain, taken) and (mine is None or _domain_precedence(other, taken) < mine):
                    return other.name, taken
        return None

    def host_holder(self, host: str) -> TenantKey | None:
        """The tenant a custom domain belongs to: admitted before pending, then the one that proved
        ownership (so an older tenant cannot take a live, verified domain), then older before newer."""
        candidates = [self._tenants[k] for k in self._by_host.get(host, ())]
        if not candidates:
            return None
        return min(candidates, key=lambda c: (self.record_of(c) is None, host not in c.verified_domains,
                                              c.order)).key

    # -- capacity --------------------------------------------------------------------------------

    def _fits(self, reseller: ResellerTerms, allocated: dict[str, dict[str, Decimal]], region: str,
              quota: Quota) -> bool:
        return not self._shortfall(reseller, allocated, region, quota)

    @staticmethod
    def _shortfall(reseller: ResellerTerms, allocated: dict[str, dict[str, Decimal]], region: str,
                   quota: Quota, only: Iterable[str] = QUOTA_RESOURCES) -> str:
        """What does not fit, in words ("cpu: needs 2, 0.5 left"); empty when everything fits."""
        allotment = full_quota(reseller.allotments.get(region, {}))
        used = allocated.get(region, full_quota({}))
        short = [
            f"{resource}: needs {format_quantity(resource, quota[resource])}, "
            f"{format_quantity(resource, max(allotment[resource] - used[resource], Decimal(0)))} left"
            for resource in only
            if used[resource] + quota[resource] > allotment[resource]
        ]
        return "; ".join(short)


def _epoch(rfc3339: str) -> float:
    try:
        return datetime.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC).timestamp()
    except ValueError:
        return 0.0  # unknown age: treat as old, never wait


def _add(allocated: dict[str, dict[str, Decimal]], region: str, quota: Quota) -> None:
    bucket = allocated.setdefault(region, full_quota({}))
    for resource in QUOTA_RESOURCES:
        bucket[resource] += quota[resource]


def _subtract(allocated: dict[str, dict[str, Decimal]], region: str, quota: Quota) -> None:
    bucket = allocated.setdefault(region, full_quota({}))
    for resource in QUOTA_RESOURCES:
        bucket[resource] -= quota[resource]


def with_record(claim: TenantClaim, record: AdmissionRecord | None) -> TenantClaim:
    return replace(claim, record=record)
