"""The memory outbox and the drain, on a hand-driven clock: retry by time, the breaker,
Retry-After, coalescing while a sink is down, dead letters and their replay."""

from __future__ import annotations

import random

import pytest

from sinks import (
    BreakerPolicy,
    MemoryOutbox,
    MemoryRemoteStore,
    OutboxDrain,
    Receipt,
    Refs,
    RetryPolicy,
)
from stormwatch.errors import PermanentSinkError, RetryableSinkError, SinkError
from stormwatch.metrics import Metrics
from stormwatch.wire import IncidentEvent
from tests.support_sinks import incident_event


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """A sink whose answers the test decides: `down` raises, `fail` raises once each."""

    name = "s"

    def __init__(self) -> None:
        self.down: SinkError | None = None
        self.fail: list[SinkError] = []
        self.calls = 0
        self.got: list[tuple[str, str, int]] = []

    async def deliver(self, event: IncidentEvent) -> Receipt:
        self.calls += 1
        if self.down is not None:
            raise self.down
        if self.fail:
            raise self.fail.pop(0)
        self.got.append((event.incident.key, event.event, event.sequence))
        return Receipt(sink=self.name)

    async def close(self) -> None:
        pass


def drain_for(
    sink: Scripted, clock: Clock, **kw: object
) -> tuple[OutboxDrain, MemoryOutbox, Metrics]:
    box, metrics = MemoryOutbox(), Metrics()
    metrics.init_sink("s")
    drain = OutboxDrain(
        box,
        sink,
        metrics,
        Refs(MemoryRemoteStore(), "s"),
        retry=kw.pop("retry", RetryPolicy(initial_backoff=1, max_backoff=10)),  # type: ignore[arg-type]
        breaker=kw.pop("breaker", BreakerPolicy(failures=3, probe_interval=30)),  # type: ignore[arg-type]
        clock=clock,
        rng=random.Random(1),
    )
    return drain, box, metrics


async def run_until(drain: OutboxDrain, clock: Clock, until: float, step: float = 0.5) -> None:
    """Rounds of the drain while the clock walks to `until` (what its waits would do)."""
    while clock.now < until:
        wait = await drain.step()
        if wait is False:
            continue
        clock.now += step


def sample(m: Metrics, name: str, **labels: str) -> float:
    return m.registry.get_sample_value(name, {"sink": "s", **labels}) or 0.0


async def test_an_outage_costs_a_probe_per_interval_and_loses_nothing() -> None:
    clock, sink = Clock(), Scripted()
    drain, box, m = drain_for(sink, clock)
    sink.down = RetryableSinkError("503", status=503)
    for i in range(20):  # 20 incidents open while the sink is down
        await box.put("s", [incident_event("opened", 1, key=f"inc-{i}")])
    await run_until(drain, clock, clock.now + 5)
    assert sink.calls == 3 and drain.breaker.state == "open"  # 3 failures opened it
    assert sample(m, "stormwatch_sink_breaker_state") == 2
    assert sample(m, "stormwatch_outbox_pending_entries") == 20
    for i in range(20):  # each updates and resolves during the outage
        await box.put(
            "s",
            [
                incident_event("updated", 2, key=f"inc-{i}"),
                incident_event("resolved", 3, key=f"inc-{i}"),
            ],
        )
    await run_until(drain, clock, clock.now + 600)  # ten minutes down
    assert sink.calls <= 3 + 600 / 30 + 1, "more than one call per probe interval"
    assert sample(m, "stormwatch_sink_requests_total", outcome="retryable") == sink.calls
    assert sample(m, "stormwatch_outbox_pending_events") == 40  # [opened, resolved] each
    assert sample(m, "stormwatch_outbox_oldest_pending_age_seconds") >= 600
    sink.down = None
    await run_until(drain, clock, clock.now + 31)
    assert sorted(sink.got) == sorted(
        (f"inc-{i}", kind, seq) for i in range(20) for kind, seq in (("opened", 2), ("resolved", 3))
    )
    assert await box.dead_letters("s") == []
    assert drain.breaker.state == "closed" and sample(m, "stormwatch_outbox_pending_entries") == 0
    assert sample(m, "stormwatch_outbox_coalesced_total") == 40


