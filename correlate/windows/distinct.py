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
candidate; in-order arrivals need only the one ending at it. For those a running count
per group (value -> events in the window) moves with the window, so an in-order alert
costs O(1) amortised, not O(window); any other change to the window drops it, and the
next in-order alert rebuilds it.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Final

from correlate.reasons import describe_group
from correlate.state import Tracked, Window
from correlate.windows.base import Aggregator, Hit

if TYPE_CHECKING:
    from correlate.context import Context
    from correlate.rulebook import LiveRule

__all__ = ["Distinct", "Temporal", "ValueCount"]

_bisect_left: Final = bisect.bisect_left
_bisect_right: Final = bisect.bisect_right
"""Compiled (setup.py), a function imported by name is looked up in the module's
globals at every call; a Final name is a C static."""


class _Run:
    """The counts of `values[lo:]`, for the window ending at the group's latest event."""

    __slots__ = ("counts", "lo")

    def __init__(self, lo: int, counts: dict[str, int]) -> None:
        self.lo = lo
        self.counts = counts


class Distinct(Aggregator):
    with_values = True

    def __init__(self, lr: LiveRule, ctx: Context) -> None:
        super().__init__(lr, ctx)
        self.holds = lr.holds
        self._runs: dict[str, _Run] = {}

    def forget_cache(self, gkey: str) -> None:
        self._runs.pop(gkey, None)

    def evicted(self, gkey: str, n: int) -> None:
        run = self._runs.get(gkey)
        if run is not None:
            if run.lo >= n:
                run.lo -= n  # the dropped events were before its window: counts hold
            else:
                del self._runs[gkey]

    def hit(self, gkey: str, w: Window, t: float, in_order: bool) -> Hit | None:
        times, values, span = w.times, w.values, self.span
        n = len(times)
        if not in_order:
            self._runs.pop(gkey, None)
            i = _bisect_left(times, t - span)
            while i < n and times[i] <= t:
                stop = _bisect_right(times, times[i] + span)
                if self.holds(len(set(values[i:stop]))):
                    return i, stop
                i += 1
            return None
        run = self._runs.get(gkey)
        cutoff = t - span
        if run is None:
            lo = _bisect_left(times, cutoff)
            counts: dict[str, int] = {}
            for v in values[lo:]:
                counts[v] = counts.get(v, 0) + 1
            run = self._runs[gkey] = _Run(lo, counts)
        else:
            counts = run.counts
            v = values[-1]
            counts[v] = counts.get(v, 0) + 1
            lo = run.lo
            while times[lo] < cutoff:
                old = values[lo]
                c = counts[old] - 1
                if c:
                    counts[old] = c
                else:
                    del counts[old]
                lo += 1
            run.lo = lo
        return (run.lo, n) if self.holds(len(counts)) else None


class ValueCount(Distinct):
    kind = "value"

    def value_of(self, tracked: Tracked, via: str) -> str:
        label = tracked.label
        return "\x1f".join(label(f) for f in self.lr.field)

    def why(self, n: int, group: dict[str, str], window: list[tuple[float, str, str]]) -> str:
        distinct = len({e[2] for e in window})
        return (
            f"{distinct} distinct {'+'.join(self.lr.field)} within {self.within} "
            f"(value_count {self.condition_text}) for {describe_group(group)}"
        )


class Temporal(Distinct):
    kind = "temporal"

    def value_of(self, tracked: Tracked, via: str) -> str:
        return via

    def why(self, n: int, group: dict[str, str], window: list[tuple[float, str, str]]) -> str:
        rules = ", ".join(sorted({e[2] for e in window}))
        return f"rules {rules} all matched within {self.within} for {describe_group(group)}"
