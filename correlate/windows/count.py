"""`event_count`: at least N matching alerts of one group within a sliding timespan.

Windows slide on event time and are anchored on the events themselves (no fixed
boundaries, so a burst that straddles a minute boundary is not split):

```
timespan 60s, condition gte 3
 t:    0s   20s            70s  75s
       a    b              c    d
 c arrives: window [10s, 70s] holds b c     -> 2, no
 d arrives: window [15s, 75s] holds b c d   -> 3, opens with b c d
```

When an alert arrives, every window of length `timespan` that contains it is a
candidate; the incident opens on the first (earliest) one whose count satisfies the
condition. In-order arrivals need only the window ending at the new alert.
"""

from __future__ import annotations

from bisect import bisect_right

from correlate.windows.base import Event, span_start
from rules.schema import Condition

__all__ = ["count_hit", "fires_on_arrival"]


def fires_on_arrival(condition: Condition) -> bool:
    """Only a lower bound can become true when an alert arrives; `lt`/`lte` alone are
    judged when a window closes (on tick)."""
    return condition.gte is not None or condition.gt is not None or condition.eq is not None


def _time(e: Event) -> float:
    return e[0]


def count_hit(
    events: list[Event], t: float, timespan: float, condition: Condition, in_order: bool
) -> tuple[int, int] | None:
    """The `[start, stop)` slice of the first window containing `t` whose count holds.

    `events` is sorted and already holds the new event at time `t`.
    """
    if in_order:
        lo = span_start(events, t - timespan)
        if condition.holds(len(events) - lo):
            return lo, len(events)
        return None
    first = span_start(events, t - timespan)
    i = first
    while i < len(events) and events[i][0] <= t:
        stop = bisect_right(events, events[i][0] + timespan, key=_time)
        if condition.holds(stop - i):
            return i, stop
        i += 1
    return None
