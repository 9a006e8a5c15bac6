"""The resilient kopf watch loop (tenantry.controller.kopf_watch): API errors and ERROR events restart
the stream with back-off; cancellation and clean ends go through. kopf's own stream is replaced by
a scripted generator here; the operator-level proof is in tests/reliability/test_control_plane_faults.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kopf._cogs.clients import errors, watching

from tenantry.controller import kopf_watch


def _scripted(script: list[list[Any]]) -> Any:
    """An infinite_watch stand-in: each call plays the next list; an exception in it is raised."""
    calls = iter(script)

    async def infinite_watch(**_: Any) -> AsyncIterator[Any]:
        for item in next(calls):
            if isinstance(item, BaseException):
                raise item
            yield item

    return infinite_watch


def _collect(watch: Any, sleeps: list[float]) -> list[Any]:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def run() -> list[Any]:
        return [event async for event in kopf_watch.resilient(watch, sleep=sleep)(resource="tenants")]

    return asyncio.run(run())


def test_a_404_and_an_error_event_restart_the_stream_with_back_off() -> None:
    sleeps: list[float] = []
    watch = _scripted([
        ["a", errors.APINotFoundError({"message": "404 page not found"}, status=404, headers={})],
        [errors.APINotFoundError({"message": "404 page not found"}, status=404, headers={})],
        [watching.WatchingError("Error in the watch-stream: {'code': 500}")],
        ["b", errors.APIServerError({"message": "etcd"}, status=503, headers={})],
        ["c"],
    ])
    assert _collect(watch, sleeps) == ["a", "b", "c"]
    # 1 s after an event, doubling while nothing arrives, back to 1 s once events flow again.
    assert sleeps == [1.0, 2.0, 4.0, 1.0]


def test_back_off_is_capped() -> None:
    sleeps: list[float] = []
    failing = [[errors.APIForbiddenError({"message": "forbidden"}, status=403, headers={})] for _ in range(8)]
    assert _collect(_scripted([*failing, []]), sleeps) == []
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_other_exceptions_and_cancellation_are_not_swallowed() -> None:
    with pytest.raises(ValueError):
        _collect(_scripted([[ValueError("a bug")]]), [])
    with pytest.raises(asyncio.CancelledError):
        _collect(_scripted([[asyncio.CancelledError()]]), [])


def test_install_is_idempotent_and_keeps_the_original() -> None:
    original = getattr(watching.infinite_watch, "__wrapped__", watching.infinite_watch)
    try:
        kopf_watch.install()
        kopf_watch.install()
        assert watching.infinite_watch.__wrapped__ is original  # type: ignore[attr-defined]
    finally:
        watching.infinite_watch = original  # type: ignore[assignment]
