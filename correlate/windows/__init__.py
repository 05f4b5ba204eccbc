"""Sliding event-time windows, one correlation type per module.

A group's window is a list of `(event_time, fingerprint, value)` kept sorted by time;
`value` is what the type needs beyond the time (the distinct field for value_count,
the rule name for temporal), empty otherwise.
"""

from correlate.windows.base import Event, evict_before, insert_event
from correlate.windows.count import count_hit, fires_on_arrival
from correlate.windows.distinct import distinct_hit
from correlate.windows.ordered import ordered_hit

__all__ = [
    "Event",
    "count_hit",
    "distinct_hit",
    "evict_before",
    "fires_on_arrival",
    "insert_event",
    "ordered_hit",
]
