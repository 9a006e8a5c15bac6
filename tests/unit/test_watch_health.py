"""One object a callback chokes on must not make a list-and-watch loop list its kind again and again
(issue 11, finding 7); failures of the watch itself must show on the health endpoint.

`kube.list_then_watch` is driven here by a scripted event source standing in for the apiserver's
list and watch streams (what the loop does with them is under test, not the API), feeding the
operator's Informer, the meter's Reflector and the supplied-Secret watch as in production.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import pytest

from tenantry import watch_health
from tenantry.controller.informer import Informer
from tenantry.controller.store import Store
from tenantry.controller.supplied_secrets import SecretVersions
from tenantry.kube import ApiError, list_then_watch
from tenantry.metering.exporter import DeliveryStats, MeteringCollector
from tenantry.metering.integrator import Integrator
from tenantry.metering.sampler import Reflector, Sampler, tenant_info
from tenantry.watch_health import UNHEALTHY_AFTER, WatchHealth


def obj(name: str, version: str, namespace: str = "acme--bakery", kind: str = "ConfigMap") -> dict[str, Any]:
    return {"kind": kind, "metadata": {"namespace": namespace, "name": name, "resourceVersion": version,
                                       "labels": {"app.kubernetes.io/managed-by": "tenantry"}},
            "data": {"version": version}}


class ScriptedSource:
    """What list_then_watch reads: `items` for every list, then `events` on the first watch (later
    watches stay open, as a quiet apiserver's would), or `watch_error` raised by every watch."""

    def __init__(self, items: list[dict[str, Any]], events: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
                 watch_error: Exception | None = None):
        self.items, self.events, self.watch_error = items, list(events), watch_error
        self.lists = 0
        self.watches = 0
        self.list_times: list[float] = []
        self.from_cache: list[bool] = []
        self.delivered = asyncio.Event()

    async def list_with_version(self, kind: str, label_selector: str | None = None, *,
                                metadata_only: bool = False, from_cache: bool = False
                                ) -> tuple[list[dict[str, Any]], str]:
        self.lists += 1
        self.from_cache.append(from_cache)
        self.list_times.append(time.monotonic())
        return [dict(item) for item in self.items], "10"

    async def watch(self, kind: str, *, resource_version: str, label_selector: str | None = None,
                    timeout_seconds: int = 300, metadata_only: bool = False,
                    on_open: Callable[[], None] | None = None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        self.watches += 1
        if self.watch_error is not None:
            raise self.watch_error
        if on_open is not None:
            on_open()
        events, self.events = self.events, []
        for event in events:
            yield event
        self.delivered.set()
        await asyncio.Event().wait()  # a watch that stays open
        yield "BOOKMARK", {}  # pragma: no cover - never reached


async def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def test_an_object_the_informer_callback_fails_on_is_skipped_and_the_watch_kept(
        caplog: pytest.LogCaptureFixture) -> None:
    changes: list[tuple[str, str]] = []

    def on_change(event_type: str, changed: dict[str, Any], _old: dict[str, Any] | None) -> None:
        if changed["metadata"]["name"] == "poison":
            raise KeyError("a field the callback expected")
        changes.append((event_type, changed["metadata"]["name"]))

    source = ScriptedSource([obj("a", "1"), obj("poison", "2"), obj("b", "3")],
                            [("MODIFIED", obj("poison", "4")), ("ADDED", obj("c", "5")),
                             ("MODIFIED", obj("poison", "6"))])
    informer = Informer(source, Store(), "ConfigMap", on_change)  # type: ignore[arg-type]

    async def scenario() -> None:
        informer.start()
        await asyncio.wait_for(source.delivered.wait(), 10)
        await informer.stop()

    with caplog.at_level(logging.ERROR, logger="tenantry.watch"):
        asyncio.run(scenario())
    # Everything else arrived, from the list and from the watch, on the first and only list.
    assert changes == [("MODIFIED", "a"), ("MODIFIED", "b"), ("ADDED", "c")]
    assert source.lists == 1 and source.watches == 1
    assert informer.health.callback_errors == 3 and informer.health.healthy
    # The same version failing again (an edit that keeps it, as a relist would bring) is counted, not logged.
    with caplog.at_level(logging.ERROR, logger="tenantry.watch"):
        informer.health.isolate(on_change, obj("poison", "6"), "MODIFIED", obj("poison", "6"), None)
    assert informer.health.callback_errors == 4
    # Logged with its name, once per version: 2 (listed), 4 and 6 (watched).
    logged = [r.getMessage() for r in caplog.records if "poison" in r.getMessage()]
    assert len(logged) == 3 and all("acme--bakery/poison" in line for line in logged), logged


def test_the_meter_s_reflector_and_the_secret_watch_isolate_an_object_too() -> None:
    seen: list[Any] = []

    def changed(kind: str, key: Any, old: Any, new: Any) -> None:
        if key[1] == "poison":
            raise ZeroDivisionError("a price the meter cannot compute")
        seen.append(key[1])

    tenants = [{"kind": "Tenant", "metadata": {"namespace": "reseller-acme", "name": n, "uid": f"uid-{n}",
                                               "resourceVersion": "1"},
                "spec": {"plan": "starter"}, "status": {"phase": "Active", "admission": {"region": "eu-west"}}}
               for n in ("a", "poison", "b")]
    source = ScriptedSource(tenants, [("ADDED", {**tenants[0], "metadata": {**tenants[0]["metadata"], "name": "c"}})])
    reflector = Reflector(source, "Tenant", tenant_info, changed)  # type: ignore[arg-type]

    secrets_seen: list[tuple[str, str, str]] = []

    def secret_changed(event_type: str, namespace: str, name: str) -> None:
        if name == "poison":
            raise RuntimeError("boom")
        secrets_seen.append((event_type, namespace, name))

    secret_source = ScriptedSource([obj("www-tls", "1", kind="Secret")],
                                   [("ADDED", obj("poison", "2", kind="Secret")),
                                    ("ADDED", obj("ok", "3", kind="Secret"))])
    for item in secret_source.items + [e[1] for e in secret_source.events]:
        item["metadata"].pop("labels")  # not the operator's own Secrets
    secrets = SecretVersions(secret_source, secret_changed)  # type: ignore[arg-type]

    async def scenario() -> None:
        task = asyncio.create_task(reflector.run())
        secrets.start()
        await asyncio.wait_for(asyncio.gather(source.delivered.wait(), secret_source.delivered.wait()), 10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await secrets.stop()

    asyncio.run(scenario())
    assert seen == ["a", "b", "c"] and source.lists == 1 and reflector.health.callback_errors == 1
    assert secrets_seen == [("ADDED", "acme--bakery", "ok")] and secret_source.lists == 1
    assert secrets.health.callback_errors == 1


def test_a_failing_watch_backs_off_and_turns_unhealthy_after_repeated_failures() -> None:
    """A watch refused after every successful list (a missing `watch` permission, say) used to list
    again every 0.5 s forever, healthy; now the back-off grows and the failures are counted."""
    source = ScriptedSource([obj("a", "1")], watch_error=ApiError(403, "Forbidden", "cannot watch", "WATCH", "/x"))
    health = WatchHealth("ConfigMap")

    async def scenario() -> None:
        task = asyncio.create_task(list_then_watch(source, "ConfigMap", on_list=lambda items: None,  # type: ignore[arg-type]
                                                   on_event=lambda t, o: None, health=health))
        await wait_until(lambda: health.consecutive_failures >= 3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    gaps = [b - a for a, b in zip(source.list_times, source.list_times[1:], strict=False)]
    assert gaps[0] >= 0.45 and gaps[1] >= 0.95, gaps  # 0.5 s, then 1 s: growing, not reset by the list
    assert "403" in health.last_error
    # The first list fills an empty picture from the API server's watch cache; a list again reads etcd, never
    # older than what the picture holds already.
    assert source.from_cache[0] is True and not any(source.from_cache[1:]), source.from_cache


def test_repeated_failures_fail_the_health_endpoints_and_a_working_watch_clears_them() -> None:
    health = WatchHealth("Secret")
    for _ in range(UNHEALTHY_AFTER - 1):
        health.failed(aiohttp.ClientConnectionError("connection refused"))
    assert health.healthy and watch_health.problems([health]) == []
    health.failed(aiohttp.ClientConnectionError("connection refused"))
    assert not health.healthy
    [problem] = watch_health.problems([health])
    assert "Secret" in problem and "connection refused" in problem

    # The operator's /healthz: kopf's probe fails (HTTP 500), permanently so that kopf does not retry.
    from tenantry.controller.handlers import watches_probe

    class Loop:
        def __init__(self, h: WatchHealth) -> None:
            self.health = h

    with pytest.raises(kopf.PermanentError, match="Secret"):
        watches_probe(memo={"informers": [Loop(WatchHealth("ConfigMap"))], "secret_watch": Loop(health)})
    health.working()
    assert watches_probe(memo={"secret_watch": Loop(health)}) == "ok"


def test_the_meter_exports_callback_errors_and_failures_by_kind() -> None:
    a, b = WatchHealth("Tenant"), WatchHealth("Tenant")
    a.skipped(obj("x", "1"), ValueError("bad"))
    b.skipped(obj("y", "1"), ValueError("bad"))
    b.failed("gone")
    collector = MeteringCollector("eu-west", Integrator("eu-west", 3600, 0.0), Sampler("eu-west"),
                                  DeliveryStats(sink="file"), watches=lambda: [a, b])
    text = collector.render_text().decode()
    assert 'tenantry_watch_callback_errors_total{kind="Tenant"} 2.0\n' in text
    assert 'tenantry_watch_consecutive_failures{kind="Tenant"} 1.0\n' in text


def test_the_meter_s_healthz_fails_while_a_reflector_keeps_failing(tmp_path: Path) -> None:
    """The meter serves /healthz itself (its Pod's probes): 503 naming the kind, then ok again."""
    from tenantry.kube import Credentials, KubeClient
    from tenantry.metering.meter import Meter, MeterConfig
    from tenantry.metering.sinks import parse_sink

    async def scenario() -> list[tuple[int, str]]:
        meter = Meter(MeterConfig(region="eu-west", spool_dir=tmp_path / "spool", port=0, bind_address="127.0.0.1"),
                      KubeClient(Credentials(server="https://127.0.0.1:1")), parse_sink(f"file:{tmp_path}/r.jsonl"))
        reflector = Reflector(meter.client, "ResourceQuota", lambda o: o, lambda *a: None)
        meter.reflectors = [reflector]
        await meter._serve()
        answers = []
        async with aiohttp.ClientSession() as http:
            for failures in (0, UNHEALTHY_AFTER):
                reflector.health.consecutive_failures = failures
                reflector.health.last_error = "403 Forbidden"
                async with http.get(f"http://127.0.0.1:{meter.port}/healthz") as response:
                    answers.append((response.status, await response.text()))
        assert meter._runner is not None
        await meter._runner.cleanup()
        await meter.client.close()
        return answers

    ok, failing = asyncio.run(scenario())
    assert ok == (200, "ok")
    assert failing[0] == 503 and "ResourceQuota" in failing[1] and "403 Forbidden" in failing[1]
