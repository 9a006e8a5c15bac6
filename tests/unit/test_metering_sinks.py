"""The spool and the sinks: durable, batched, retried until a 2xx, de-duplicated by id."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest

from support.cloudevents_receiver import Receiver
from tenantry.metering.pricing import Price
from tenantry.metering.records import BATCH_CONTENT_TYPE, usage_record
from tenantry.metering.sinks import Deliverer, FileSink, HttpSink, SinkError, Spool, parse_sink

T0 = 1_800_000_000


def records(count: int, start: int = 0) -> list[dict]:
    return [usage_record(region="r", reseller="acme", tenant=f"t{i}", tenant_uid=f"uid-{i}", plan="p", meter="cpu",
                         quantity=Decimal("0.5"), window_start=T0, window_end=T0 + 3600,
                         retail=Price("EUR", Decimal("0.05")), wholesale=Price("USD", Decimal("0.02")))
            for i in range(start, start + count)]


def test_spool_batches_survive_a_reopen_and_skip_ids_already_waiting(tmp_path: Path) -> None:
    spool = Spool(tmp_path, batch_size=4)
    assert spool.put(records(10)) == 10
    assert [len(Spool.read(p)) for p in spool.batches()] == [4, 4, 2]
    reopened = Spool(tmp_path, batch_size=4)  # a restarted meter
    assert len(reopened) == 10
    assert reopened.put(records(12)) == 2  # the 10 are waiting already: a replayed window adds nothing
    first = reopened.batches()[0]
    reopened.ack(first)
    assert len(reopened) == 8 and not first.exists()
    assert not list((tmp_path / "outbox").glob(".*.tmp"))


def test_a_half_written_batch_is_not_delivered(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    (tmp_path / "outbox" / ".00000000000000000001-000000.json.tmp").write_text("[{")  # crash mid-write
    assert Spool(tmp_path).batches() == [] and len(spool) == 0


def test_parse_sink() -> None:
    assert isinstance(parse_sink("file:/tmp/x.jsonl"), FileSink)
    assert parse_sink("file:///tmp/x.jsonl").path == Path("/tmp/x.jsonl")  # type: ignore[attr-defined]
    assert isinstance(parse_sink("https://billing.example/in"), HttpSink)
    with pytest.raises(ValueError, match="unknown sink"):
        parse_sink("s3://bucket")


def test_file_sink_appends_json_lines(tmp_path: Path) -> None:
    spool, out = Spool(tmp_path / "spool"), tmp_path / "out" / "records.jsonl"
    spool.put(records(3))
    assert asyncio.run(Deliverer(spool, FileSink(out)).deliver_pending())
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in lines] == [r["id"] for r in records(3)]
    assert len(spool) == 0


def test_http_sink_retries_until_the_receiver_recovers_and_loses_nothing(tmp_path: Path) -> None:
    results: list[tuple[str, int]] = []
    with Receiver() as receiver:
        spool = Spool(tmp_path, batch_size=5)
        sink = HttpSink(receiver.url)
        deliverer = Deliverer(spool, sink, on_result=lambda r, n: results.append((r, n)),
                              initial_backoff=0.05, max_backoff=0.2)

        async def scenario() -> None:
            task = asyncio.create_task(deliverer.run())
            receiver.failing = True
            spool.put(records(12))
            deliverer.wake()
            while receiver.refused < 3:  # it backs off and tries again
                await asyncio.sleep(0.02)
            assert len(spool) == 12 and receiver.records() == []
            receiver.failing = False
            while len(spool):
                await asyncio.sleep(0.02)
            task.cancel()
            await sink.close()

        asyncio.run(asyncio.wait_for(scenario(), 20))
    assert sorted(r["id"] for r in receiver.records()) == sorted(r["id"] for r in records(12))
    assert receiver.content_types == {BATCH_CONTENT_TYPE}
    assert ("delivered", 5) in results and ("failed", 5) in results
    assert receiver.posts - receiver.refused == 3  # 12 records in batches of 5


def test_http_sink_sends_the_authorization_and_never_shows_secrets(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTRY_SINK_AUTHORIZATION", "Bearer s3cret")
    with Receiver() as receiver:
        sink = parse_sink(receiver.url + "?key=k3y")

        async def send_twice() -> None:
            await sink.send(records(1))
            assert receiver.authorizations == {"Bearer s3cret"}
            receiver.failing = True
            try:
                with pytest.raises(SinkError) as failed:
                    await sink.send(records(1))
                assert "503" in str(failed.value)
                for secret in ("s3cret", "k3y"):
                    assert secret not in str(failed.value)
            finally:
                await sink.close()

        asyncio.run(send_twice())
