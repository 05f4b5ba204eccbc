"""`event_count`: N matching alerts of one group within a sliding timespan.

Windows slide on event time and are anchored on the events themselves (no fixed
boundaries, so a burst that straddles a minute boundary is not split):

```
timespan 60s, condition gte 3
 t:    0s   20s            70s  75s
       a    b              c    d
 c arrives: window [10s, 70s] holds b c     -> 2, no
 d arrives: window [15s, 75s] holds b c d   -> 3, opens with b c d
```

`EventCount` (a lower bound: gte, gt, eq) judges when an alert arrives: every window of
length `timespan` containing it is a candidate, and the incident opens on the earliest
one whose count holds. An in-order arrival needs only the window ending at it: one
`bisect` on the event times, O(log n) in C.

`CountBelow` (only lt/lte: "too few") judges on the arrival clock, when an event leaves
the window: at clock T the window is the event times in (T - timespan, T], and a group is
judged once it has been observed for a full timespan. Its incident holds no alerts and
resolves when the count rises again.

```
timespan 60s, condition lt 2, one alert at 0s and one at 30s
 clock: 0s  30s        60s         90s
            count 2    0s leaves:1 -> opens at 60s (1 < 2)
```
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Final

from correlate.reasons import describe_group
from correlate.state import Stamp, Tracked, Window
from correlate.timers import Timer
from correlate.windows.base import Aggregator, Hit, insert
from rules.schema import Condition

if TYPE_CHECKING:
    from correlate.context import Context
    from correlate.rulebook import LiveRule

__all__ = ["CountBelow", "EventCount", "fires_on_arrival"]

_bisect_left: Final = bisect.bisect_left
_bisect_right: Final = bisect.bisect_right
"""Compiled (setup.py), a function imported by name is looked up in the module's
globals at every call; a Final name is a C static."""


def fires_on_arrival(condition: Condition) -> bool:
    """Only a lower bound can become true when an alert arrives; `lt`/`lte` alone are
    judged when events leave the window."""
    return condition.gte is not None or condition.gt is not None or condition.eq is not None


class EventCount(Aggregator):
    kind = "count"

    def __init__(self, lr: LiveRule, ctx: Context) -> None:
        super().__init__(lr, ctx)
        assert lr.condition is not None
        self.holds = lr.condition.holds

    def hit(self, gkey: str, w: Window, t: float, in_order: bool) -> Hit | None:
        times, span, holds = w.times, self.span, self.holds
        if in_order:
            lo = _bisect_left(times, t - span)
            return (lo, len(times)) if holds(len(times) - lo) else None
        i, n = _bisect_left(times, t - span), len(times)
        while i < n and times[i] <= t:
            stop = _bisect_right(times, times[i] + span)
            if holds(stop - i):
                return i, stop
            i += 1
        return None

    def why(self, n: int, group: dict[str, str], window: list[tuple[float, str, str]]) -> str:
        return (
            f"{n} matching alerts within {self.within} "
            f"(event_count {self.condition_text}) for {describe_group(group)}"
        )


class CountBelow(Aggregator):
    kind = "count_below"
    lists_window = False
    joins = False

    def __init__(self, lr: LiveRule, ctx: Context) -> None:
        super().__init__(lr, ctx)
        assert lr.condition is not None
        self.holds = lr.condition.holds

    def _key(self, gkey: str) -> str:
        return self.name + "\x1e" + gkey

    def _gone(self, w: Window, clock: float) -> int:
        """How many events have left the window by `clock` (time + span <= clock).

        Decided on `t + span` exactly as due times are computed, so a timer always finds
        its event gone and the next due time is strictly later (no float rounding can
        make a timer fire again at the same instant)."""
        times, span = w.times, self.span
        i, n = _bisect_right(times, clock - span), len(times)
        while i < n and times[i] + span <= clock:
            i += 1
        while i > 0 and times[i - 1] + span > clock:
            i -= 1
        return i

    def _count(self, w: Window, clock: float) -> int:
        return len(w.times) - self._gone(w, clock)

    def _schedule(self, gkey: str, w: Window | None, now: float) -> None:
        """Queue the group's next look: when its first full window closes, or when the
        next event leaves it, whichever is later; nothing if neither lies after `now`."""
        due = self.rs.last_seen[gkey] + self.span
        if w is not None and w.times:
            i = self._gone(w, now)
            if i < len(w.times):
                due = max(due, w.times[i] + self.span)
        if due <= now:
            return  # observed a full window and nothing left to leave it: wait for an event
        pending = self.rs.pending
        queued = pending.get(gkey)
        if queued is None or due < queued:
            # Kept in the state (not derived): whether a look due exactly at the clock has
            # run yet cannot be told from the windows alone after a restore.
            pending[gkey] = due
            self.ctx.changes.rules.add(self.name)
            self.ctx.timers.at(due, Timer.BELOW, self._key(gkey))

    def feed(self, gkey: str, tracked: Tracked, t: Stamp, via: str) -> None:
        ctx = self.ctx
        clock = ctx.state.clock
        if t + self.span <= clock:
            return  # already outside the window it could count in
        rs = self.rs
        w = rs.groups.get(gkey)
        if w is None:
            if gkey not in rs.last_seen and len(rs.last_seen) >= ctx.config.max_groups_per_rule:
                capped = ctx.counts.capped_by_rule
                capped[self.name] = capped.get(self.name, 0) + 1
                return
            w = rs.groups[gkey] = Window(times=[], fps=[], values=[])
        if gkey not in rs.last_seen:
            rs.last_seen[gkey] = clock
            ctx.changes.rules.add(self.name)
        insert(w, t, tracked.fingerprint, None)
        ctx.changes.groups.add((self.name, gkey))
        inc = ctx.book.open_for(self.name, gkey)
        count = self._count(w, clock)
        if inc is not None and not self.holds(count):
            ctx.book.resolve(
                inc,
                max(t, inc.opened_at),
                f"{count} matching alerts within {self.within} again",
            )
        self._schedule(gkey, w, clock)

    def on_timer(self, kind: Timer, gkey: str, due: float) -> None:
        rs = self.rs
        if rs.pending.get(gkey) != due:
            return  # superseded by an earlier entry
        del rs.pending[gkey]
        self.ctx.changes.rules.add(self.name)
        if gkey not in rs.last_seen:
            return
        w = rs.groups.get(gkey)
        if w is not None:
            gone = self._gone(w, due)
            if gone:
                del w.times[:gone], w.fps[:gone]
            if gone or not w.times:
                self.ctx.changes.groups.add((self.name, gkey))
            if not w.times:
                del rs.groups[gkey]
                w = None
        if due >= rs.last_seen[gkey] + self.span:
            count = len(w.times) if w is not None else 0
            book = self.ctx.book
            if self.holds(count) and book.open_for(self.name, gkey) is None:
                group = self.lr.group_of(gkey)
                why = (
                    f"only {count} matching alerts within {self.within} for {describe_group(group)}"
                )
                book.open(
                    self.lr, group, gkey, [], key_time=due, at=due, why=why, idle_resolves=False
                )
        if w is not None:
            self._schedule(gkey, w, due)

    def schedule_from_state(self) -> None:
        for gkey, due in self.rs.pending.items():
            self.ctx.timers.at(due, Timer.BELOW, self._key(gkey))

    def gc(self, horizon: float) -> None:
        """Its windows only hold events inside the timespan: its timers evict them."""

    def why(self, n: int, group: dict[str, str], window: list[tuple[float, str, str]]) -> str:
        return f"only {n} matching alerts within {self.within}"
