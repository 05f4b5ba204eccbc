"""Operations every window type shares: sorted insert and eviction by watermark."""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import TypeAlias

__all__ = ["Event", "evict_before", "insert_event", "span_start"]

Event: TypeAlias = tuple[float, str, str]
"""(event time, alert fingerprint, value)."""


def _time(e: Event) -> float:
    return e[0]


def insert_event(events: list[Event], event: Event) -> bool:
    """Insert keeping time order; returns True when it went at the end (in order).

    Alerts mostly arrive in event-time order, so the append fast path is the common one.
    """
    if not events or events[-1][0] <= event[0]:
        events.append(event)
        return True
    insort(events, event, key=_time)
    return False


def evict_before(events: list[Event], cutoff: float) -> int:
    """Drop events older than `cutoff` (they can no longer share a window with any
    alert that is not late). Returns how many were dropped."""
    if not events or events[0][0] >= cutoff:
        return 0
    n = bisect_left(events, cutoff, key=_time)
    del events[:n]
    return n


def span_start(events: list[Event], t: float) -> int:
    """Index of the first event at or after `t`."""
    return bisect_left(events, t, key=_time)
