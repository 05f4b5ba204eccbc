"""One contract, both outboxes: memory and a real Redis (a test's own key prefix)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sinks import MemoryOutbox, Outbox, RedisOutbox
from tests.support_sinks import incident_event


@pytest.fixture(params=["memory", "redis"])
async def box(request: pytest.FixtureRequest) -> AsyncIterator[Outbox]:
    if request.param == "memory":
        yield MemoryOutbox(dead_letter_capacity=2)
        return
    import redis.asyncio as aioredis

    client = aioredis.from_url(request.getfixturevalue("redis_url"))
    yield RedisOutbox(
        client, prefix=request.getfixturevalue("redis_prefix"), dead_letter_capacity=2
    )
    await client.aclose()


async def test_events_fold_per_incident_and_leave_in_due_order(box: Outbox) -> None:
    await box.put(
        "s", [incident_event("opened", 1, key="inc-a"), incident_event("opened", 1, key="inc-b")]
    )
    await box.put(
        "s", [incident_event("updated", 2, key="inc-a"), incident_event("resolved", 3, key="inc-a")]
    )
    assert (await box.stats("s"))[1] == 4  # all in the inbox yet
    assert await box.absorb("s", 100.0) == (4, 2)
    assert await box.stats("s") == (2, 3, 100.0)  # inc-a: [opened, resolved]; inc-b: [opened]
    due = await box.due("s", 100.0, 10)
    assert sorted((s.key, [(e.event, e.sequence) for e in s.events]) for s in due) == [
        ("inc-a", [("opened", 2), ("resolved", 3)]),
        ("inc-b", [("opened", 1)]),
    ]
    a = next(s for s in due if s.key == "inc-a")
    a.events, a.attempts, a.next_at = a.events[1:], 1, 160.0
    await box.save("s", a)
    assert [s.key for s in await box.due("s", 150.0, 10)] == ["inc-b"]
    assert await box.next_due("s") == 100.0
    await box.settle("s", [], [("inc-b", 1)])  # delivered: it held one event
    assert await box.next_due("s") == 160.0
    (later,) = await box.due("s", 200.0, 10)
    assert (later.attempts, [e.event for e in later.events]) == (1, ["resolved"])
    assert await box.stats("s") == (1, 1, 100.0)


async def test_dead_letters_are_capped_and_replay_folds_them_with_what_waits(box: Outbox) -> None:
    for key in ("inc-a", "inc-b", "inc-c"):
        await box.put("s", [incident_event("opened", 1, key=key)])
    await box.absorb("s", 1.0)
    for slot in await box.due("s", 1.0, 10):
        await box.dead_letter("s", slot, "permanent", "HTTP 400: bad field")
    letters = await box.dead_letters("s")
    assert len(letters) == 2 and {d.reason for d in letters} == {"permanent"}  # capped at 2
    assert (await box.stats("s"))[0] == 0
    kept = {d.entry.event.incident.key for d in letters}
    survivor = sorted(kept)[0]
    await box.put("s", [incident_event("updated", 2, key=survivor)])
    await box.absorb("s", 2.0)
    assert await box.replay("s", 3.0) == 2
    assert await box.dead_letters("s") == []
    slots = {s.key: s for s in await box.due("s", 3.0, 10)}
    assert set(slots) == kept
    assert [(e.event, e.sequence) for e in slots[survivor].events] == [("opened", 2)]
    assert slots[survivor].enqueued_at == 2.0  # it was waiting since then


async def test_a_repeated_absorb_changes_nothing(box: Outbox) -> None:
    """A crash between reading the inbox and trimming it absorbs the same events again."""
    events = [incident_event("opened", 1, key="inc-a"), incident_event("updated", 2, key="inc-a")]
    await box.put("s", events)
    await box.absorb("s", 1.0)
    await box.put("s", events)
    await box.absorb("s", 2.0)
    (slot,) = await box.due("s", 5.0, 10)
    assert [(e.event, e.sequence) for e in slot.events] == [("opened", 2)]
    assert await box.stats("s") == (1, 1, 1.0)


@pytest.mark.redis
async def test_an_unreadable_inbox_entry_is_logged_and_does_not_stall_the_sink(
    redis_url: str, redis_prefix: str
) -> None:
    import redis.asyncio as aioredis
    from structlog.testing import capture_logs

    client = aioredis.from_url(redis_url)
    box = RedisOutbox(client, prefix=redis_prefix)
    await client.rpush(box.inbox_key("s"), b'{"id": 1, "event": {"from": "a newer version"}}')
    await box.put("s", [incident_event("opened", 1, key="inc-a")])
    with capture_logs() as logs:
        assert await box.absorb("s", 1.0) == (2, 0)
    assert [e["event"] for e in logs] == ["outbox_entry_unreadable"]
    assert [s.key for s in await box.due("s", 1.0, 10)] == ["inc-a"]
    assert (await box.stats("s"))[1] == 1  # the inbox is empty
    await client.aclose()


async def test_the_event_count_follows_a_drain_through_failures_and_deliveries(
    box: Outbox,
) -> None:
    # The drain tells the outbox how many events a slot held (it is the slot's only
    # writer) instead of having it read the slot back: the count must still come to 0.
    import random

    from sinks import MemoryRemoteStore, OutboxDrain, Receipt, Refs, RetryPolicy
    from stormwatch.errors import RetryableSinkError
    from stormwatch.metrics import Metrics
    from stormwatch.wire import IncidentEvent

    class FailsEverySecondCall:
        name = "s"

        def __init__(self) -> None:
            self.calls = 0
            self.got: list[tuple[str, int]] = []

        async def deliver(self, event: IncidentEvent) -> Receipt:
            self.calls += 1
            if self.calls % 2 == 0:
                raise RetryableSinkError("busy", status=503)
            self.got.append((event.incident.key, event.sequence))
            return Receipt(sink="s", status=200)

    now = [100.0]
    sink, metrics = FailsEverySecondCall(), Metrics()
    metrics.init_sink("s")
    drain = OutboxDrain(
        box,
        sink,  # type: ignore[arg-type]
        metrics,
        Refs(MemoryRemoteStore(), "s"),
        retry=RetryPolicy(initial_backoff=1, max_backoff=1),
        clock=lambda: now[0],
        rng=random.Random(1),
    )
    for i in range(3):
        key = f"inc-{i}"
        await box.put("s", [incident_event("opened", 1, key=key)])
        await drain.step()  # delivered or failed once before the next events come
        await box.put("s", [incident_event("resolved", 2, key=key)])
    for _ in range(40):
        if await box.stats("s") == (0, 0, None):
            break
        if await drain.step() is not False:
            now[0] += 1.0
    assert await box.stats("s") == (0, 0, None)
    assert sorted(sink.got) == [(f"inc-{i}", n) for i in range(3) for n in (1, 2)]
    assert await box.dead_letters("s") == []


class _Killed(BaseException):
    """The process dies here: nothing after it runs (not an error a drain handles)."""


@pytest.mark.parametrize("keeps_refs", [True, False])
async def test_a_drain_killed_before_its_round_ends_sends_nothing_twice_after(
    box: Outbox, keeps_refs: bool
) -> None:
    # A round drops the slots it delivered in one write at its end; the refs, marked
    # after each delivery, are what the next drain skips by. A sink that keeps no refs
    # has its refs read once a round, and its slots written ahead in one write.
    import random

    from sinks import MemoryRemoteStore, OutboxDrain, Receipt, Refs
    from stormwatch.metrics import Metrics
    from stormwatch.wire import IncidentEvent

    class Recording:
        name = "s"

        def __init__(self, kill_after: int | None) -> None:
            self.keeps_refs = keeps_refs
            self.got: list[tuple[str, int]] = []
            self.kill_after = kill_after

        async def deliver(self, event: IncidentEvent) -> Receipt:
            if self.kill_after is not None and len(self.got) == self.kill_after:
                raise _Killed
            self.got.append((event.incident.key, event.sequence))
            return Receipt(sink="s", status=200)

    class DiesAtTheEndOfItsRound:
        """The outbox as the first drain sees it: it dies before the round's last write."""

        def __getattr__(self, name: str) -> object:
            return getattr(box, name)

        async def settle(self, sink: str, saved: list, done: list) -> None:  # type: ignore[type-arg]
            if done:
                raise _Killed
            await box.settle(sink, saved, done)

    def drain_of(outbox: object, sink: Recording) -> OutboxDrain:
        metrics = Metrics()
        metrics.init_sink("s")
        return OutboxDrain(
            outbox,  # type: ignore[arg-type]
            sink,  # type: ignore[arg-type]
            metrics,
            refs,
            clock=lambda: 100.0,
            rng=random.Random(1),
        )

    refs = Refs(MemoryRemoteStore(), "s")
    for i in range(4):
        await box.put("s", [incident_event("opened", 1, key=f"inc-{i}")])
    first = Recording(kill_after=None)
    with pytest.raises(_Killed):
        await drain_of(DiesAtTheEndOfItsRound(), first).step()
    assert sorted(first.got) == [(f"inc-{i}", 1) for i in range(4)]
    assert (await box.stats("s"))[:2] == (4, 4)  # none dropped: the round died first

    again = Recording(kill_after=None)
    drain = drain_of(box, again)
    while await drain.step() is False:
        pass
    assert again.got == []  # every event was skipped by its ref
    assert await box.stats("s") == (0, 0, None)

    # Killed mid-round: what was delivered is skipped, the rest goes once.
    for i in range(4):
        await box.put("s", [incident_event("updated", 2, key=f"inc-{i}")])
    cut = Recording(kill_after=2)
    with pytest.raises(_Killed):
        await drain_of(box, cut).step()
    rest = Recording(kill_after=None)
    drain = drain_of(box, rest)
    while await drain.step() is False:
        pass
    assert sorted(cut.got + rest.got) == [(f"inc-{i}", 2) for i in range(4)]
    assert await box.stats("s") == (0, 0, None)


