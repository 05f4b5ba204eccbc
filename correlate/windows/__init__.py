"""Sliding event-time windows: one `Aggregator` class per correlation type.

A group's window is a `correlate.state.Window`: event times in order, with each event's
fingerprint and value (the distinct field for value_count, the rule for temporal types).
"""

from correlate.windows.absence import Absence
from correlate.windows.base import Aggregator, evict_before, insert
from correlate.windows.count import CountBelow, EventCount, fires_on_arrival
from correlate.windows.distinct import Temporal, ValueCount
from correlate.windows.group import GroupWait
from correlate.windows.ordered import TemporalOrdered, ordered_hit

__all__ = [
    "Absence",
    "Aggregator",
    "CountBelow",
    "EventCount",
    "GroupWait",
    "Temporal",
    "TemporalOrdered",
    "ValueCount",
    "evict_before",
    "fires_on_arrival",
    "insert",
    "ordered_hit",
]
