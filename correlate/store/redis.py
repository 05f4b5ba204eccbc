"""`RedisStore`: a shard's state in Redis hashes, one round trip per batch.

Each batch's `StateDelta` becomes HSETs and HDELs on the shard's hashes (keys.py), sent
as one MessagePack list of commands to a Lua script (`_COMMIT`) that checks the writer
mark and the fence and then runs them: one round trip and one atomic step, where a
WATCH, an HGET and a MULTI/EXEC took three (bench/README.md, "One round trip a
commit"). The script writes meta, with the new writer mark, last, so a commit that
fails half way (an out-of-memory refusal) leaves our previous mark in place; the retry
is that delta merged with later ones, a superset, and every write in it is idempotent.
A full write (rare: the first save, or after a reset) replaces the shard in one
MULTI/EXEC instead: it can hold every alert of the shard, more than a script should
carry. Load reads the hashes back into a `State`. Values are msgspec JSON.

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
atomic step also checks the shard's owner (the script reads it; a full write WATCHes
it) and stores the partition's next offset; a commit by a replica that no longer owns
the shard raises `Fenced` and writes nothing.

Every Redis or socket error is raised as `StoreUnavailable`.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
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
_pack = msgspec.msgpack.Encoder()
_CHUNK = 1000
"""Fields per HSET or HDEL in the script: Lua's `unpack` takes at most 8000 values."""

# KEYS: meta, owner, then the keys the commands name by index. ARGV[1]: MessagePack
# (strings only: Redis's cmsgpack knows no bin type) of
# [marks a delta may go on top of, whether an absent mark is one, fence token or "",
#  commands as [name, key index, args...]]. Returns 1, -1 (not as we saved it: nothing
# written) or -2 (fenced: nothing written).
_COMMIT = """
local p = cmsgpack.unpack(ARGV[1])
if p[3] ~= '' and redis.call('HGET', KEYS[2], 'token') ~= p[3] then
  return -2
end
local found = redis.call('HGET', KEYS[1], 'writer')
local ok = (not found) and p[2]
if found then
  for _, m in ipairs(p[1]) do
    if m == found then ok = true break end
  end
end
if not ok then return -1 end
for _, c in ipairs(p[4]) do
  c[2] = KEYS[c[2]]
  redis.call(unpack(c))
end
return 1
"""


def _write(pipe: Any, key: str, values: dict[str, Any], encode: bool = True) -> None:
    sets = {k: (_enc.encode(v) if encode else v) for k, v in values.items() if v is not None}
    dels = [k for k, v in values.items() if v is None]
    if sets:
        pipe.hset(key, mapping=sets)
    if dels:
        pipe.hdel(key, *dels)


def _meta(delta: StateDelta, mark: bytes) -> dict[Any, Any]:
    meta: dict[Any, Any] = {
        "version": str(STATE_VERSION),
        "clock": repr(delta.clock),
        "watermark": repr(delta.watermark),
        "last_gc": repr(delta.last_gc),
        "writer": mark,
    }
    if delta.silences is not None:
        meta["silences"] = _enc.encode(delta.silences)
    return meta


def _hash_ops(
    ops: list[list[Any]], index: int, values: dict[str, Any], encode: bool = True
) -> None:
    sets: list[Any] = []
    dels = []
    for k, v in values.items():
        if v is None:
            dels.append(k)
        else:
            sets.append(k)
            sets.append(_enc.encode(v).decode() if encode else v)
    for i in range(0, len(sets), 2 * _CHUNK):
        ops.append(["HSET", index, *sets[i : i + 2 * _CHUNK]])
    for i in range(0, len(dels), _CHUNK):
        ops.append(["HDEL", index, *dels[i : i + _CHUNK]])


