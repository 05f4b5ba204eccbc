"""The PagerDuty sink against a fake of the Events API v2 that behaves as documented."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from sinks import (
    MemoryOutbox,
    OutboxDrain,
    OutboxEntry,
    PagerDutySink,
    PagerDutySinkConfig,
    Retrying,
    RetryPolicy,
)
from sinks.pagerduty import build_pagerduty_event
from stormwatch.errors import ConfigError, SinkError
from stormwatch.metrics import Metrics
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.webhook import FakeWebhook, Reply, serve_fake
from tests.support_sinks import incident_event
from tests.unit.sinks.test_base_and_retry import STATUS_TABLE

KEY = "R0123456789ABCDEF0123456789ABCDE"
FAST = RetryPolicy(initial_backoff=0.001, max_backoff=0.01, max_attempts=4)


@pytest.fixture
async def pd() -> AsyncIterator[FakePagerDuty]:
    fake = FakePagerDuty()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("/v2/enqueue"))
    yield fake
    await server.close()


def sink(url: str, **kw: object) -> Retrying:
    return Retrying(
        PagerDutySink(PagerDutySinkConfig(name="pd", routing_key=KEY, url=url, **kw)), FAST
    )  # type: ignore[arg-type]


async def test_one_incident_is_one_pagerduty_alert_updated_and_resolved(pd: FakePagerDuty) -> None:
    s = sink(pd.url)
    for kind, seq in (("opened", 1), ("updated", 2), ("updated", 3), ("resolved", 4)):
        await s.deliver(incident_event(kind, seq, key="inc-7f3c9a1e2b", alerts=3))
    await s.close()
    assert pd.alerts_created == 1
    assert pd.alerts == {"inc-7f3c9a1e2b": "resolved"}
    assert [r["event_action"] for r in pd.requests] == ["trigger", "trigger", "trigger", "resolve"]
    assert {r["dedup_key"] for r in pd.requests} == {"inc-7f3c9a1e2b"}


async def test_429_is_retried_with_the_same_dedup_key(pd: FakePagerDuty) -> None:
    pd.script = [(429, {"Retry-After": "0"}), (503, {})]
    s = sink(pd.url)
    receipt = await s.deliver(incident_event("opened", 1, key="inc-a"))
    await s.close()
    assert receipt.status == 202
    assert [r["dedup_key"] for r in pd.requests] == ["inc-a"] * 3
    assert pd.alerts_created == 1


async def test_an_invalid_event_is_permanent(pd: FakePagerDuty) -> None:
    s = Retrying(
        PagerDutySink(PagerDutySinkConfig(name="pd", routing_key="short", url=pd.url)), FAST
    )
    with pytest.raises(SinkError) as info:
        await s.deliver(incident_event("opened", 1))
    await s.close()
    assert not info.value.retryable and info.value.status == 400
    assert len(pd.requests) == 1  # not retried


def test_trigger_body_follows_the_events_api() -> None:
    cfg = PagerDutySinkConfig(name="pd", routing_key=KEY, client_url="https://sw.example/i/{key}")
    body = build_pagerduty_event(incident_event("opened", 1, key="inc-k", alerts=2), KEY, cfg)
    assert (
        body["routing_key"] == KEY
        and body["event_action"] == "trigger"
        and body["dedup_key"] == "inc-k"
    )
    p = body["payload"]
    assert (
        p["severity"] == "error" and p["source"] == "checkout" and p["summary"].startswith("[P2] ")
    )
    assert p["custom_details"]["alert_count"] == 2
    assert body["client_url"] == "https://sw.example/i/inc-k"
    resolve = build_pagerduty_event(incident_event("resolved", 2, key="inc-k"), KEY, cfg)
    assert resolve == {"routing_key": KEY, "event_action": "resolve", "dedup_key": "inc-k"}


@pytest.mark.parametrize(("status", "outcome"), STATUS_TABLE)
async def test_every_status_through_the_real_client(status: int, outcome: str) -> None:
    body = {"status": "success"} if status < 300 else {"status": "error"}
    async with serve_fake(FakeWebhook(default=Reply(status, body=body))) as fake:
        s = PagerDutySink(PagerDutySinkConfig(name="pd", routing_key=KEY, url=fake.url))
        try:
            if outcome == "ok":
                assert (await s.deliver(incident_event())).status == status
            else:
                with pytest.raises(SinkError) as info:
                    await s.deliver(incident_event())
                assert info.value.retryable is (outcome == "retryable")
        finally:
            await s.close()


def test_routing_key_from_a_file_and_exactly_one_of_the_two(tmp_path: Path) -> None:
    secret = tmp_path / "pd"
    secret.write_text(KEY + "\n")
    assert PagerDutySinkConfig(name="pd", routing_key_file=str(secret)).key() == KEY
    with pytest.raises(ConfigError, match="exactly one of routing_key and routing_key_file"):
        PagerDutySinkConfig(name="pd", routing_key=KEY, routing_key_file=str(secret)).key()
    assert KEY not in repr(PagerDutySinkConfig(name="pd", routing_key=KEY))


async def test_drain_pages_once_for_a_whole_incident(pd: FakePagerDuty) -> None:
    metrics, box = Metrics(), MemoryOutbox()
    s = sink(pd.url)
    drain = OutboxDrain(box, s, metrics)
    task = asyncio.create_task(drain.run())
    await box.put(
        "pd",
        [
            OutboxEntry.new(incident_event(k, n, key="inc-z"))
            for k, n in (("opened", 1), ("updated", 2), ("resolved", 3))
        ],
    )
    drain.notify()
    for _ in range(200):
        if await box.size("pd") == 0:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await s.close()
    assert pd.alerts_created == 1 and pd.alerts["inc-z"] == "resolved"
