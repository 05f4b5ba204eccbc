"""`value_count` and `temporal`: how many distinct values a window holds.

`value_count` counts distinct values of `condition.field` (distinct hosts, distinct
alertnames) among one group's alerts; `temporal` counts distinct matched rules, and
holds when all of its `rules:` matched within the timespan, in any order:

```
temporal rules [login-failed, login-ok], timespan 5m, group-by [user]
 t:   0s            90s              400s
      login-failed  login-ok                          -> both within 5m: opens
                                     login-ok         -> alone: no
```

Like `event_count`, every window of length `timespan` that contains the new alert is a
candidate; in-order arrivals need only the one ending at it. Counting is O(window).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable

from correlate.windows.base import Event, span_start

__all__ = ["distinct_hit"]


def _time(e: Event) -> float:
    return e[0]


def distinct_hit(
    events: list[Event], t: float, timespan: float, holds: Callable[[float], bool], in_order: bool
) -> tuple[int, int] | None:
    """The `[start, stop)` slice of the first window containing `t` whose number of
    distinct values satisfies `holds`."""
    if in_order:
        lo = span_start(events, t - timespan)
        if holds(len({e[2] for e in events[lo:]})):
            return lo, len(events)
        return None
    i = span_start(events, t - timespan)
    while i < len(events) and events[i][0] <= t:
        stop = bisect_right(events, events[i][0] + timespan, key=_time)
        if holds(len({e[2] for e in events[i:stop]})):
            return i, stop
        i += 1
    return None
