"""Which Events one status write posts (controller/context.py `transition_events`, DESIGN §2): a Warning
for every bad reason, at most one Normal Event that summarises the good transitions."""

from __future__ import annotations

from tenantry.conditions import Condition
from tenantry.controller.context import transition_events


def test_a_new_tenant_becoming_ready_is_one_normal_event_named_ready() -> None:
    changed = [Condition("Admitted", True, "Admitted", "Licence 3 of 10."),
               Condition("Provisioned", True, "Provisioned", "Namespace a--b is ready."),
               Condition("CertificateReady", True, "Issued", "Certificate issued."),
               Condition("RolesBound", True, "RolesBound", "Owners bound."),
               Condition("Ready", True, "Ready", "The tenant is admitted and provisioned.")]
    events = transition_events(changed)
    assert len(events) == 1
    type_, reason, message = events[0]
    assert (type_, reason) == ("Normal", "Ready")
    assert message.startswith("Ready: The tenant is admitted and provisioned.")
    assert "Admitted, Provisioned, CertificateReady, RolesBound" in message


def test_every_bad_reason_is_a_warning_and_the_good_ones_one_summary() -> None:
    changed = [Condition("Admitted", False, "LicenseLimitReached", "No licence left."),
               Condition("Ready", False, "LicenseLimitReached", "No licence left."),
               Condition("Overcommitted", True, "AllotmentExceeded", "Too much."),  # True is bad news here
               Condition("DomainsRouted", True, "DomainsRouted", "www.shop.example is routed."),
               Condition("CertificateReady", True, "Issued", "Certificate issued.")]
    events = transition_events(changed)
    assert [(t, r) for t, r, _ in events] == [("Warning", "LicenseLimitReached"), ("Warning", "AllotmentExceeded"),
                                             ("Normal", "DomainsRouted")]
    assert events[-1][2] == "DomainsRouted: www.shop.example is routed. (also now: CertificateReady)"


def test_an_admission_whose_provisioning_failed_is_told_beside_the_warning() -> None:
    # The write-ahead admission writes no condition (controller/tenant.py): the reconcile's one status
    # write turns Admitted True, even when provisioning failed after it, and tells it.
    changed = [Condition("Admitted", True, "Admitted", "Admitted on plan small in region eu."),
               Condition("Provisioned", False, "ProvisioningFailed", "Provisioning namespace a--b failed."),
               Condition("CertificateReady", True, "Issued", "Certificate issued."),
               Condition("Ready", False, "ProvisioningFailed", "Provisioning namespace a--b failed.")]
    assert transition_events(changed) == [
        ("Warning", "ProvisioningFailed", "Provisioned: Provisioning namespace a--b failed."),
        ("Normal", "Admitted", "Admitted: Admitted on plan small in region eu. (also now: CertificateReady)")]


def test_an_admission_whose_namespace_is_taken_is_told_beside_the_warning() -> None:
    changed = [Condition("Admitted", True, "Admitted", "Admitted on plan small in region eu."),
               Condition("Provisioned", False, "NamespaceTaken", "Namespace a--b already exists."),
               Condition("Ready", False, "NamespaceTaken", "Namespace a--b already exists.")]
    assert [(t, r) for t, r, _ in transition_events(changed)] == [("Warning", "NamespaceTaken"),
                                                                  ("Normal", "Admitted")]


def test_an_admission_in_an_unreachable_cluster_is_named_in_the_summary() -> None:
    # Ready=Unknown is not bad news; the summary is named after it and names Admitted.
    changed = [Condition("Admitted", True, "Admitted", "Admitted on plan small in region eu."),
               Condition("Provisioned", False, "ClusterUnreachable", "Region eu's cluster cannot be reached."),
               Condition("Ready", None, "ClusterUnreachable", "Region eu's cluster cannot be reached.")]
    assert transition_events(changed) == [
        ("Warning", "ClusterUnreachable", "Provisioned: Region eu's cluster cannot be reached."),
        ("Normal", "ClusterUnreachable", "Ready: Region eu's cluster cannot be reached. (also now: Admitted)")]


def test_no_transition_no_event() -> None:
    assert transition_events([]) == []


def test_a_failure_without_words_is_named_in_conditions_and_logs() -> None:
    """A request that timed out raises TimeoutError(), whose text is empty: a Region said "the meter
    StatefulSet ... could not be applied and will be retried: " and nothing more (the 10,000-tenant restart)."""
    from tenantry.conditions import failure_text

    assert failure_text(TimeoutError()).startswith("TimeoutError")
    assert failure_text(RuntimeError("the API server said no")) == "the API server said no"
