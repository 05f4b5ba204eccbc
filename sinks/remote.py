"""What each sink knows of an incident's object at the vendor: the durable mapping.

One `RemoteRef` per (sink, incident): the remote id (Jira issue key, ServiceNow
sys_id, Slack message ts), where its lifecycle stands, the last event sequence the sink
has, and an operation whose answer was never seen. A sink writes `state="creating"`
(with `since`) *before* a create and `"open"` with the id after it: a retry, or the next
process after a kill -9, that finds `creating` knows a create may have happened and
looks for the object (by label, correlation_id, alias, message metadata) before making
another. The same goes for a comment or note: `pending` names it before it is posted,
and a retry first looks for it. The drain skips any event whose sequence the sink
already has, so a replayed or redelivered older event never lands after a newer one.

`MemoryRemoteStore` dies with the process (and keeps at most `limit` refs, the least
recently written going first); `RedisRemoteStore` keeps each ref under its own key
(sinks/keys.py) with a TTL refreshed on every write, shorter once resolved.
"""

from __future__ import annotations

import time
from typing import Literal, Protocol

import msgspec
import redis.asyncio as aioredis

from sinks.keys import REMOTE_TTL_S, RESOLVED_TTL_S, remote_key
from sinks.redis_errors import translated

__all__ = ["MemoryRemoteStore", "RedisRemoteStore", "Refs", "RemoteRef", "RemoteStore"]

RemoteState = Literal["", "creating", "open", "resolving", "resolved"]


class RemoteRef(msgspec.Struct, kw_only=True):
    sequence: int = 0
    """The last event of the incident this sink has had delivered."""
    remote_id: str = ""
    state: RemoteState = ""
    since: float = 0.0
    """When `state` (or `pending`) was last set: how old an unanswered create is."""
    pending: str = ""
    """An operation sent without a seen answer (`note:7`, `request:<id>`), or ""."""
    acknowledged: bool = False
    """The vendor has the acknowledgement (we sent it, or it came from there)."""
    sent: dict[str, str] = {}
    """What the sink last set remotely (summary, priority...): only changes are sent."""


class RemoteStore(Protocol):
    async def get(self, sink: str, key: str) -> RemoteRef | None: ...
    async def get_many(self, sink: str, keys: list[str]) -> list[RemoteRef | None]: ...
    async def put(self, sink: str, key: str, ref: RemoteRef) -> None: ...
    async def put_many(self, sink: str, refs: dict[str, RemoteRef]) -> None: ...


_dec = msgspec.json.Decoder(RemoteRef)
_enc = msgspec.json.Encoder()


def ttl_of(ref: RemoteRef) -> int:
    return RESOLVED_TTL_S if ref.state == "resolved" else REMOTE_TTL_S


class MemoryRemoteStore:
    """Refs in a dict, each forgotten its TTL after its last write, at most `limit`."""

    def __init__(self, limit: int = 200_000) -> None:
        self._limit = limit
        self._refs: dict[tuple[str, str], tuple[float, bytes]] = {}
        self._writes = 0

    async def get(self, sink: str, key: str) -> RemoteRef | None:
        found = self._refs.get((sink, key))
        if found is None or found[0] < time.time():
            return None
        # Stored encoded, so a caller's changes reach the store only through `put`.
        return _dec.decode(found[1])

    async def get_many(self, sink: str, keys: list[str]) -> list[RemoteRef | None]:
        return [await self.get(sink, key) for key in keys]

    async def put(self, sink: str, key: str, ref: RemoteRef) -> None:
        now = time.time()
        self._refs.pop((sink, key), None)  # re-inserted last: the dict is in write order
        self._refs[(sink, key)] = (now + ttl_of(ref), _enc.encode(ref))
        self._writes += 1
        if len(self._refs) > self._limit:
            del self._refs[next(iter(self._refs))]
        if self._writes % 10_000 == 0:
            for k in [k for k, (until, _) in self._refs.items() if until < now]:
                del self._refs[k]

    async def put_many(self, sink: str, refs: dict[str, RemoteRef]) -> None:
        for key, ref in refs.items():
            await self.put(sink, key, ref)


class RedisRemoteStore:
    def __init__(self, client: aioredis.Redis, *, prefix: str = "stormwatch") -> None:
        self._client = client
        self.prefix = prefix

    @translated
    async def get(self, sink: str, key: str) -> RemoteRef | None:
        raw = await self._client.get(remote_key(self.prefix, sink, key))
        return _dec.decode(raw) if raw is not None else None

    @translated
    async def get_many(self, sink: str, keys: list[str]) -> list[RemoteRef | None]:
        if not keys:
            return []
        raws = await self._client.mget([remote_key(self.prefix, sink, key) for key in keys])
        return [_dec.decode(raw) if raw is not None else None for raw in raws]

    @translated
    async def put(self, sink: str, key: str, ref: RemoteRef) -> None:
        await self._client.set(remote_key(self.prefix, sink, key), _enc.encode(ref), ex=ttl_of(ref))

    @translated
    async def put_many(self, sink: str, refs: dict[str, RemoteRef]) -> None:
        """Every ref in one round trip (a drain's round, for a sink that keeps none)."""
        if not refs:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for key, ref in refs.items():
                pipe.set(remote_key(self.prefix, sink, key), _enc.encode(ref), ex=ttl_of(ref))
            await pipe.execute()


class Refs:
    """One sink's view of the store: what its `deliver` reads and writes."""

    def __init__(self, store: RemoteStore, sink: str) -> None:
        self.store = store
        self.sink = sink

    async def get(self, key: str) -> RemoteRef:
        """The incident's ref; an empty one if the sink never had it."""
        return await self.store.get(self.sink, key) or RemoteRef()

    async def get_many(self, keys: list[str]) -> list[RemoteRef]:
        """The refs of `keys`, in order, in one read."""
        return [r or RemoteRef() for r in await self.store.get_many(self.sink, keys)]

    async def put(self, key: str, ref: RemoteRef) -> None:
        await self.store.put(self.sink, key, ref)

    async def put_many(self, refs: dict[str, RemoteRef]) -> None:
        await self.store.put_many(self.sink, refs)

    async def mark(self, key: str, ref: RemoteRef, **changes: object) -> RemoteRef:
        """Change fields (stamping `since` when `state` or `pending` change) and save."""
        new = self.marked(ref, **changes)
        await self.put(key, new)
        return new

    @staticmethod
    def marked(ref: RemoteRef, **changes: object) -> RemoteRef:
        """`ref` with fields changed, `since` stamped when `state` or `pending` change."""
        if "state" in changes or "pending" in changes:
            changes.setdefault("since", time.time())
        return msgspec.structs.replace(ref, **changes)
