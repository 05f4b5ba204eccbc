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
    MemoryRemoteStore,
    OutboxDrain,
    Refs,
    RetryPolicy,
    WebhookSink,
    WebhookSinkConfig,
)
from stormwatch.errors import SinkError
from stormwatch.metrics import Metrics
from tests.fakes.webhook import FakeWebhook, Reply, serve_fake
from tests.support_sinks import incident_event
from tests.unit.sinks.test_base_and_retry import STATUS_TABLE

FAST = RetryPolicy(initial_backoff=0.001, max_backoff=0.01)


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
        sink = WebhookSink(WebhookSinkConfig(name="hook", url=fake.url))
        box = MemoryOutbox()
        drain = OutboxDrain(box, sink, Metrics(), Refs(MemoryRemoteStore(), "hook"), retry=FAST)
        task = asyncio.create_task(drain.run())
        await box.put("hook", [incident_event(sequence=3, key="inc-k")])
        drain.notify(1)
        for _ in range(300):
            if len(fake.requests) == 3 and drain.backlog == 0:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await sink.close()
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
        sink = WebhookSink(WebhookSinkConfig(name="hook", url=fake.url))
        box = MemoryOutbox()
        drain = OutboxDrain(box, sink, metrics, Refs(MemoryRemoteStore(), "hook"), retry=FAST)
        task = asyncio.create_task(drain.run())
        for e in (incident_event("opened", 1), incident_event("updated", 2)):
            await box.put("hook", [e])
            drain.notify(1)
            for _ in range(200):  # one at a time: waiting events would fold together
                if len(fake.requests) == e.sequence and drain.backlog == 0:
                    break
                await asyncio.sleep(0.01)
        await box.put("hook", [incident_event("updated", 3), incident_event("resolved", 4)])
        drain.notify(2)
        for _ in range(200):
            if len(fake.requests) == 3 and drain.backlog == 0:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await sink.close()
    assert [(r.body["event"], r.body["sequence"]) for r in fake.requests] == [
        ("opened", 1),
        ("updated", 2),
        ("resolved", 4),  # the waiting update folded into the resolution
    ]
    dead = await box.dead_letters("hook")
    assert [(d.reason, d.entry.event.sequence) for d in dead] == [("permanent", 2)]
    sample = metrics.registry.get_sample_value
    assert sample("stormwatch_sink_requests_total", {"sink": "hook", "outcome": "ok"}) == 2
    assert sample("stormwatch_sink_requests_total", {"sink": "hook", "outcome": "permanent"}) == 1
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
    assert set(lines[0]) >= {"event", "at", "reason", "sequence", "incident", "processed_at"}
    assert len(lines[0]["incident"]["alerts"]) == 3
