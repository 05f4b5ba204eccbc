"""`RedisStore`: a shard's state in Redis hashes, one MULTI/EXEC per batch.

Each batch's `StateDelta` becomes HSETs and HDELs on the shard's hashes (keys.py) in one
transaction, so Redis holds either all of a batch or none of it. Load reads the hashes
back into a `State`. Values are msgspec JSON.

**Writer mark.** A delta is only right on top of what this process saved last. Every
commit writes `writer` = "<run id>:<commit number>" into the shard's meta, and a delta
(not a full write) is applied only if meta still holds the mark of our previous commit,
checked under WATCH in the same transaction. Redis restarted empty, or from a snapshot
older than our last commit, or a shard written by someone else, fails that check: the
commit raises `StoreReset` and writes nothing, and the pipeline writes the whole state
from memory instead. A full write needs no check (it replaces the shard). Loading a
shard adopts the mark it finds, so a replica that takes a shard over (or a restarted
process) goes on with deltas on top of what it loaded.

**Fence.** With a `ShardFence` (partitioned mode, correlate/store/fence.py) the same
transaction also WATCHes the shard's owner and stores the partition's next offset; a
commit by a replica that no longer owns the shard raises `Fenced` and writes nothing.

Every Redis or socket error is raised as `StoreUnavailable`.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError, WatchError

from correlate.delta import RuleMeta, StateDelta
from correlate.state import STATE_VERSION, IncidentState, RuleState, State, Tracked, Window
from correlate.store.fence import Fenced, ShardFence
from correlate.store.keys import ShardKeys
from correlate.suppress import Silence
from stormwatch.errors import StoreReset, StoreUnavailable

__all__ = ["RedisStore"]

_enc = msgspec.json.Encoder()
_tracked = msgspec.json.Decoder(Tracked)
_window = msgspec.json.Decoder(Window)
_beat = msgspec.json.Decoder(tuple[float, float, int])
_rule = msgspec.json.Decoder(RuleMeta)
_incident = msgspec.json.Decoder(IncidentState)
_silences = msgspec.json.Decoder(list[Silence])
_SEP = "\x1e"


def _write(pipe: Any, key: str, values: dict[str, Any], encode: bool = True) -> None:
    sets = {k: (_enc.encode(v) if encode else v) for k, v in values.items() if v is not None}
    dels = [k for k, v in values.items() if v is None]
    if sets:
        pipe.hset(key, mapping=sets)
    if dels:
        pipe.hdel(key, *dels)


class RedisStore:
    durable = True
    heartbeats = True

    def __init__(self, url: str, *, prefix: str = "stormwatch") -> None:
        self.discarded_version: str | None = None
        """Set when `load` found a shard saved by another state version (and ignored it)."""
        self.url = url
        self.prefix = prefix
        self._client = aioredis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._run = uuid.uuid4().hex[:16]
        self._commits = 0
        self._marks: dict[str, bytes | None] = {}
        """Per shard: the writer mark of the last write we made or loaded."""
        self._in_doubt: dict[str, set[bytes]] = {}
        """Per shard: marks of commits whose EXEC was sent but whose answer was lost."""

    @property
    def client(self) -> aioredis.Redis:
        """The connection, shared with the Redis outbox so both write in one MULTI."""
        return self._client

    async def commit(
        self,
        shard: str,
        delta: StateDelta,
        outbox: dict[str, list[bytes]] | None = None,
        *,
        fence: ShardFence | None = None,
    ) -> None:
        """Write `delta`, and RPUSH `outbox` (list key -> entries; the sinks' outbox
        entries), in one MULTI/EXEC; with `fence`, only while this replica owns the
        shard, storing the partition's next offset too. Raises Fenced (another replica
        owns the shard), StoreReset (nothing written: a delta would not land on what we
        saved last) or StoreUnavailable (Redis fails)."""
        try:
            await self._commit(shard, delta, outbox, fence)
        except StoreUnavailable as err:
            if isinstance(err, StoreReset) or not isinstance(err.__cause__, RedisConnectionError):
                raise
            # Once more on a fresh connection: after Redis restarts, each pooled one
            # fails once. Safe even if the first went through: a delta then finds our
            # newer mark (StoreReset: the state is written whole), and the inbox folds
            # a repeated event into nothing (sinks/redis_outbox.py).
            await self._commit(shard, delta, outbox, fence)

    async def _commit(
        self,
        shard: str,
        delta: StateDelta,
        outbox: dict[str, list[bytes]] | None,
        fence: ShardFence | None,
    ) -> None:
        keys = ShardKeys(self.prefix, shard)
        self._commits += 1
        mark = f"{self._run}:{self._commits}".encode()
        sent = False
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                if not delta.full:
                    await pipe.watch(keys.meta)
                    found = await pipe.hget(keys.meta, "writer")
                    if found != self._marks.get(shard) and found not in self._in_doubt.get(
                        shard, ()
                    ):
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        msg = f"shard {shard} in Redis at {self.url} is not as we saved it"
                        raise StoreReset(msg, retry_after_s=0)
                if fence is not None:
                    await fence.guard(pipe)  # WATCHes the owner too, then opens the MULTI
                elif not delta.full:
                    pipe.multi()  # type: ignore[no-untyped-call]
                for key, values in (outbox or {}).items():
                    if values:
                        pipe.rpush(key, *values)
                if delta.full:
                    pipe.delete(*keys.all())
                meta: dict[Any, Any] = {
                    "version": str(STATE_VERSION),
                    "clock": repr(delta.clock),
                    "watermark": repr(delta.watermark),
                    "last_gc": repr(delta.last_gc),
                    "writer": mark,
                }
                if delta.silences is not None:
                    meta["silences"] = _enc.encode(delta.silences)
                pipe.hset(keys.meta, mapping=meta)
                _write(pipe, keys.tracked, delta.tracked)
                if delta.tracked and not delta.full:
                    pipe.hdel(keys.beats, *delta.tracked)  # the whole entry supersedes them
                if delta.beats:
                    pipe.hset(
                        keys.beats, mapping={fp: _enc.encode(b) for fp, b in delta.beats.items()}
                    )
                _write(pipe, keys.windows, delta.windows)
                _write(pipe, keys.rules, delta.rules)
                _write(pipe, keys.incidents, delta.incidents)
                _write(pipe, keys.open, delta.open, encode=False)
                sent = True
                await pipe.execute()
        except WatchError as err:
            lost = err.__context__
            if isinstance(lost, (RedisError, OSError)):  # the connection died mid-WATCH
                if sent:
                    self._in_doubt.setdefault(shard, set()).add(mark)
                msg = f"cannot save shard {shard} to Redis at {self.url}: {lost}"
                raise StoreUnavailable(msg) from lost
            if fence is not None and not await fence.owned():
                raise Fenced(f"shard {shard} was claimed by another replica") from err
            # Meta changed between the check and the write: someone else wrote it.
            msg = f"shard {shard} in Redis at {self.url} changed under the commit"
            raise StoreReset(msg, retry_after_s=0) from err
        except (RedisError, OSError) as err:
            if sent and not isinstance(err, ResponseError):
                # The answer was lost, not the transaction refused: it may have landed
                # (Redis stopping after EXEC; a watched pipeline reports that as a
                # WatchError, above). The caller retries this delta merged with what
                # came after, a superset of it, so a later delta may go on top of this
                # mark as well as on top of the last one we know landed.
                self._in_doubt.setdefault(shard, set()).add(mark)
            msg = f"cannot save shard {shard} to Redis at {self.url}: {err}"
            raise StoreUnavailable(msg) from err
        self._marks[shard] = mark
        self._in_doubt.pop(shard, None)

    async def load(self, shard: str) -> State | None:
        keys = ShardKeys(self.prefix, shard)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                for key in keys.all():
                    pipe.hgetall(key)
                meta, tracked, windows, rules, incidents, open_, beats = await pipe.execute()
        except (RedisError, OSError) as err:
            msg = f"cannot load shard {shard} from Redis at {self.url}: {err}"
            raise StoreUnavailable(msg) from err
        self._in_doubt.pop(shard, None)
        if not meta:
            self._marks[shard] = None
            return None
        version = meta.get(b"version", b"1").decode()
        if version != str(STATE_VERSION):
            # Another engine's format: start afresh; the first save rewrites the shard
            # (no mark matches b"", so a delta is refused and the state written whole).
            self.discarded_version = version
            self._marks[shard] = b""
            return None
        self._marks[shard] = meta.get(b"writer")
        state = State(
            clock=float(meta[b"clock"]),
            watermark=float(meta[b"watermark"]),
            last_gc=float(meta[b"last_gc"]),
        )
        if b"silences" in meta:
            state.silences = _silences.decode(meta[b"silences"])
        state.tracked = {k.decode(): _tracked.decode(v) for k, v in tracked.items()}
        for fp, raw in beats.items():
            t = state.tracked.get(fp.decode())
            if t is not None:
                t.last_seen, t.ends_at, t.duplicates = _beat.decode(raw)
        for name, raw in rules.items():
            m = _rule.decode(raw)
            state.rules[name.decode()] = RuleState(
                fingerprint=m.fingerprint, pending=m.pending, last_seen=m.last_seen
            )
        for wkey, raw in windows.items():
            rule, _, gkey = wkey.decode().partition(_SEP)
            if rule in state.rules:
                state.rules[rule].groups[gkey] = _window.decode(raw)
        state.incidents = {k.decode(): _incident.decode(v) for k, v in incidents.items()}
        state.open_by_group = {k.decode(): v.decode() for k, v in open_.items()}
        return state

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except (RedisError, OSError) as err:
            msg = f"Redis at {self.url} is not reachable: {err}"
            raise StoreUnavailable(msg) from err

    async def close(self) -> None:
        await self._client.aclose()
