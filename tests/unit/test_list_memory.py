"""A list's objects do not outlive the list (issue 15): the Store keeps what it needs of them, trimmed
and compact, and `kube.list_then_watch` must not hold the whole list - a start-up list of every tenant's
objects, managedFields and all - for as long as the watch that follows runs."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

from tenantry.controller.informer import Informer
from tenantry.controller.store import Store
from tenantry.kube import list_then_watch


class Item(dict[str, Any]):
    """An object of the list (a dict that can be referred to weakly)."""


class Source:
    """What list_then_watch reads: one list of `count` ConfigMaps, then a watch that stays open."""

    def __init__(self, count: int):
        self.count = count
        self.listed: list[weakref.ref[Item]] = []
        self.watching = asyncio.Event()

    async def list_with_version(self, kind: str, label_selector: str | None = None, *,
                                metadata_only: bool = False, from_cache: bool = False
                                ) -> tuple[list[dict[str, Any]], str]:
        items = [Item({"kind": kind, "metadata": {
            "namespace": "acme--bakery", "name": f"c{i}", "resourceVersion": str(i),
            "labels": {"app.kubernetes.io/managed-by": "tenantry"},
            "managedFields": [{"manager": "tenantry", "operation": "Update", "fieldsV1": {"f:data": {}}}]},
            "data": {"n": str(i)}}) for i in range(self.count)]
        self.listed = [weakref.ref(item) for item in items]
        return list(items), "10"

    async def watch(self, kind: str, *, resource_version: str, label_selector: str | None = None,
                    timeout_seconds: int = 300, metadata_only: bool = False,
                    on_open: Callable[[], None] | None = None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        if on_open is not None:
            on_open()
        self.watching.set()
        await asyncio.Event().wait()  # a quiet apiserver's watch
        yield "BOOKMARK", {}


def test_a_lists_objects_are_not_kept_while_the_watch_runs() -> None:
    store = Store()
    source = Source(100)
    informer = Informer(source, store, "ConfigMap", lambda *_: None)  # type: ignore[arg-type]

    async def scenario() -> list[bool]:
        task = asyncio.create_task(list_then_watch(source, "ConfigMap", on_list=informer._relisted,  # type: ignore[arg-type]
                                                   on_event=lambda *_: None))
        await asyncio.wait_for(source.watching.wait(), timeout=10)
        gc.collect()
        alive = [ref() is not None for ref in source.listed]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return alive

    alive = asyncio.run(scenario())
    assert store.count("ConfigMap") == 100
    assert store.get("ConfigMap", "c7", "acme--bakery") == {
        "kind": "ConfigMap", "metadata": {"namespace": "acme--bakery", "name": "c7", "resourceVersion": "7",
                                          "labels": {"app.kubernetes.io/managed-by": "tenantry"}},
        "data": {"n": "7"}}
    assert sum(alive) == 0, f"{sum(alive)} of the list's 100 objects still held while the watch runs"
