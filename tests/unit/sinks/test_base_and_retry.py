"""The shared status table, Retry-After parsing, backoff, and the outbox."""

from __future__ import annotations

import random

import pytest
from structlog.testing import capture_logs

from sinks import (
    MemoryOutbox,
    OutboxEntry,
    Receipt,
    Retrying,
    RetryPolicy,
    classify_status,
    parse_retry_after,
)
from stormwatch.errors import Overloaded, PermanentSinkError, RetryableSinkError, SinkError
from stormwatch.wire import IncidentEvent
from tests.support_sinks import incident_event

# (status, outcome): the one table every HTTP sink obeys (Alertmanager's Retrier).
STATUS_TABLE = [
    (200, "ok"),
    (201, "ok"),
    (202, "ok"),
    (204, "ok"),
    (400, "permanent"),
    (401, "permanent"),
    (403, "permanent"),
    (404, "permanent"),
    (409, "permanent"),
    (410, "permanent"),
    (413, "permanent"),
    (422, "permanent"),
    (408, "retryable"),
    (425, "retryable"),
    (429, "retryable"),
    (500, "retryable"),
    (502, "retryable"),
    (503, "retryable"),
    (504, "retryable"),
]


@pytest.mark.parametrize(("status", "outcome"), STATUS_TABLE)
def test_status_table(status: int, outcome: str) -> None:
    if outcome == "ok":
        classify_status("s", status)
        return
    with pytest.raises(SinkError) as info:
        classify_status("s", status, "boom")
    assert info.value.retryable is (outcome == "retryable")
    assert info.value.status == status


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    with pytest.raises(RetryableSinkError) as info:
        classify_status("s", 429, "", "7")
    assert info.value.retry_after_s == 7.0


class Flaky:
    name = "flaky"

    def __init__(self, errors: list[SinkError]) -> None:
        self.errors = errors
        self.calls = 0

    async def deliver(self, event: IncidentEvent) -> Receipt:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return Receipt(sink=self.name, status=200)

    async def close(self) -> None:
        pass


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_retries_retryable_errors_then_succeeds() -> None:
    sink, sleep = (
        Flaky([RetryableSinkError("x", status=503), RetryableSinkError("x", status=503)]),
        Sleeps(),
    )
    r = Retrying(
        sink, RetryPolicy(initial_backoff=1, max_backoff=8), sleep=sleep, rng=random.Random(1)
    )
    receipt = await r.deliver(incident_event())
    assert receipt.status == 200 and sink.calls == 3
    assert len(sleep.waits) == 2 and all(0 <= w <= 2 for w in sleep.waits)


async def test_never_retries_sooner_than_retry_after() -> None:
    sink, sleep = Flaky([RetryableSinkError("x", status=429, retry_after_s=30)]), Sleeps()
    await Retrying(sink, RetryPolicy(max_backoff=60), sleep=sleep).deliver(incident_event())
    assert sleep.waits == [30]


async def test_permanent_error_stops_at_once() -> None:
    sink, sleep = Flaky([PermanentSinkError("bad", status=400)]), Sleeps()
    with pytest.raises(PermanentSinkError):
        await Retrying(sink, sleep=sleep).deliver(incident_event())
    assert sink.calls == 1 and sleep.waits == []


async def test_gives_up_after_max_attempts_and_logs_each_new_failure_once() -> None:
    errors: list[SinkError] = [RetryableSinkError("x", status=503) for _ in range(4)]
    sink, sleep = Flaky(errors), Sleeps()
    with capture_logs() as logs, pytest.raises(RetryableSinkError):
        await Retrying(sink, RetryPolicy(max_attempts=4), sleep=sleep).deliver(incident_event())
    assert sink.calls == 4
    assert [e["event"] for e in logs] == ["sink_delivery_retrying"]


async def test_memory_outbox_is_bounded_and_ordered() -> None:
    box = MemoryOutbox(capacity=3)
    entries = [OutboxEntry.new(incident_event(sequence=i)) for i in range(1, 4)]
    await box.put("s", entries)
    with pytest.raises(Overloaded):
        await box.put("s", [OutboxEntry.new(incident_event(sequence=4))])
    assert [e.event.sequence for e in await box.pending("s", 10)] == [1, 2, 3]
    await box.done("s", [entries[0].id])
    assert await box.size("s") == 2
    await box.dead_letter("s", entries[1], "permanent", "HTTP 400")
    assert [d.reason for d in await box.dead_letters("s")] == ["permanent"]
    assert [e.event.sequence for e in await box.pending("s", 10)] == [3]
