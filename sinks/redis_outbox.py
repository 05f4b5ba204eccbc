"""`RedisOutbox`: each sink's inbox, pending slots and dead letters in Redis.

The commit appends a batch's events to the sink's inbox list in the same atomic step as
the batch's state (`inbox_key`), so after a crash Redis holds a batch's state and its
incident events together or neither. The sink's drain, the only writer of everything
else, folds the inbox's head into the `pending` hash and its two sorted sets in one
MULTI/EXEC with the LTRIM that takes it off the inbox: a crash between the two leaves
the events in the inbox, to be absorbed again (folding is idempotent: a repeated
sequence changes nothing). Keys: sinks/keys.py. Redis errors are raised as
`StoreUnavailable` (sinks/redis_errors.py).

**Slot cache.** Since the drain is the only writer of its sink's slots, the outbox keeps
each slot it wrote or read, decoded, and reads Redis only for the others: a round no
longer fetches and decodes again the slots its absorb just wrote (two decodes of every
event, where one is left; bench/README.md, "The drain"). A write that fails, or whose
answer is lost, empties the sink's cache, and a new owner of a shard starts with an
empty one (`Delivery.for_shard`), so the cache never holds what Redis does not.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import msgspec
import redis.asyncio as aioredis
import structlog

from sinks.keys import SinkKeys
from sinks.outbox import DeadLetter, OutboxEntry, Pending, absorb_into, requeue_into
from sinks.redis_errors import translated
from stormwatch.wire import IncidentEvent

__all__ = ["OutboxFence", "RedisOutbox"]

log = structlog.get_logger("stormwatch.sinks")
_entry = msgspec.json.Decoder(OutboxEntry)
_pending = msgspec.json.Decoder(Pending)
_dead = msgspec.json.Decoder(DeadLetter)
_enc = msgspec.json.Encoder()
CACHE_LIMIT = 20_000
"""Slots cached per sink; the least recently written go first, and are read back."""


class OutboxFence(Protocol):
    """A partitioned shard's owner check (correlate/store/fence.py): WATCH the owner key,
    raise if another replica holds the shard, then MULTI."""

    async def guard(self, pipe: Any, *, offset: bool = True) -> None: ...


class RedisOutbox:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "stormwatch",
        dead_letter_capacity: int = 10_000,
        shard: str | None = None,
    ) -> None:
        self._client = client
        self.prefix = prefix
        self.shard = shard
        """A partitioned correlator's shard: its outbox keys are the shard's (keys.py)."""
        self.fence: OutboxFence | None = None
        """Set for a shard: the drain's writes land only while this replica owns it, so
        a deposed owner's drain cannot fold or trim what the new owner drains."""
        self.dead_letter_capacity = dead_letter_capacity
        self.dropped: dict[str, int] = {}
        self._keys: dict[str, SinkKeys] = {}
        self._cache: dict[str, dict[str, Pending]] = {}

    @property
    def client(self) -> aioredis.Redis:
        return self._client

    def keys(self, sink: str) -> SinkKeys:
        k = self._keys.get(sink)
        if k is None:
            k = self._keys[sink] = SinkKeys(self.prefix, sink, self.shard)
        return k

    def inbox_key(self, sink: str) -> str:
        return self.keys(sink).inbox

    @staticmethod
    def encode(event: IncidentEvent) -> bytes:
        """An inbox value, for the store to append in the batch's transaction."""
        return _enc.encode(OutboxEntry.new(event))

    @translated
    async def put(self, sink: str, events: list[IncidentEvent]) -> None:
        if events:
            await self._client.rpush(self.inbox_key(sink), *[self.encode(e) for e in events])

    async def stage(
        self, sink: str, events: list[IncidentEvent], into: dict[str, list[bytes]]
    ) -> None:
        into.setdefault(self.inbox_key(sink), []).extend(self.encode(e) for e in events)

    def _remember(self, sink: str, slots: dict[str, Pending], gone: list[str]) -> None:
        cache = self._cache.setdefault(sink, {})
        for key in gone:
            cache.pop(key, None)
        for key, slot in slots.items():
            cache.pop(key, None)  # re-inserted last: the dict is in write order
            cache[key] = slot
        while len(cache) > CACHE_LIMIT:
            del cache[next(iter(cache))]

    @translated
    async def _slots(self, sink: str, keys: list[str]) -> dict[str, Pending]:
        """The stored slots of `keys` that exist, in the order of `keys`."""
        if not keys:
            return {}
        cache = self._cache.get(sink, {})
        missing = [k for k in keys if k not in cache]
        if missing:
            raw = await self._client.hmget(self.keys(sink).pending, missing)
            read = {k: _pending.decode(v) for k, v in zip(missing, raw, strict=True) if v}
            self._remember(sink, read, [])
            cache = self._cache[sink]
        return {k: cache[k] for k in keys if k in cache}

    @translated
    async def _write(
        self,
        sink: str,
        slots: dict[str, Pending],
        before: dict[str, Pending],
        *,
        trim: int = 0,
        gone: list[str] | None = None,
        dead: list[bytes] | None = None,
        held: int | None = None,
    ) -> None:
        """`held`: the events the one slot written or gone held, in place of `before`."""
        k = self.keys(sink)
        was = (
            held
            if held is not None
            else sum(len(before[key].events) for key in [*slots, *(gone or [])] if key in before)
        )
        delta = sum(len(s.events) for s in slots.values()) - was
        async with self._client.pipeline(transaction=True) as pipe:
            if self.fence is not None:
                await self.fence.guard(pipe, offset=False)
            if slots:
                pipe.hset(k.pending, mapping={key: _enc.encode(s) for key, s in slots.items()})
                pipe.zadd(k.due, {key: s.next_at for key, s in slots.items()})
                pipe.zadd(k.age, {key: s.enqueued_at for key, s in slots.items()}, nx=True)
            if gone:
                pipe.hdel(k.pending, *gone)
                pipe.zrem(k.due, *gone)
                pipe.zrem(k.age, *gone)
            if delta:
                pipe.hincrby(k.meta, "events", delta)
            if trim:
                pipe.ltrim(k.inbox, trim, -1)
            if dead:
                pipe.rpush(k.dead, *dead)
                pipe.ltrim(k.dead, -self.dead_letter_capacity, -1)
            try:
                await pipe.execute()
            except BaseException:
                self._cache.pop(sink, None)  # it may or may not have landed
                raise
        self._remember(sink, slots, gone or [])

    @translated
    async def absorb(self, sink: str, now: float, limit: int = 1000) -> tuple[int, int]:
        raw = await self._client.lrange(self.inbox_key(sink), 0, limit - 1)
        if not raw:
            return 0, 0
        events = []
        for r in raw:
            try:
                events.append(_entry.decode(r).event)
            except (msgspec.DecodeError, msgspec.ValidationError) as err:
                # Not ours to read (a newer version's entry?): say so, do not stall on it.
                log.error("outbox_entry_unreadable", sink=sink, error=str(err), entry=r[:200])
        before = await self._slots(sink, list(dict.fromkeys(e.incident.key for e in events)))
        changed, merged = absorb_into(before, events, now)
        await self._write(sink, changed, before, trim=len(raw))
        return len(raw), merged

    @translated
    async def due(self, sink: str, now: float, limit: int) -> list[Pending]:
        keys = await self._client.zrangebyscore(self.keys(sink).due, "-inf", now, 0, limit)
        slots = await self._slots(
            sink, [k.decode() if isinstance(k, bytes) else str(k) for k in keys]
        )
        # Copies, as the memory outbox gives: a caller may change one before saving it.
        return [msgspec.structs.replace(slot) for slot in slots.values()]

    @translated
    async def next_due(self, sink: str) -> float | None:
        first = await self._client.zrange(self.keys(sink).due, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    @translated
    async def save(self, sink: str, slot: Pending, *, held: int | None = None) -> None:
        # Reading the stored slot back costs a round trip and decoding every event it
        # holds, only to count them: most of a delivery's CPU (bench/README.md).
        before = {} if held is not None else await self._slots(sink, [slot.key])
        await self._write(sink, {slot.key: slot}, before, held=held)

    @translated
    async def settle(
        self, sink: str, saved: list[tuple[Pending, int]], done: list[tuple[str, int]]
    ) -> None:
        if not saved and not done:
            return
        held = sum(n for _, n in saved) + sum(n for _, n in done)
        slots = {slot.key: slot for slot, _ in saved}
        await self._write(sink, slots, {}, gone=[key for key, _ in done], held=held)

    @translated
    async def dead_letter(self, sink: str, slot: Pending, reason: str, error: str) -> None:
        letters = [
            _enc.encode(
                DeadLetter(entry=OutboxEntry.new(e), reason=reason, error=error, at=time.time())
            )
            for e in slot.events
        ]
        before = await self._slots(sink, [slot.key])
        await self._write(sink, {}, before, gone=[slot.key], dead=letters)

    @translated
    async def dead_letters(self, sink: str) -> list[DeadLetter]:
        return [_dead.decode(r) for r in await self._client.lrange(self.keys(sink).dead, 0, -1)]

    @translated
    async def replay(self, sink: str, now: float) -> int:
        k = self.keys(sink)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.lrange(k.dead, 0, -1)
            pipe.delete(k.dead)
            raw, _ = await pipe.execute()
        letters = [_dead.decode(r) for r in raw]
        keys = list(dict.fromkeys(d.entry.event.incident.key for d in letters))
        before = await self._slots(sink, keys)
        await self._write(sink, requeue_into(before, letters, now), before)
        return len(letters)

    @translated
    async def slot(self, sink: str, key: str) -> Pending | None:
        return (await self._slots(sink, [key])).get(key)

    @translated
    async def stats(self, sink: str) -> tuple[int, int, float | None]:
        k = self.keys(sink)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zcard(k.age)
            pipe.hget(k.meta, "events")
            pipe.llen(k.inbox)
            pipe.zrange(k.age, 0, 0, withscores=True)
            n, events, inbox, oldest = await pipe.execute()
        return int(n), int(events or 0) + int(inbox), float(oldest[0][1]) if oldest else None
