"""The one back-off of the package (tenantry.pacing.Backoff): what every retrying loop waits."""

from __future__ import annotations

from tenantry.pacing import Backoff


def test_delays_double_up_to_the_maximum_and_start_over_after_a_success() -> None:
    backoff = Backoff(0.5, 30.0)
    assert [backoff.next() for _ in range(9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_jitter_spreads_each_delay_around_the_doubling() -> None:
    backoff = Backoff(1.0, 8.0, jitter=0.2)
    delays = [backoff.next() for _ in range(6)]
    for delay, nominal in zip(delays, [1.0, 2.0, 4.0, 8.0, 8.0, 8.0], strict=True):
        assert nominal * 0.8 <= delay <= nominal * 1.2
    spread = {round(Backoff(1.0, 8.0, jitter=0.2).next(), 6) for _ in range(50)}
    assert len(spread) > 1  # not one fixed value: loops that failed together retry out of step