async def test_past_the_deadline_an_incident_is_dead_lettered_as_expired() -> None:
    clock, sink = Clock(), Scripted()
    drain, box, m = drain_for(
        sink, clock, retry=RetryPolicy(initial_backoff=1, max_backoff=5, deadline=60)
    )
    sink.down = RetryableSinkError("503", status=503)
    await box.put("s", [incident_event("opened", 1)])
    await run_until(drain, clock, clock.now + 200)
    (dead,) = await box.dead_letters("s")
    assert dead.reason == "expired" and "503" in dead.error
    assert sample(m, "stormwatch_sink_dead_letters_total", reason="expired") == 1


async def test_a_refusal_is_dead_lettered_at_once_with_the_vendors_error_and_others_go_on() -> None:
    clock, sink = Clock(), Scripted()
    drain, box, m = drain_for(sink, clock)
    sink.fail = [
        PermanentSinkError('jira: HTTP 400: {"errors": {"priority": "invalid"}}', status=400)
    ]
    await box.put(
        "s", [incident_event("opened", 1, key="inc-a"), incident_event("opened", 1, key="inc-b")]
    )
    await run_until(drain, clock, clock.now + 1)
    (dead,) = await box.dead_letters("s")
    assert dead.reason == "permanent" and '"priority": "invalid"' in dead.error
    assert dead.entry.event.incident.key == "inc-a" and sink.got == [("inc-b", "opened", 1)]
    assert sample(m, "stormwatch_sink_requests_total", outcome="permanent") == 1
    assert drain.breaker.state == "closed"  # a refusal says nothing about the sink's health


async def test_retry_after_pauses_the_whole_sink() -> None:
    clock, sink = Clock(), Scripted()
    drain, box, _ = drain_for(sink, clock)
    sink.fail = [RetryableSinkError("429", status=429, retry_after_s=20)]
    await box.put("s", [incident_event("opened", 1, key=f"inc-{i}") for i in range(3)])
    start = clock.now
    await run_until(drain, clock, start + 19)
    assert sink.calls == 1  # nobody else tried before Retry-After
    await run_until(drain, clock, start + 22)
    assert len(sink.got) == 3


async def test_replay_delivers_each_incidents_latest_state_once_never_older_after_newer() -> None:
    clock, sink = Clock(), Scripted()
    drain, box, _ = drain_for(sink, clock)
    # inc-a: its opened was refused, then its resolved too (a config error, fixed later).
    sink.fail = [PermanentSinkError("400", status=400), PermanentSinkError("400", status=400)]
    await box.put("s", [incident_event("opened", 1, key="inc-a")])
    await run_until(drain, clock, clock.now + 1)
    await box.put("s", [incident_event("resolved", 3, key="inc-a")])
    await run_until(drain, clock, clock.now + 1)
    # inc-b: opened refused, then updated delivered (the sink now has sequence 2).
    sink.fail = [PermanentSinkError("400", status=400)]
    await box.put("s", [incident_event("opened", 1, key="inc-b")])
    await run_until(drain, clock, clock.now + 1)
    await box.put("s", [incident_event("updated", 2, key="inc-b")])
    await run_until(drain, clock, clock.now + 1)
    assert len(await box.dead_letters("s")) == 3
    assert await box.replay("s", clock.now) == 3
    await run_until(drain, clock, clock.now + 1)
    assert sink.got == [
        ("inc-b", "updated", 2),
        ("inc-a", "opened", 1),
        ("inc-a", "resolved", 3),
    ]  # inc-b's older opened was not sent after its update
    assert await box.dead_letters("s") == []
    await box.replay("s", clock.now)
    await run_until(drain, clock, clock.now + 1)
    assert len(sink.got) == 3  # a second replay has nothing to send


