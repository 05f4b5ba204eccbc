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

Alert expiries are most of the entries (one per live alert) and mostly share a due time
(the arrival of their request plus `resolve_timeout`): they wait in one list per due
time behind a single heap entry that sorts before every entry due then. When it comes
up, the list is sorted and handed out before anything else: every other entry due then
has a greater kind, so the firing order is the heap's, without a push and a pop on the
whole heap per alert (bench/README.md, "Compiled core"). So a live alert costs a list
slot, not a heap tuple (bench/README.md, memory).
"""

from __future__ import annotations

import heapq
from enum import IntEnum
from typing import Final

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


_EXPIRIES: Final = -1
"""The kind of the heap entry standing for the expiries due at its time."""


class Timers:
    __slots__ = ("_expiries", "_heap", "_ready", "_ready_due")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._expiries: dict[float, list[str]] = {}
        """due -> fingerprints of the EXPIRE entries due then that are not handed out yet."""
        self._ready: list[str] = []
        """The fingerprints of the expiries due at `_ready_due` being handed out, the next
        one last (sorted in reverse: popped from the end)."""
        self._ready_due = 0.0

    def __len__(self) -> int:
        held = sum(map(len, self._expiries.values()))
        return len(self._heap) - len(self._expiries) + held + len(self._ready)

    def at(self, due: float, kind: Timer, key: str) -> None:
        heapq.heappush(self._heap, (due, kind, key))

    def expire_at(self, due: float, fp: str) -> None:
        """`at(due, Timer.EXPIRE, fp)`, held back in the list of its due time."""
        if self._ready and due == self._ready_due:
            # Its due time is being handed out: it takes its place by key, as in a heap.
            ready = self._ready
            lo, hi = 0, len(ready)
            while lo < hi:
                mid = (lo + hi) // 2
                if ready[mid] > fp:
                    lo = mid + 1
                else:
                    hi = mid
            ready.insert(lo, fp)
            return
        fps = self._expiries.get(due)
        if fps is None:
            self._expiries[due] = [fp]
            heapq.heappush(self._heap, (due, _EXPIRIES, ""))
        else:
            fps.append(fp)

    def _release(self, due: float) -> None:
        """The expiries due at `due` are next (their entry just came up)."""
        fps = self._expiries.pop(due)
        fps.sort(reverse=True)
        self._ready, self._ready_due = fps, due

    def next_due(self) -> float | None:
        if self._ready:
            return self._ready_due
        return self._heap[0][0] if self._heap else None

    def pop_before(self, t: float) -> tuple[float, int, str] | None:
        """The earliest entry due strictly before `t`, removed; None if there is none."""
        return self._pop(t, False)

    def pop_until(self, t: float) -> tuple[float, int, str] | None:
        """The earliest entry due at or before `t`, removed; None if there is none."""
        return self._pop(t, True)

    def _pop(self, t: float, until: bool) -> tuple[float, int, str] | None:
        heap = self._heap
        while True:
            if self._ready:
                due = self._ready_due
                if due < t or (until and due == t):
                    return (due, Timer.EXPIRE, self._ready.pop())
                return None
            if not heap:
                return None
            due = heap[0][0]
            if not (due < t or (until and due == t)):
                return None
            entry = heapq.heappop(heap)
            if entry[1] != _EXPIRIES:
                return entry
            self._release(due)

    def clear(self) -> None:
        self._heap.clear()
        self._expiries.clear()
        self._ready = []
