"""The webhook and file sinks over real HTTP and real files, against a scripted receiver."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from sinks import (
    FileSink,
    FileSinkConfig,
    MemoryOutbox,
    OutboxDrain,
    OutboxEntry,
    Retrying,
    RetryPolicy,
    WebhookSink,
    WebhookSinkConfig,
)
from stormwatch.errors import SinkError
from stormwatch.metrics import Metrics
from tests.fakes.webhook import FakeWebhook, Reply, serve_fake
from tests.support_sinks import incident_event
from tests.unit.sinks.test_base_and_retry import STATUS_TABLE

FAST = RetryPolicy(initial_backoff=0.001, max_backoff=0.01, max_attempts=3)


@pytest.mark.parametrize(("status", "outcome"), STATUS_TABLE)
async def test_every_status_through_the_real_client(status: int, outcome: str) -> None:
    async with serve_fake(FakeWebhook(default=Reply(status))) as fake:
        sink = WebhookSink(WebhookSinkConfig(name="hook", url=fake.url))
        try:
            if outcome == "ok":
                assert (await sink.deliver(incident_event())).status == status
            else:
                with pytest.raises(SinkError) as info:
                    await sink.deliver(incident_event())
                assert info.value.retryable is (outcome == "retryable")
        finally:
            await sink.close()


async def test_retry_keeps_the_idempotency_key_and_honours_retry_after() -> None:
    script = [Reply(503), Reply(429, {"Retry-After": "0"}), Reply(202)]
    async with serve_fake(FakeWebhook(script=script)) as fake:
        sink = Retrying(WebhookSink(WebhookSinkConfig(name="hook", url=fake.url)), FAST)
        receipt = await sink.deliver(incident_event(sequence=3, key="inc-k"))
        await sink.close()
    assert receipt.status == 202
    keys = [r.headers["Idempotency-Key"] for r in fake.requests]
    assert keys == ["inc-k:3"] * 3
    assert fake.requests[-1].body["incident"]["key"] == "inc-k"
    assert fake.requests[-1].headers["Content-Type"] == "application/json"


async def test_connection_refused_is_retryable() -> None:
    from tests.conftest import pick_free_port

    sink = WebhookSink(
        WebhookSinkConfig(name="hook", url=f"http://127.0.0.1:{pick_free_port()}/x", timeout=2)
    )
    with pytest.raises(SinkError) as info:
        await sink.deliver(incident_event())
    await sink.close()
    assert info.value.retryable


async def test_drain_delivers_a_lifecycle_in_order_and_dead_letters_a_refusal() -> None:
    metrics = Metrics()
    async with serve_fake(FakeWebhook(script=[Reply(200), Reply(400)])) as fake:
        sink = Retrying(WebhookSink(WebhookSinkConfig(name="hook", url=fake.url)), FAST)
        box = MemoryOutbox()
        drain = OutboxDrain(box, sink, metrics)
        task = asyncio.create_task(drain.run())
        events = [
            incident_event("opened", 1),
            incident_event("updated", 2),
            incident_event("updated", 3),
            incident_event("resolved", 4),
        ]
        await box.put("hook", [OutboxEntry.new(e) for e in events])
        drain.notify()
        for _ in range(200):
            if await box.size("hook") == 0:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await sink.close()
    assert [(r.body["event"], r.body["sequence"]) for r in fake.requests] == [
        ("opened", 1),
        ("updated", 2),
        ("updated", 3),
        ("resolved", 4),
    ]
    dead = await box.dead_letters("hook")
    assert [(d.reason, d.entry.event.sequence) for d in dead] == [("permanent", 2)]
    sample = metrics.registry.get_sample_value
    assert sample("stormwatch_sink_requests_total", {"sink": "hook", "outcome": "ok"}) == 3
    assert (
        sample("stormwatch_sink_dead_letters_total", {"sink": "hook", "reason": "permanent"}) == 1
    )


async def test_file_sink_writes_one_flushed_json_line_per_event(tmp_path: Path) -> None:
    path = tmp_path / "out" / "incidents.jsonl"
    sink = FileSink(FileSinkConfig(name="f", path=str(path)))
    await sink.deliver(incident_event("opened", 1, alerts=3))
    assert len(path.read_text().splitlines()) == 1  # flushed before deliver returns
    await sink.deliver(incident_event("resolved", 2))
    await sink.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(x["event"], x["sequence"]) for x in lines] == [("opened", 1), ("resolved", 2)]
    assert set(lines[0]) == {"event", "at", "reason", "sequence", "incident"}
    assert len(lines[0]["incident"]["alerts"]) == 3
