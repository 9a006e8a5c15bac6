"""The work queue's memory of when each key last succeeded, which the periodic resync reads (handlers.py):
an object is looked at again when its last reconcile is a period old, not every period whatever happened."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

from tenantry.controller.queue import WorkQueue


def test_a_key_reconciled_within_the_period_is_not_due_and_one_never_reconciled_is() -> None:
    now = [1000.0]
    done: list[Hashable] = []

    async def scenario() -> list[list[str]]:
        async def handler(key: Hashable) -> None:
            done.append(key)

        queue = WorkQueue(handler, workers=1, clock=lambda: now[0])
        queue.start()
        queue.add("a")
        while "a" not in done:
            await asyncio.sleep(0.01)
        seen = [queue.due(["a", "b"], period=300)]
        now[0] += 299
        seen.append(queue.due(["a", "b"], period=300))
        now[0] += 1
        seen.append(queue.due(["a", "b"], period=300))
        await queue.stop()
        return seen

    assert asyncio.run(scenario()) == [["b"], ["b"], ["a", "b"]]


def test_a_failed_reconcile_does_not_count_as_looked_at() -> None:
    now = [0.0]

    async def scenario() -> list[str]:
        attempts: list[Hashable] = []

        async def handler(key: Hashable) -> None:
            attempts.append(key)
            raise RuntimeError("the API server said no")

        queue = WorkQueue(handler, workers=1, base_delay=60, clock=lambda: now[0])
        queue.start()
        queue.add("a")
        while not attempts:
            await asyncio.sleep(0.01)
        due = queue.due(["a"], period=300)
        await queue.stop()
        return due

    assert asyncio.run(scenario()) == ["a"]


def test_keys_of_objects_that_are_gone_are_forgotten() -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        async def handler(_key: Hashable) -> None:
            return None

        queue = WorkQueue(handler, workers=1, clock=lambda: 10.0)
        queue.start()
        queue.add("gone")
        while queue.due(["gone"], period=300):
            await asyncio.sleep(0.01)
        first = queue.due([], period=300)  # "gone" was deleted: not among the objects any more
        again = queue.due(["gone"], period=300)  # a new object of the same name is due at once
        await queue.stop()
        return first, again

    assert asyncio.run(scenario()) == ([], ["gone"])


def test_reconciles_that_make_no_request_leave_the_event_loop_to_others() -> None:
    """A restart reconciles every object, and most find nothing to do: no API call, no await that waits. The
    loop must still run the rest of the operator (watches, the webhook, /healthz, a request's timeout)
    between them, not after thousands of them."""
    async def scenario() -> int:
        done: list[Hashable] = []
        seen_while_busy: list[int] = []

        async def handler(key: Hashable) -> None:
            done.append(key)  # nothing to do, nothing awaited

        queue = WorkQueue(handler, workers=1)
        for index in range(2000):
            queue.add(index)

        async def other_task() -> None:  # a watch, a probe: wants the loop now and then
            while len(done) < 2000:
                seen_while_busy.append(len(done))
                await asyncio.sleep(0)

        queue.start()
        await other_task()
        await queue.stop()
        return len([n for n in seen_while_busy if 0 < n < 2000])

    assert asyncio.run(scenario()) > 100
