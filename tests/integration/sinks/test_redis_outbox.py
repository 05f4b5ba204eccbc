"""The Redis outbox against a real Redis: order, done, dead letters, capacity."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from sinks import OutboxEntry
from sinks.redis_outbox import RedisOutbox
from stormwatch.errors import Overloaded
from tests.support_sinks import incident_event

pytestmark = pytest.mark.redis


async def test_entries_in_order_done_from_the_head_and_dead_letters_capped(
    redis_url: str, redis_prefix: str
) -> None:
    client = aioredis.from_url(redis_url)
    box = RedisOutbox(client, prefix=redis_prefix, capacity=3, dead_letter_capacity=2)
    entries = [OutboxEntry.new(incident_event(sequence=i)) for i in range(1, 4)]
    await box.put("s", entries)
    with pytest.raises(Overloaded):
        await box.put("s", [OutboxEntry.new(incident_event(sequence=4))])
    assert [e.event.sequence for e in await box.pending("s", 10)] == [1, 2, 3]
    await box.done("s", [entries[0].id])
    assert await box.size("s") == 2
    await box.dead_letter("s", entries[1], "permanent", "HTTP 400")
    assert [e.event.sequence for e in await box.pending("s", 10)] == [3]
    for i in (10, 11):
        await box.dead_letter("s", OutboxEntry.new(incident_event(sequence=i)), "exhausted", "503")
    assert [d.entry.event.sequence for d in await box.dead_letters("s")] == [10, 11]  # capped at 2
    taken = await box.take_dead_letters("s")
    assert len(taken) == 2 and await box.dead_letters("s") == []
    await client.aclose()
