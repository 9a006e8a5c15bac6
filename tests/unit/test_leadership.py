"""Leader election's decisions (tenantry.controller.leadership): when a standby may take the Lease, what
it writes to take, renew and release it, and the settings' timing rules. The election against a real
API server is tests/reliability/test_failover.py."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tenantry.controller.leadership import (
    LeaseRecord,
    Observation,
    claimed,
    expiry,
    may_take,
    observe,
    process_identity,
    released,
    renewed,
)
from tenantry.settings import LeaderElectionSettings, Settings

MARGIN = 2.5  # (15 - 10) / 2 with the default timings


def lease(version: str, holder: str | None = "a", duration: int = 15, transitions: int = 3) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "tenantry-operator", "namespace": "tenantry-system", "resourceVersion": version},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration, "leaseTransitions": transitions,
                     "acquireTime": "2026-12-01T10:00:00.000000Z", "renewTime": "2026-12-01T10:00:04.000000Z"}}


def test_first_sight_counts_from_the_answer() -> None:
    seen = observe(None, lease("7"), sent_at=100.0, received_at=100.2, margin=MARGIN)
    assert (seen.version, seen.since, seen.confirmed_at) == ("7", 100.2, 100.0)
    assert expiry(seen) == 115.2


def test_an_unchanged_version_keeps_counting_from_when_it_changed() -> None:
    seen = observe(None, lease("7"), 100.0, 100.2, MARGIN)
    again = observe(seen, lease("7"), 102.0, 102.1, MARGIN)
    assert again.since == 100.2 and again.confirmed_at == 102.0


def test_a_new_version_counts_from_the_previous_read_when_reads_are_frequent() -> None:
    """The renewal was written after the previous read (sent at 102.0) was served: counting from then is
    safe, and the takeover comes within the lease duration of the leader's last renewal."""
    seen = observe(observe(None, lease("7"), 100.0, 100.2, MARGIN), lease("7"), 102.0, 102.1, MARGIN)
    renewed_seen = observe(seen, lease("8"), 104.0, 104.1, MARGIN)
    assert renewed_seen.since == 102.0
    assert expiry(renewed_seen) == 117.0


def test_a_new_version_after_a_long_gap_is_counted_no_earlier_than_the_margin_allows() -> None:
    """Reads failed for 20 s: the change may have been written just before this answer, and the leader
    may go on until the renew deadline after it. Counting from `received - margin` keeps half the margin."""
    seen = observe(None, lease("7"), 100.0, 100.2, MARGIN)
    later = observe(seen, lease("9"), 120.0, 120.3, MARGIN)
    assert later.since == pytest.approx(117.8)
    leader_stops_at_the_latest = 120.3 + 10  # renewed just before the answer, renew deadline 10 s
    assert expiry(later) - leader_stops_at_the_latest >= MARGIN


def test_resource_versions_are_compared_for_equality_only() -> None:
    """An older-looking version is news all the same (after an etcd restore, versions may go back)."""
    seen = observe(None, lease("1000"), 100.0, 100.1, MARGIN)
    restored = observe(seen, lease("999"), 102.0, 102.1, MARGIN)
    assert restored.version == "999" and restored.since == 100.0


@pytest.mark.parametrize(("holder", "now", "expected"), [
    ("a", 114.0, False),    # held and fresh
    ("a", 115.0, True),     # held but not renewed for the lease duration
    ("", 100.0, True),      # released
    (None, 100.0, True),    # never held
    ("me", 100.0, True),    # ours: a restart with the same identity resumes it
])
def test_may_take(holder: str | None, now: float, expected: bool) -> None:
    seen = Observation("7", LeaseRecord.of(lease("7", holder)), since=100.0, confirmed_at=100.0)
    assert may_take(seen, "me", now) is expected


def test_taking_a_lease_from_another_counts_a_transition_and_keeps_the_version() -> None:
    taken = claimed(lease("7", "a", transitions=3), "b", 15, "tenantry-system", "tenantry-operator")
    assert taken["metadata"]["resourceVersion"] == "7"  # optimistic concurrency: a 409 if it changed
    assert taken["spec"]["holderIdentity"] == "b" and taken["spec"]["leaseTransitions"] == 4
    assert taken["spec"]["acquireTime"] == taken["spec"]["renewTime"] != "2026-12-01T10:00:00.000000Z"


def test_resuming_ones_own_lease_keeps_acquire_time_and_transitions() -> None:
    resumed = claimed(lease("7", "b", transitions=3), "b", 15, "tenantry-system", "tenantry-operator")
    assert resumed["spec"]["leaseTransitions"] == 3
    assert resumed["spec"]["acquireTime"] == "2026-12-01T10:00:00.000000Z"


def test_taking_a_released_lease_is_no_transition_and_creating_one_starts_at_zero() -> None:
    assert claimed(lease("7", ""), "b", 15, "ns", "n")["spec"]["leaseTransitions"] == 3
    created = claimed(None, "b", 15, "tenantry-system", "tenantry-operator")
    assert "resourceVersion" not in created["metadata"]
    assert created["metadata"]["namespace"] == "tenantry-system"
    assert created["spec"]["holderIdentity"] == "b" and created["spec"]["leaseTransitions"] == 0


def test_renewal_and_release_keep_the_version_and_release_empties_the_holder() -> None:
    renewal = renewed(lease("8", "b"))
    assert renewal["metadata"]["resourceVersion"] == "8" and renewal["spec"]["holderIdentity"] == "b"
    assert renewal["spec"]["renewTime"] != "2026-12-01T10:00:04.000000Z"
    handed_back = released(lease("9", "b"))
    assert handed_back["metadata"]["resourceVersion"] == "9" and handed_back["spec"]["holderIdentity"] == ""


def test_identity_is_the_pod_name_with_a_random_suffix_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENANTRY_LEADER_IDENTITY", raising=False)
    monkeypatch.setenv("POD_NAME", "tenantry-operator-7d9f-x2v4q")
    first, second = process_identity(), process_identity()
    assert first.startswith("tenantry-operator-7d9f-x2v4q_") and first != second
    monkeypatch.setenv("TENANTRY_LEADER_IDENTITY", "supervised-1")
    assert process_identity() == "supervised-1"


def test_settings_default_to_client_go_timings_and_refuse_unsafe_ones() -> None:
    defaults = Settings().leader_election
    assert (defaults.enabled, defaults.lease_name) == (True, "tenantry-operator")
    assert (defaults.lease_duration_seconds, defaults.renew_deadline_seconds, defaults.retry_period_seconds) == \
        (15, 10.0, 2.0)
    with pytest.raises(ValidationError, match="renewDeadlineSeconds must be less than leaseDurationSeconds"):
        LeaderElectionSettings.model_validate({"leaseDurationSeconds": 10, "renewDeadlineSeconds": 10})
    with pytest.raises(ValidationError, match=r"more than 1\.2 x retryPeriodSeconds"):
        LeaderElectionSettings.model_validate({"renewDeadlineSeconds": 2, "retryPeriodSeconds": 2})


def test_lease_namespace_is_the_pods_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "platform")
    assert LeaderElectionSettings().lease_namespace() == "platform"
    assert LeaderElectionSettings(namespace="ops").lease_namespace() == "ops"
