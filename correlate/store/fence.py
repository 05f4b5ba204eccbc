"""`ShardFence`: only a partition's current owner may commit its shard.

A correlator that is assigned a partition **claims** its shard before loading it: a Lua
script writes `{prefix}:{shard}:owner` = (consumer group, generation, a token of this
assignment), unless the stored claim is from a later generation of the same group (a
replica whose assignment callback ran late must not take the shard back). Every commit
then reads the owner's token and writes the state delta, the outbox entries and the
partition's next offset in one atomic step (`RedisStore.commit(fence=...)`: the commit
script for a delta; for a whole write, WATCH on the owner key and MULTI/EXEC):

- another replica's claim at any time before that step makes the commit fail
  (`Fenced`): the script reads another token, or EXEC aborts because the WATCHed key
  changed;
- the new owner claims before it loads, so what it loads is everything any earlier
  owner committed, and the stored offset is exactly where that state stops: it seeks
  there and re-reads only what was never committed.

So a zombie (a replica that lost the partition without noticing: a long pause, a
partition from the broker) can never write to the shard again once the new owner has
claimed it. The claim needs the group's generation to grow; Kafka's does, for the life
of the group's metadata.
"""

from __future__ import annotations

import secrets
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from correlate.store.keys import ShardKeys
from stormwatch.errors import StoreUnavailable

__all__ = ["Fenced", "ShardFence"]

_CLAIM = """
local cur = redis.call('HMGET', KEYS[1], 'group', 'generation')
if cur[1] == ARGV[1] and cur[2] and tonumber(cur[2]) > tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'group', ARGV[1], 'generation', ARGV[2], 'token', ARGV[3])
return 1
"""


class Fenced(Exception):
    """The shard was claimed by another replica: this one must stop committing it."""


class ShardFence:
    """One assignment's claim on a shard, and the offset its next commit stores."""

    def __init__(
        self, client: aioredis.Redis, prefix: str, shard: str, *, group: str, generation: int
    ) -> None:
        self.shard = shard
        self.group = group
        self.generation = generation
        self.token = f"{generation}:{secrets.token_hex(8)}"
        keys = ShardKeys(prefix, shard)
        self._owner = keys.owner
        self._offset = keys.offset
        self._client = client
        self.next_offset: int | None = None
        """Set before a commit: the offset after the last message the commit covers."""

    async def claim(self) -> None:
        """Take the shard (before loading it). Raises Fenced if a later generation holds it."""
        ok = await self._client.eval(
            _CLAIM, 1, self._owner, self.group, str(self.generation), self.token
        )
        if not ok:
            msg = f"shard {self.shard} is held by a later generation than {self.generation}"
            raise Fenced(msg)

    async def stored_offset(self) -> int | None:
        """Where the partition resumes: the offset stored with the shard's last commit."""
        raw = await self._client.get(self._offset)
        return int(raw) if raw is not None else None

    async def owned(self) -> bool:
        """Whether this assignment still holds the shard (the shard's drains ask).
        Raises StoreUnavailable: a drain waits out an outage quietly, as on its other
        Redis calls."""
        try:
            token: bytes | None = await self._client.hget(self._owner, "token")  # type: ignore[assignment]
        except (RedisError, OSError) as err:
            msg = f"cannot read the owner of shard {self.shard}: {err}"
            raise StoreUnavailable(msg) from err
        return token is not None and token.decode() == self.token

    async def guard(self, pipe: Any, *, offset: bool = True) -> None:
        """WATCH the owner, check it is still us, and open the MULTI (with the offset in
        it, for a state commit). Raises Fenced; EXEC raises WatchError if a claim comes
        between. The shard's outbox writes are guarded too (offset=False)."""
        await pipe.watch(self._owner)
        token = await pipe.hget(self._owner, "token")
        if token is None or token.decode() != self.token:
            await pipe.reset()
            msg = f"shard {self.shard} was claimed by another replica"
            raise Fenced(msg)
        pipe.multi()
        if offset and self.next_offset is not None:
            pipe.set(self._offset, self.next_offset)