async def test_a_write_that_fails_half_way_leaves_no_cached_slot_unlike_redis(
    redis_url: str, redis_prefix: str
) -> None:
    """MULTI/EXEC does not roll back: a command that fails leaves the others applied.
    The Redis outbox caches the slots it writes, so after such a write it must read
    them from Redis again rather than serve what it meant to write."""
    import redis.asyncio as aioredis

    from sinks.keys import SinkKeys
    from stormwatch.errors import StoreUnavailable

    client = aioredis.from_url(redis_url)
    box = RedisOutbox(client, prefix=redis_prefix)
    await box.put("s", [incident_event("opened", 1, key="inc-a")])
    await box.absorb("s", 1.0)
    age = SinkKeys(redis_prefix, "s", None).age
    await client.delete(age)
    await client.set(age, "not a sorted set")  # the next ZADD on it fails
    await box.put("s", [incident_event("updated", 2, key="inc-a")])
    with pytest.raises(StoreUnavailable):
        await box.absorb("s", 2.0)  # its HSET of the folded slot landed, its ZADD not
    await client.delete(age)
    other = RedisOutbox(client, prefix=redis_prefix)  # no cache: what Redis holds
    slot = await box.slot("s", "inc-a")
    assert slot is not None and slot == await other.slot("s", "inc-a")
    assert [e.sequence for e in slot.events] == [2]
    await client.aclose()
