"""`temporal_ordered`: the named rules matched in the listed order within the timespan.

SEC's Pair/PairWithWindow generalised to N steps. Each event's value is the name of the
rule it matched; the window holds when some run of events, in time order, matches the
rules in sequence with the last no later than `timespan` after the first:

```
temporal_ordered rules [port-scan, exploit, exfil], timespan 10m
 t:  0s         120s        300s       900s
     port-scan  exploit     exfil                 -> in order within 10m: opens at exfil
     exploit    port-scan   exfil                 -> out of order: no
```

Order matters, so there is no running count: a hit is found by a greedy scan from each
possible first step, O(window); these windows hold a handful of security events.
"""

from __future__ import annotations

import bisect
from typing import Final

from correlate.reasons import describe_group
from correlate.state import Tracked, Window
from correlate.windows.base import Aggregator, Hit

__all__ = ["TemporalOrdered", "ordered_hit"]

_bisect_left: Final = bisect.bisect_left
"""Compiled (setup.py), a function imported by name is looked up in the module's
globals at every call; a Final name is a C static."""


def ordered_hit(
    times: list[float], values: list[str], t: float, span: float, steps: tuple[str, ...]
) -> list[int] | None:
    """Indices of the earliest in-order run of `steps` within `span` that includes an
    event at time `t`, or None."""
    if not steps:
        return None
    n = len(times)
    for i in range(_bisect_left(times, t - span), n):
        first = times[i]
        if first > t:
            break
        if values[i] != steps[0]:
            continue
        picked, want, j = [i], 1, i + 1
        while want < len(steps) and j < n and times[j] <= first + span:
            if values[j] == steps[want]:
                picked.append(j)
                want += 1
            j += 1
        if want == len(steps) and times[picked[0]] <= t <= times[picked[-1]]:
            return picked
    return None


class TemporalOrdered(Aggregator):
    kind = "ordered"
    with_values = True

    def value_of(self, tracked: Tracked, via: str) -> str:
        return via

    def hit(self, gkey: str, w: Window, t: float, in_order: bool) -> Hit | None:
        return ordered_hit(w.times, w.values, t, self.span, self.lr.steps)

    def why(self, n: int, group: dict[str, str], window: list[tuple[float, str, str]]) -> str:
        order = " -> ".join(e[2] for e in window)
        return f"rules {order} matched in order within {self.within} for {describe_group(group)}"