async def test_the_outbox_is_bounded_by_incidents_and_orders_by_due_time() -> None:
    box = MemoryOutbox()
    await box.put(
        "s",
        [
            incident_event(k, n, key=f"inc-{i}")
            for i in range(5)
            for k, n in (("opened", 1), ("updated", 2))
        ],
    )
    assert await box.absorb("s", 10.0) == (10, 5)
    n, events, oldest = await box.stats("s")
    assert (n, events, oldest) == (5, 5, 10.0)  # five incidents, one folded event each
    due = await box.due("s", 10.0, 10)
    assert [s.key for s in due] == [f"inc-{i}" for i in range(5)]
    later = due[0]
    later.next_at = 50.0
    await box.save("s", later)
    assert [s.key for s in await box.due("s", 20.0, 10)] == [f"inc-{i}" for i in range(1, 5)]
    await box.settle("s", [], [("inc-1", 1)])  # delivered: it held one event
    assert await box.next_due("s") == 10.0 and (await box.stats("s"))[0] == 4


@pytest.mark.parametrize("kind", ["opened", "updated"])
async def test_an_event_the_sink_already_has_is_not_sent_again(kind: str) -> None:
    clock, sink = Clock(), Scripted()
    drain, box, _ = drain_for(sink, clock)
    await box.put("s", [incident_event("opened", 1), incident_event("updated", 2)])
    await run_until(drain, clock, clock.now + 1)
    await box.put("s", [incident_event(kind, 2 if kind == "updated" else 1)])  # a redelivery
    await run_until(drain, clock, clock.now + 1)
    assert sink.got == [("inc-abc", "opened", 2)]  # folded before the first delivery


async def test_a_delivered_slot_leaves_nothing_counted_in_the_outbox() -> None:
    # Shutdown waits until `stats` says the outbox is empty: a count left behind by a
    # delivered slot made every stop wait its whole grace period.
    clock, sink = Clock(), Scripted()
    drain, box, _ = drain_for(sink, clock)
    await box.put("s", [incident_event("opened", 1, key="inc-1")])
    await box.put("s", [incident_event("updated", 2, key="inc-2")])
    await run_until(drain, clock, clock.now + 1)
    assert sorted(sink.got) == [("inc-1", "opened", 1), ("inc-2", "updated", 2)]
    assert await box.stats("s") == (0, 0, None)


class RefsAlone(Scripted):
    """A sink that keeps no refs (as file, webhook and kafka): the drain writes them,
    once a round; `refuse` fails that incident's first delivery."""

    keeps_refs = False
    refuse = "inc-b"

    async def deliver(self, event: IncidentEvent) -> Receipt:
        if event.incident.key == self.refuse:
            self.refuse = ""
            raise RetryableSinkError("webhook: HTTP 503", sink="s", status=503)
        return await super().deliver(event)


async def test_a_round_marks_what_it_delivered_even_when_one_of_its_slots_fails() -> None:
    clock, sink = Clock(), RefsAlone()
    drain, box, _ = drain_for(sink, clock)
    await box.put("s", [incident_event("opened", 1, key=k) for k in ("inc-a", "inc-b", "inc-c")])
    assert await drain.step() is False  # one round: inc-b failed, the others went
    assert sorted(sink.got) == [("inc-a", "opened", 1), ("inc-c", "opened", 1)]
    assert [(await drain.refs.get(k)).sequence for k in ("inc-a", "inc-b", "inc-c")] == [1, 0, 1]
    await box.put("s", [incident_event("updated", 1, key="inc-a")])  # a redelivery
    await run_until(drain, clock, clock.now + 5)
    assert sorted(sink.got) == [
        ("inc-a", "opened", 1),
        ("inc-b", "opened", 1),
        ("inc-c", "opened", 1),
    ]
