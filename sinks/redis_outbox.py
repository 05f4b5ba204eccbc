"""`RedisOutbox`: each sink's outbox and dead letters as Redis lists.

The pipeline appends a batch's entries in the same MULTI/EXEC as the batch's state
(`list_key`, `dead_key`), so after a crash Redis holds a batch's state and its incident
events together or neither. The drain reads from the head and pops what it delivered;
only one drain works a sink's list, so head operations need no locking.
"""

from __future__ import annotations

import time

import msgspec
import redis.asyncio as aioredis

from sinks.outbox import DeadLetter, OutboxEntry
from stormwatch.errors import Overloaded

__all__ = ["RedisOutbox"]

_entry = msgspec.json.Decoder(OutboxEntry)
_dead = msgspec.json.Decoder(DeadLetter)
_enc = msgspec.json.Encoder()


class RedisOutbox:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "stormwatch",
        capacity: int = 10_000,
        dead_letter_capacity: int = 10_000,
    ) -> None:
        self._client = client
        self.prefix = prefix
        self.capacity = capacity
        self.dead_letter_capacity = dead_letter_capacity
        self.dropped: dict[str, int] = {}

    def list_key(self, sink: str) -> str:
        """`{prefix}:outbox:{sink}`: entries waiting, oldest at the head. No TTL: an
        entry leaves when delivered or dead-lettered."""
        return f"{self.prefix}:outbox:{sink}"

    def dead_key(self, sink: str) -> str:
        """`{prefix}:deadletters:{sink}`: capped at `dead_letter_capacity` (LTRIM)."""
        return f"{self.prefix}:deadletters:{sink}"

    @staticmethod
    def encode(entry: OutboxEntry) -> bytes:
        return _enc.encode(entry)

    @staticmethod
    def encode_dead(entry: OutboxEntry, reason: str, error: str) -> bytes:
        return _enc.encode(DeadLetter(entry=entry, reason=reason, error=error, at=time.time()))

    async def put(self, sink: str, entries: list[OutboxEntry]) -> None:
        if not entries:
            return
        if await self.size(sink) + len(entries) > self.capacity:
            raise Overloaded(
                f"outbox of sink {sink!r} is full ({self.capacity} events)", retry_after_s=5
            )
        await self._client.rpush(self.list_key(sink), *[self.encode(e) for e in entries])

    async def pending(self, sink: str, limit: int) -> list[OutboxEntry]:
        raw = await self._client.lrange(self.list_key(sink), 0, limit - 1)
        return [_entry.decode(r) for r in raw]

    async def done(self, sink: str, ids: list[int]) -> None:
        key, want = self.list_key(sink), set(ids)
        head = await self.pending(sink, len(ids))
        n = 0
        for e in head:
            if e.id not in want:
                break
            n += 1
        if n:
            await self._client.ltrim(key, n, -1)

    async def dead_letter(self, sink: str, entry: OutboxEntry, reason: str, error: str) -> None:
        dkey = self.dead_key(sink)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.rpush(dkey, self.encode_dead(entry, reason, error))
            pipe.ltrim(dkey, -self.dead_letter_capacity, -1)
            await pipe.execute()
        await self.done(sink, [entry.id])

    async def bury(self, sink: str, entries: list[OutboxEntry], reason: str, error: str) -> None:
        """Dead-letter entries that were never queued (a replay's rest)."""
        if not entries:
            return
        dkey = self.dead_key(sink)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.rpush(dkey, *[self.encode_dead(e, reason, error) for e in entries])
            pipe.ltrim(dkey, -self.dead_letter_capacity, -1)
            await pipe.execute()

    async def dead_letters(self, sink: str) -> list[DeadLetter]:
        return [_dead.decode(r) for r in await self._client.lrange(self.dead_key(sink), 0, -1)]

    async def take_dead_letters(self, sink: str) -> list[DeadLetter]:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.lrange(self.dead_key(sink), 0, -1)
            pipe.delete(self.dead_key(sink))
            raw, _ = await pipe.execute()
        return [_dead.decode(r) for r in raw]

    async def size(self, sink: str) -> int:
        return int(await self._client.llen(self.list_key(sink)))
