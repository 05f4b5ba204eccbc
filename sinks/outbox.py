"""Outboxes: incident events wait here until their sink has them.

The pipeline puts a batch's events on every sink's outbox before it acknowledges the
batch; one `OutboxDrain` per sink takes them off in order, so a slow Jira never delays
PagerDuty, and one incident's events reach a sink in sequence order. A delivery that
fails permanently, or runs out of retries, goes to the sink's dead letters.

`Outbox` is the protocol a drain needs; `MemoryOutbox` is the embedded default. A
store that persists outboxes (Redis) satisfies the same protocol.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from typing import Protocol

import msgspec
import structlog

from sinks.base import Sink
from stormwatch.errors import Overloaded, SinkError
from stormwatch.metrics import Metrics
from stormwatch.wire import IncidentEvent

__all__ = ["DeadLetter", "MemoryOutbox", "Outbox", "OutboxDrain", "OutboxEntry"]

log = structlog.get_logger("stormwatch.sinks")
# Unique across restarts too (a durable outbox may still hold the last run's entries):
# nanoseconds at start, counting up.
_ids = itertools.count(time.time_ns())


class OutboxEntry(msgspec.Struct, kw_only=True):
    id: int
    event: IncidentEvent

    @classmethod
    def new(cls, event: IncidentEvent) -> OutboxEntry:
        return cls(id=next(_ids), event=event)


class DeadLetter(msgspec.Struct, kw_only=True, frozen=True):
    entry: OutboxEntry
    reason: str
    """`permanent` (the sink refused it) or `exhausted` (retries ran out) or `error`."""
    error: str
    at: float


class Outbox(Protocol):
    async def put(self, sink: str, entries: list[OutboxEntry]) -> None:
        """Queue entries; raises Overloaded when the sink's outbox is full."""
        ...

    async def pending(self, sink: str, limit: int) -> list[OutboxEntry]: ...
    async def done(self, sink: str, ids: list[int]) -> None: ...
    async def dead_letter(self, sink: str, entry: OutboxEntry, reason: str, error: str) -> None: ...
    async def dead_letters(self, sink: str) -> list[DeadLetter]: ...
    async def take_dead_letters(self, sink: str) -> list[DeadLetter]:
        """Remove and return a sink's dead letters, oldest first (for a replay)."""
        ...

    async def bury(self, sink: str, entries: list[OutboxEntry], reason: str, error: str) -> None:
        """Dead-letter entries that were never queued."""
        ...

    async def size(self, sink: str) -> int: ...


class MemoryOutbox:
    """Bounded, in-order, per sink; dies with the process (the embedded mode)."""

    def __init__(self, capacity: int = 100_000, dead_letter_capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._queues: dict[str, deque[OutboxEntry]] = {}
        self._dead: dict[str, deque[DeadLetter]] = {}
        self._dead_capacity = dead_letter_capacity
        self.dropped: dict[str, int] = {}
        """Dead letters pushed out by newer ones, per sink."""

    def _q(self, sink: str) -> deque[OutboxEntry]:
        return self._queues.setdefault(sink, deque())

    async def put(self, sink: str, entries: list[OutboxEntry]) -> None:
        q = self._q(sink)
        if len(q) + len(entries) > self.capacity:
            raise Overloaded(
                f"outbox of sink {sink!r} is full ({self.capacity} events)", retry_after_s=5
            )
        q.extend(entries)

    async def pending(self, sink: str, limit: int) -> list[OutboxEntry]:
        return list(itertools.islice(self._q(sink), limit))

    async def done(self, sink: str, ids: list[int]) -> None:
        q, gone = self._q(sink), set(ids)
        while q and q[0].id in gone:
            gone.discard(q.popleft().id)
        if gone:
            self._queues[sink] = deque(e for e in q if e.id not in gone)

    async def dead_letter(self, sink: str, entry: OutboxEntry, reason: str, error: str) -> None:
        dead = self._dead.setdefault(sink, deque(maxlen=self._dead_capacity))
        if len(dead) == self._dead_capacity:
            self.dropped[sink] = self.dropped.get(sink, 0) + 1
        dead.append(DeadLetter(entry=entry, reason=reason, error=error, at=time.time()))
        await self.done(sink, [entry.id])

    async def dead_letters(self, sink: str) -> list[DeadLetter]:
        return list(self._dead.get(sink, ()))

    async def bury(self, sink: str, entries: list[OutboxEntry], reason: str, error: str) -> None:
        """Dead-letter entries that were never queued (an outbox full, a replay's rest)."""
        dead = self._dead.setdefault(sink, deque(maxlen=self._dead_capacity))
        for entry in entries:
            if len(dead) == self._dead_capacity:
                self.dropped[sink] = self.dropped.get(sink, 0) + 1
            dead.append(DeadLetter(entry=entry, reason=reason, error=error, at=time.time()))

    async def take_dead_letters(self, sink: str) -> list[DeadLetter]:
        return list(self._dead.pop(sink, ()))

    async def size(self, sink: str) -> int:
        return len(self._q(sink))


class OutboxDrain:
    """Delivers one sink's outbox in order until cancelled."""

    def __init__(self, outbox: Outbox, sink: Sink, metrics: Metrics, *, batch: int = 100) -> None:
        self.outbox = outbox
        self.sink = sink
        self.name = sink.name
        self._metrics = metrics
        self._batch = batch
        self._wake = asyncio.Event()
        self._log = log.bind(sink=self.name)

    def notify(self) -> None:
        """New entries were put; wake the drain if it waits."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                entries = await self.outbox.pending(self.name, self._batch)
                if not entries:
                    self._metrics.outbox_pending.labels(self.name).set(0)
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                for entry in entries:
                    await self._deliver(entry)
                self._metrics.outbox_pending.labels(self.name).set(
                    await self.outbox.size(self.name)
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                self._log.exception("drain_failed")
                await asyncio.sleep(1)

    async def _deliver(self, entry: OutboxEntry) -> None:
        m = self._metrics
        started = time.perf_counter()
        try:
            await self.sink.deliver(entry.event)
        except SinkError as err:
            m.sink_seconds.labels(self.name).observe(time.perf_counter() - started)
            outcome = "retryable" if err.retryable else "permanent"
            m.sink_requests.labels(self.name, outcome).inc()
            reason = "exhausted" if err.retryable else "permanent"
            await self._dead(entry, reason, str(err))
            return
        except Exception as err:
            self._log.exception("sink_delivery_crashed", incident_key=entry.event.incident.key)
            await self._dead(entry, "error", repr(err))
            return
        m.sink_seconds.labels(self.name).observe(time.perf_counter() - started)
        m.sink_requests.labels(self.name, "ok").inc()
        await self.outbox.done(self.name, [entry.id])

    async def _dead(self, entry: OutboxEntry, reason: str, error: str) -> None:
        self._metrics.dead_letters.labels(self.name, reason).inc()
        self._log.error(
            "dead_lettered",
            reason=reason,
            error=error,
            incident_key=entry.event.incident.key,
            incident_event=entry.event.event,
            sequence=entry.event.sequence,
        )
        await self.outbox.dead_letter(self.name, entry, reason, error)
