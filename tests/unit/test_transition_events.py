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


def test_a_transition_told_earlier_in_the_reconcile_is_not_told_again() -> None:
    admitted = Condition("Admitted", True, "Admitted", "Licence 3 of 10.")
    ready = Condition("Ready", True, "Ready", "The tenant is admitted and provisioned.")
    assert [r for _, r, _ in transition_events([admitted, ready], told=["Admitted"])] == ["Ready"]
    assert transition_events([admitted], told=["Admitted"]) == []
    assert transition_events([]) == []
