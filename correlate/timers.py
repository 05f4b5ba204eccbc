"""`Timers`: every due time the engine waits for, in one heap on its arrival clock.

Alert expiry (`endsAt`), silence ends, group waits, absences, too-quiet windows,
`resolve.quiet`, hysteresis, spaced `updated` events and repeat intervals are all entries
`(due, kind, key)`. The engine fires the entries due before a record's arrival, in that
order, before it takes the record, so a timer fires at its due time however the stream
was cut into batches; `Engine.tick(now)` fires those due at or before `now`.

Entries are never removed: a handler checks its entry against the state when it comes
up and ignores a stale one (a deadline a re-send moved later re-queues itself then). So
moving a deadline costs nothing on the hot path, and the heap is rebuilt from the state
alone on restore. Ties break on `kind`, then `key`: the firing order is a function of
the state, never of the order entries were pushed.
"""

from __future__ import annotations

import heapq
from enum import IntEnum

__all__ = ["Timer", "Timers"]


class Timer(IntEnum):
    """What a due time is for; the order in which timers due at one instant fire."""

    EXPIRE = 0
    """An alert's `ends_at` (key: fingerprint)."""
    SILENCE = 1
    """A silence starts or ends (key: silence id)."""
    GROUP_WAIT = 2
    ABSENCE = 3
    BELOW = 4
    """`event_count` with only an upper bound: an event leaves a group's window."""
    QUIET = 5
    HYSTERESIS = 6
    REPEAT = 7
    FLUSH = 8
    """An incident's coalesced `updated` event (key: incident key)."""
    GC = 9


class Timers:
    __slots__ = ("_heap",)

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, due: float, kind: Timer, key: str) -> None:
        heapq.heappush(self._heap, (due, kind, key))

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_before(self, t: float) -> tuple[float, int, str] | None:
        """The earliest entry due strictly before `t`, removed; None if there is none."""
        heap = self._heap
        if heap and heap[0][0] < t:
            return heapq.heappop(heap)
        return None

    def pop_until(self, t: float) -> tuple[float, int, str] | None:
        """The earliest entry due at or before `t`, removed; None if there is none."""
        heap = self._heap
        if heap and heap[0][0] <= t:
            return heapq.heappop(heap)
        return None

    def clear(self) -> None:
        self._heap.clear()
