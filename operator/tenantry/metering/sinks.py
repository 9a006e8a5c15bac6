"""Where billing records go, and how none is lost on the way.

Records first land in the **spool**, a directory of batch files on disk, and leave it only when a
sink has taken them: a `file:` sink once the lines are appended and fsynced, an `http(s)://` sink
once the receiver answered 2xx. A sink that fails is retried with exponential back-off (with
jitter, capped); the meter keeps metering meanwhile and the spool grows.

Spool format (`<spool>/outbox/`): one file per batch of at most `batch_size` records, named
`<nanoseconds>-<sequence>.json`, holding a JSON array of CloudEvents, i.e. exactly the body of one
`application/cloudevents-batch+json` POST. A file is written to a temporary name, fsynced, renamed,
and the directory fsynced, so a crash leaves either the whole batch or none of it; it is deleted
(and the directory fsynced) only after its delivery. Files are sent oldest first. A record whose id
is already waiting in the spool is not spooled twice; a record delivered before a crash may be
delivered again after it (at least once), with the same id, which is what receivers de-duplicate on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

from tenantry.metering.records import BATCH_CONTENT_TYPE
from tenantry.pacing import RetryPacer

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
AUTHORIZATION_ENV = "TENANTRY_SINK_AUTHORIZATION"


class SinkError(Exception):
    """A sink did not take a batch; it stays in the spool and is tried again."""


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Whole-or-nothing file write: temporary file, fsync, rename, fsync of the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_directory(path.parent)


class Spool:
    def __init__(self, directory: str | os.PathLike[str], *, batch_size: int = DEFAULT_BATCH_SIZE):
        self.directory = Path(directory) / "outbox"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.batch_size = batch_size
        self._sequence = itertools.count()
        self._ids: set[str] = set()  # ids of every record waiting
        self._batch_ids: dict[str, list[str]] = {}  # batch file name -> its record ids
        for stale in self.directory.glob(".*.tmp"):
            stale.unlink()  # a batch whose write a crash interrupted was never acknowledged to anyone
        for path in self.batches():
            ids = [record["id"] for record in self.read(path)]
            self._batch_ids[path.name] = ids
            self._ids.update(ids)

    def __len__(self) -> int:
        return len(self._ids)

    def put(self, records: Iterable[dict[str, Any]]) -> int:
        """Durably add records (those not already waiting); returns how many were added."""
        added = 0
        for batch in self._batches(records):
            name, data = self._stage(batch)
            try:
                write_atomically(self.directory / name, data)
            except BaseException:
                self._unstage(name)
                raise
            added += len(batch)
        return added

    async def add(self, records: Iterable[dict[str, Any]]) -> int:
        """`put` for the event loop, which keeps serving meanwhile: a batch is encoded on the loop
        (a few milliseconds for 500 records), then written and fsynced in a thread, which waits
        for the disk without the GIL. (JSON encoding in a thread would hold the GIL all along, and
        stop the loop just the same.) Batches are written one after the other, as by `put`."""
        added = 0
        for batch in self._batches(records):
            name, data = self._stage(batch)
            try:
                await asyncio.to_thread(write_atomically, self.directory / name, data)
            except BaseException:
                self._unstage(name)
                raise
            added += len(batch)
        return added

    def _batches(self, records: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        """The records not already waiting, `batch_size` at a time (worked out a batch at a time)."""
        batch: list[dict[str, Any]] = []
        seen: set[str] = set()
        for record in records:
            if record["id"] in self._ids or record["id"] in seen:
                continue
            seen.add(record["id"])
            batch.append(record)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _stage(self, batch: list[dict[str, Any]]) -> tuple[str, bytes]:
        """A batch's file name and content. Its ids count as waiting from here on, before its file
        exists: the deliverer may send and `ack` the file as soon as it is there."""
        name = f"{time.time_ns():020d}-{next(self._sequence):06d}.json"
        ids = [record["id"] for record in batch]
        self._batch_ids[name] = ids
        self._ids.update(ids)
        return name, json.dumps(batch, separators=(",", ":")).encode()

    def _unstage(self, name: str) -> None:
        """The batch's write failed: its records are not waiting (the meter spools them again)."""
        self._ids.difference_update(self._batch_ids.pop(name, ()))

    def batches(self) -> list[Path]:
        return sorted(p for p in self.directory.glob("*.json") if not p.name.startswith("."))

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = json.loads(path.read_bytes())
        return records

    def set_aside(self, path: Path) -> None:
        """A batch that cannot be read is kept for a person to look at, and no longer sent."""
        with contextlib.suppress(FileNotFoundError):
            path.rename(path.with_suffix(".bad"))
        self._ids.difference_update(self._batch_ids.pop(path.name, ()))

    def ack(self, path: Path) -> None:
        """The batch was delivered: forget it."""
        self.delete(path)
        self.forget(path)

    def delete(self, path: Path) -> None:
        """`ack`'s file work (the deliverer runs it in a thread: a directory fsync can take a while)."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        _fsync_directory(self.directory)

    def forget(self, path: Path) -> None:
        """`ack`'s bookkeeping, once the file is gone (the batch's records no longer wait)."""
        self._ids.difference_update(self._batch_ids.pop(path.name, ()))


class Sink(Protocol):
    label: str

    async def send(self, records: Sequence[dict[str, Any]]) -> None: ...

    async def close(self) -> None: ...


class FileSink:
    """`file:PATH`: JSON lines appended to PATH and fsynced before the batch leaves the spool."""

    label = "file"

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    async def send(self, records: Sequence[dict[str, Any]]) -> None:
        # Encoded on the event loop (~15 ms for a batch of 500), written and fsynced in a thread: a
        # thread encoding would take the loop's GIL just the same, and slow the scrapes it serves.
        data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
        try:
            await asyncio.to_thread(self._append, data)
        except OSError as error:
            raise SinkError(f"could not append to {self.path}: {error}") from error

    async def close(self) -> None:
        return None


class HttpSink:
    """`http(s)://...`: one POST of `application/cloudevents-batch+json` per batch; 2xx means taken.

    An `Authorization` header value (e.g. `Bearer ...`) comes from `$TENANTRY_SINK_AUTHORIZATION`
    (the operator fills it from the Secret `metering.sinkSecret`); it and any credentials in the
    URL never appear in logs or errors, which name the sink by scheme, host and path only."""

    def __init__(self, url: str, *, authorization: str | None = None, timeout: float = 30.0):
        self.url = url
        self.label = url.split(":", 1)[0]
        parts = urlsplit(url)
        self.display = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
        self._headers = {"Content-Type": BATCH_CONTENT_TYPE}
        if authorization:
            self._headers["Authorization"] = authorization
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, records: Sequence[dict[str, Any]]) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = json.dumps(list(records), separators=(",", ":"))
        try:
            async with self._session.post(self.url, data=body, headers=self._headers) as r:
                if not 200 <= r.status < 300:
                    text = (await r.text())[:200]
                    raise SinkError(f"{self.display} answered {r.status}: {text}")
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as error:
            # Connection errors name host and port only; other errors may quote the URL: type only.
            detail = f": {error}" if isinstance(error, aiohttp.ClientConnectorError) else ""
            raise SinkError(f"{self.display}: {type(error).__name__}{detail}") from error

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def parse_sink(spec: str) -> Sink:
    """`file:/var/lib/records.jsonl`, `file:records.jsonl`, `http://...` or `https://...`."""
    if spec.startswith("file:"):
        path = spec[len("file:"):]
        if path.startswith("//"):
            path = path[2:]  # file:///abs/path
        if not path:
            raise ValueError("a file: sink needs a path, e.g. file:/var/lib/tenantry/records.jsonl")
        return FileSink(path)
    if spec.startswith(("http://", "https://")):
        return HttpSink(spec, authorization=os.environ.get(AUTHORIZATION_ENV) or None)
    raise ValueError(f"unknown sink {spec!r}: use file:PATH or an http(s):// URL")


class Deliverer:
    """Moves batches from the spool to the sink, oldest first, with back-off while the sink fails."""

    def __init__(self, spool: Spool, sink: Sink, *, on_result: Callable[[str, int], None] | None = None,
                 initial_backoff: float = 1.0, max_backoff: float = 60.0):
        self.spool, self.sink = spool, sink
        self.on_result = on_result or (lambda result, count: None)
        self.pacer = RetryPacer(initial_backoff, max_backoff)

    def wake(self) -> None:
        self.pacer.wake()

    async def deliver_pending(self) -> bool:
        """Try every waiting batch once, in order; False at the first failure (the rest wait)."""
        for path in self.spool.batches():
            try:
                records = self.spool.read(path)
            except (OSError, ValueError) as error:
                log.error("Spool batch %s is unreadable and was set aside as .bad: %s", path.name, error)
                self.spool.set_aside(path)
                continue
            try:
                await self.sink.send(records)
            except SinkError as error:
                self.on_result("failed", len(records))
                log.warning("Sink %s refused a batch of %d records; %d records wait in the spool: %s",
                            self.sink.label, len(records), len(self.spool), error)
                return False
            # The file goes in a thread, which waits for the disk off the event loop (the meter's
            # /metrics); its records are forgotten on the loop, once it is gone.
            await asyncio.to_thread(self.spool.delete, path)
            self.spool.forget(path)
            self.on_result("delivered", len(records))
        return True

    async def run(self) -> None:
        while True:
            await self.pacer.pause(await self.deliver_pending())
