"""Outboxes: what each sink still has to deliver, one slot per incident.

```
commit ──► inbox (events, in order) ──absorb──► pending: incident key -> Pending
            appended with the batch's           events folded by sinks/coalesce.py,
            state, never refused                due time, attempts, age
                                                   │ due(now)
                                                   ▼
                                      OutboxDrain (sinks/drain.py) ──► sink
```

The pipeline appends a batch's events to each sink's inbox in the same write as the
batch's state. The sink's drain, and only it, moves them into `pending`, folding each
into its incident's slot: the outbox is bounded by incidents, not events, and an
outage leaves each incident's latest state to deliver, not every step of it. A slot
that failed waits for its `next_at`; one that cannot be delivered (refused, or past
the deadline) becomes dead letters, one per event, which a replay folds back in.

`Outbox` is the protocol a drain needs; `MemoryOutbox` is the embedded default,
`RedisOutbox` (sinks/redis_outbox.py) the durable one.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from typing import Protocol

import msgspec

from sinks.coalesce import coalesce, fold
from stormwatch.wire import IncidentEvent

__all__ = ["DeadLetter", "MemoryOutbox", "Outbox", "OutboxEntry", "Pending", "absorb_into"]

# Unique across restarts too (a durable outbox may still hold the last run's entries):
# nanoseconds at start, counting up.
_ids = itertools.count(time.time_ns())


class OutboxEntry(msgspec.Struct, kw_only=True):
    """One event as the inbox and the dead letters hold it."""

    id: int
    event: IncidentEvent

    @classmethod
    def new(cls, event: IncidentEvent) -> OutboxEntry:
        return cls(id=next(_ids), event=event)


class Pending(msgspec.Struct, kw_only=True):
    """What one sink still has to do for one incident."""

    key: str
    events: list[IncidentEvent]
    """One event, or an `opened` and its `resolved` (sinks/coalesce.py)."""
    enqueued_at: float
    """When the oldest event not yet delivered arrived: the deadline and the age count
    from here."""
    attempts: int = 0
    next_at: float = 0.0
    """Not before this time (backoff, Retry-After); a new slot is due at once."""
    last_error: str = ""
    inflight: int = 0
    """The sequence of the first event while it is being delivered: the sink may have it
    even if the drain dies before hearing so. Nothing folds into that event, so whoever
    drains the slot next sends it again as it was, under the same Idempotency-Key
    (key:sequence), which the receiver absorbs; never an `opened` under a new one."""


class DeadLetter(msgspec.Struct, kw_only=True, frozen=True):
    entry: OutboxEntry
    reason: str
    """`permanent` (the sink refused it), `expired` (past the retry deadline) or `error`."""
    error: str
    at: float


def absorb_into(
    slots: dict[str, Pending], events: list[IncidentEvent], now: float
) -> tuple[dict[str, Pending], int]:
    """Fold events into the slots they belong to; returns the slots changed and how many
    events folded into a slot that already waited (pure: shared by both outboxes)."""
    changed: dict[str, Pending] = {}
    merged = 0
    for event in events:
        key = event.incident.key
        slot = changed.get(key) or slots.get(key)
        if slot is None:
            changed[key] = Pending(key=key, events=[event], enqueued_at=now, next_at=now)
            continue
        merged += 1
        waiting = slot.events
        if slot.inflight and waiting and waiting[0].sequence == slot.inflight:
            folded = (
                [waiting[0], *coalesce(waiting[1:], event)]
                if event.sequence > slot.inflight
                else waiting
            )
        else:
            folded = coalesce(waiting, event)
        changed[key] = msgspec.structs.replace(slot, events=folded)
    return changed, merged


def requeue_into(
    slots: dict[str, Pending], letters: list[DeadLetter], now: float
) -> dict[str, Pending]:
    """Dead letters folded, per incident and in sequence order, with what waits."""
    by_key: dict[str, list[IncidentEvent]] = {}
    for d in letters:
        by_key.setdefault(d.entry.event.incident.key, []).append(d.entry.event)
    out: dict[str, Pending] = {}
    for key, events in by_key.items():
        slot = slots.get(key)
        waiting = slot.events if slot is not None else []
        folded = fold([*events, *waiting])
        if slot is None:
            out[key] = Pending(key=key, events=folded, enqueued_at=now, next_at=now)
        else:
            out[key] = msgspec.structs.replace(slot, events=folded, next_at=min(slot.next_at, now))
    return out


class Outbox(Protocol):
    """One drain per sink calls these; the commit only appends (`put`)."""

    async def put(self, sink: str, events: list[IncidentEvent]) -> None:
        """Append to the sink's inbox; never refuses (backpressure is App.submit's)."""
        ...

    async def stage(
        self, sink: str, events: list[IncidentEvent], into: dict[str, list[bytes]]
    ) -> None:
        """Queue a batch's events for a sink as part of the batch's commit: an outbox the
        state store holds (Redis) adds its entries to `into`, which the store writes in
        the batch's transaction; one in memory takes them now."""
        ...

    async def absorb(self, sink: str, now: float, limit: int = 1000) -> tuple[int, int]:
        """Fold inbox events into pending; returns (events taken, of them coalesced)."""
        ...

    async def due(self, sink: str, now: float, limit: int) -> list[Pending]: ...
    async def next_due(self, sink: str) -> float | None: ...
    async def save(self, sink: str, slot: Pending, *, held: int | None = None) -> None:
        """Write a slot back (fewer events left, or a failure and its next attempt).
        `held`: how many events the stored slot holds, when the caller knows it (the
        drain read it and is its only writer), which spares reading it again."""
        ...

    async def settle(
        self, sink: str, saved: list[tuple[Pending, int]], done: list[tuple[str, int]]
    ) -> None:
        """In one write: store each of `saved` (a slot and the events the stored one
        held) and drop each of `done` (a key and the events its slot held). A drain's
        round writes its slots ahead, and its deliveries' ends, with one each."""
        ...

    async def dead_letter(self, sink: str, slot: Pending, reason: str, error: str) -> None:
        """Move a slot's events to the dead letters."""
        ...

    async def dead_letters(self, sink: str) -> list[DeadLetter]: ...
    async def replay(self, sink: str, now: float) -> int:
        """Fold every dead letter back into pending; returns how many."""
        ...

    async def stats(self, sink: str) -> tuple[int, int, float | None]:
        """(incidents pending, events in them and in the inbox, oldest enqueued_at)."""
        ...

    async def slot(self, sink: str, key: str) -> Pending | None:
        """What waits for one incident, if anything."""
        ...

    dropped: dict[str, int]
    """Dead letters pushed out by newer ones, per sink."""