def _delta_ops(
    keys: ShardKeys,
    delta: StateDelta,
    mark: bytes,
    outbox: dict[str, list[bytes]] | None,
    fence: ShardFence | None,
) -> tuple[list[str], list[list[Any]]]:
    """The script's KEYS and commands for one delta; meta, with the new mark, last."""
    names = [keys.meta, keys.owner]  # the script reads these two by position
    ops: list[list[Any]] = []

    def index(key: str) -> int:
        names.append(key)
        return len(names)  # Lua's KEYS count from 1

    for key, values in (outbox or {}).items():
        at = index(key)
        for i in range(0, len(values), _CHUNK):
            ops.append(["RPUSH", at, *[v.decode() for v in values[i : i + _CHUNK]]])
    if fence is not None and fence.next_offset is not None:
        ops.append(["SET", index(keys.offset), str(fence.next_offset)])
    _hash_ops(ops, index(keys.tracked), delta.tracked)
    beats = index(keys.beats)
    fps = list(delta.tracked)  # a whole entry supersedes the alert's heartbeat
    for i in range(0, len(fps), _CHUNK):
        ops.append(["HDEL", beats, *fps[i : i + _CHUNK]])
    _hash_ops(ops, beats, delta.beats)
    _hash_ops(ops, index(keys.windows), delta.windows)
    _hash_ops(ops, index(keys.rules), delta.rules)
    _hash_ops(ops, index(keys.incidents), delta.incidents)
    _hash_ops(ops, index(keys.open), delta.open, encode=False)
    meta = [x for kv in _meta(delta, mark).items() for x in kv]
    ops.append(["HSET", 1, *[x.decode() if isinstance(x, bytes) else x for x in meta]])
    return names, ops


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
        """Per shard: marks of commits that were sent but whose answer was lost."""
        self._script: AsyncScript | None = None

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
        try:
            if delta.full:
                await self._write_whole(keys, delta, outbox, fence, mark)
            else:
                script = self._script
                if script is None:
                    script = self._script = self._client.register_script(_COMMIT)
                known = self._marks.get(shard)
                marks = [m.decode() for m in self._in_doubt.get(shard, ())]
                if known:
                    marks.append(known.decode())
                names, ops = _delta_ops(keys, delta, mark, outbox, fence)
                token = fence.token if fence is not None else ""
                payload = _pack.encode([marks, known is None, token, ops])
                answer = await script(keys=names, args=[payload])
                if answer == -2:
                    raise Fenced(f"shard {shard} was claimed by another replica")
                if answer == -1:
                    msg = f"shard {shard} in Redis at {self.url} is not as we saved it"
                    raise StoreReset(msg, retry_after_s=0)
        except WatchError as err:
            lost = err.__context__
            if isinstance(lost, (RedisError, OSError)):  # the connection died mid-WATCH
                # In doubt from the moment anything is sent; a mark that never landed
                # is harmless there, as no shard can ever hold it.
                self._in_doubt.setdefault(shard, set()).add(mark)
                msg = f"cannot save shard {shard} to Redis at {self.url}: {lost}"
                raise StoreUnavailable(msg) from lost
            if fence is not None and not await fence.owned():
                raise Fenced(f"shard {shard} was claimed by another replica") from err
            msg = f"shard {shard} in Redis at {self.url} changed under the commit"
            raise StoreReset(msg, retry_after_s=0) from err
        except (RedisError, OSError) as err:
            if not isinstance(err, ResponseError):
                # The answer was lost, not the commit refused: it may have landed
                # (Redis stopping after running it; a watched pipeline reports that as
                # a WatchError, above). The caller retries this delta merged with what
                # came after, a superset of it, so a later delta may go on top of this
                # mark as well as on top of the last one we know landed.
                self._in_doubt.setdefault(shard, set()).add(mark)
            msg = f"cannot save shard {shard} to Redis at {self.url}: {err}"
            raise StoreUnavailable(msg) from err
        self._marks[shard] = mark
        self._in_doubt.pop(shard, None)

    async def _write_whole(
        self,
        keys: ShardKeys,
        delta: StateDelta,
        outbox: dict[str, list[bytes]] | None,
        fence: ShardFence | None,
        mark: bytes,
    ) -> None:
        """Replace the shard with a full delta in one MULTI/EXEC (no mark to check)."""
        async with self._client.pipeline(transaction=True) as pipe:
            if fence is not None:
                await fence.guard(pipe)  # WATCHes the owner too, then opens the MULTI
            for key, values in (outbox or {}).items():
                if values:
                    pipe.rpush(key, *values)
            pipe.delete(*keys.all())
            pipe.hset(keys.meta, mapping=_meta(delta, mark))
            _write(pipe, keys.tracked, delta.tracked)
            if delta.beats:
                pipe.hset(keys.beats, mapping={fp: _enc.encode(b) for fp, b in delta.beats.items()})
            _write(pipe, keys.windows, delta.windows)
            _write(pipe, keys.rules, delta.rules)
            _write(pipe, keys.incidents, delta.incidents)
            _write(pipe, keys.open, delta.open, encode=False)
            await pipe.execute()

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
