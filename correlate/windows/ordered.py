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
"""

from __future__ import annotations

from collections.abc import Sequence

from correlate.windows.base import Event, span_start

__all__ = ["ordered_hit"]


def ordered_hit(
    events: list[Event], t: float, timespan: float, steps: Sequence[str]
) -> list[int] | None:
    """Indices of the earliest in-order run of `steps` within `timespan` that includes
    an event at time `t`, or None. Greedy from each possible first step."""
    if not steps:
        return None
    start = span_start(events, t - timespan)
    n = len(events)
    for i in range(start, n):
        first_time = events[i][0]
        if first_time > t:
            break
        if events[i][2] != steps[0]:
            continue
        picked, want = [i], 1
        j = i + 1
        while want < len(steps) and j < n and events[j][0] <= first_time + timespan:
            if events[j][2] == steps[want]:
                picked.append(j)
                want += 1
            j += 1
        if want == len(steps) and events[picked[0]][0] <= t <= events[picked[-1]][0]:
            return picked
    return None