class _Sink:
    __slots__ = ("dead", "events", "heap", "inbox", "slots")

    def __init__(self, dead_capacity: int) -> None:
        self.inbox: deque[IncidentEvent] = deque()
        self.slots: dict[str, Pending] = {}
        self.events = 0
        """Events in `slots` (kept as they change: a gauge reads it)."""
        self.heap: list[tuple[float, int, str]] = []
        self.dead: deque[DeadLetter] = deque(maxlen=dead_capacity)


class MemoryOutbox:
    """Per sink, in memory; dies with the process (the embedded mode)."""

    def __init__(self, dead_letter_capacity: int = 10_000) -> None:
        self._dead_capacity = dead_letter_capacity
        self._sinks: dict[str, _Sink] = {}
        self._order = itertools.count()
        self.dropped: dict[str, int] = {}

    def _s(self, sink: str) -> _Sink:
        s = self._sinks.get(sink)
        if s is None:
            s = self._sinks[sink] = _Sink(self._dead_capacity)
        return s

    def _set(self, s: _Sink, slot: Pending) -> None:
        old = s.slots.get(slot.key)
        s.events += len(slot.events) - (len(old.events) if old is not None else 0)
        s.slots[slot.key] = slot
        if old is None or old.next_at != slot.next_at:
            heapq.heappush(s.heap, (slot.next_at, next(self._order), slot.key))

    def _drop(self, s: _Sink, key: str) -> None:
        old = s.slots.pop(key, None)
        if old is not None:
            s.events -= len(old.events)

    async def put(self, sink: str, events: list[IncidentEvent]) -> None:
        self._s(sink).inbox.extend(events)

    async def stage(
        self, sink: str, events: list[IncidentEvent], into: dict[str, list[bytes]]
    ) -> None:
        await self.put(sink, events)

    async def absorb(self, sink: str, now: float, limit: int = 1000) -> tuple[int, int]:
        s = self._s(sink)
        taken = [s.inbox.popleft() for _ in range(min(limit, len(s.inbox)))]
        changed, merged = absorb_into(s.slots, taken, now)
        for slot in changed.values():
            self._set(s, slot)
        return len(taken), merged

    def _live(self, s: _Sink, entry: tuple[float, int, str]) -> bool:
        slot = s.slots.get(entry[2])
        return slot is not None and slot.next_at == entry[0]

    async def due(self, sink: str, now: float, limit: int) -> list[Pending]:
        s, out = self._s(sink), dict[str, Pending]()
        while s.heap and len(out) < limit and s.heap[0][0] <= now:
            entry = heapq.heappop(s.heap)
            if self._live(s, entry):
                out[entry[2]] = s.slots[entry[2]]
        # What was taken stays scheduled until it is saved or settled; callers get copies,
        # so the schedule changes only through `save`.
        for slot in out.values():
            heapq.heappush(s.heap, (slot.next_at, next(self._order), slot.key))
        return [msgspec.structs.replace(slot) for slot in out.values()]

    async def next_due(self, sink: str) -> float | None:
        s = self._s(sink)
        while s.heap and not self._live(s, s.heap[0]):
            heapq.heappop(s.heap)
        return s.heap[0][0] if s.heap else None

    async def save(self, sink: str, slot: Pending, *, held: int | None = None) -> None:
        self._set(self._s(sink), slot)

    async def settle(
        self, sink: str, saved: list[tuple[Pending, int]], done: list[tuple[str, int]]
    ) -> None:
        s = self._s(sink)
        for slot, _ in saved:
            self._set(s, slot)
        for key, _ in done:
            self._drop(s, key)

    async def dead_letter(self, sink: str, slot: Pending, reason: str, error: str) -> None:
        s = self._s(sink)
        for event in slot.events:
            if len(s.dead) == self._dead_capacity:
                self.dropped[sink] = self.dropped.get(sink, 0) + 1
            entry = OutboxEntry.new(event)
            s.dead.append(DeadLetter(entry=entry, reason=reason, error=error, at=time.time()))
        self._drop(s, slot.key)

    async def dead_letters(self, sink: str) -> list[DeadLetter]:
        return list(self._s(sink).dead)

    async def replay(self, sink: str, now: float) -> int:
        s = self._s(sink)
        letters = list(s.dead)
        s.dead.clear()
        for slot in requeue_into(s.slots, letters, now).values():
            self._set(s, slot)
        return len(letters)

    async def slot(self, sink: str, key: str) -> Pending | None:
        return self._s(sink).slots.get(key)

    async def stats(self, sink: str) -> tuple[int, int, float | None]:
        s = self._s(sink)
        oldest = min((p.enqueued_at for p in s.slots.values()), default=None)
        return len(s.slots), s.events + len(s.inbox), oldest
