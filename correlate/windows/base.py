"""What every correlation type shares: the window list operations and `Aggregator`.

A group's window (`correlate.state.Window`) holds event times in order with each
event's fingerprint and value. An `Aggregator` is one correlation type compiled for one
rule: built once per (re)load, it keeps the rule's windows in its `RuleState` and only
derived caches of its own, so a snapshot holds everything.

The path every windowed type shares, for a new alert of a group:

```
open incident for the group? -> the alert joins it
behind watermark - allowed_lateness? -> late: counted, not merged
else -> into the group's window (sorted by event time) -> does a window hold now?
        -> yes: its alerts leave the window and open an incident
```
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from correlate.reasons import describe_condition
from correlate.state import RuleState, Stamp, Tracked, Window
from correlate.timers import Timer
from stormwatch.wire import format_duration

if TYPE_CHECKING:
    from correlate.context import Context
    from correlate.rulebook import LiveRule

__all__ = ["Aggregator", "Hit", "evict_before", "evict_through", "insert", "remove"]

_bisect_left: Final = bisect.bisect_left
_bisect_right: Final = bisect.bisect_right
"""Compiled (setup.py), a function imported by name is looked up in the module's
globals at every call; a Final name is a C static."""

Hit = tuple[int, int] | list[int]
"""Which events of a window make an incident: a `[start, stop)` slice, or indices."""

_SEP: Final = "\x1f"


def insert(w: Window, t: Stamp, fp: str, value: str | None) -> bool:
    """Insert keeping time order (after equal times); True when it went at the end.

    Alerts mostly arrive in event-time order, so appending is the common case."""
    times = w.times
    if not times or times[-1] <= t:
        times.append(t)
        w.fps.append(fp)
        if value is not None:
            w.values.append(value)
        return True
    i = _bisect_right(times, t)
    times.insert(i, t)
    w.fps.insert(i, fp)
    if value is not None:
        w.values.insert(i, value)
    return False


def remove(w: Window, hit: Hit) -> None:
    if isinstance(hit, tuple):
        lo, hi = hit
        del w.times[lo:hi], w.fps[lo:hi]
        if w.values:
            del w.values[lo:hi]
        return
    for i in sorted(hit, reverse=True):
        del w.times[i], w.fps[i]
        if w.values:
            del w.values[i]


def evict_before(w: Window, cutoff: float) -> int:
    """Drop events older than `cutoff`; returns how many."""
    return _evict(w, _bisect_left(w.times, cutoff))


def evict_through(w: Window, t: float) -> int:
    """Drop events at or before `t`; returns how many."""
    return _evict(w, _bisect_right(w.times, t))


def _evict(w: Window, n: int) -> int:
    if n:
        del w.times[:n], w.fps[:n]
        if w.values:
            del w.values[:n]
    return n


class Aggregator:
    """One correlation type for one rule. Subclasses say when a window holds (`hit`)
    and may take timers (`on_timer`) and re-sends (`heartbeat`)."""

    kind = ""
    with_values = False
    """Whether window events carry a value (value_count, temporal types)."""
    hears_resends = False
    """Whether re-sends reach `heartbeat` (absence: a re-send is the heartbeat)."""
    joins = True
    """Whether alerts of a group with an open incident join it."""
    evicts = True
    """Whether a feed drops its group's events that no alert that is not late can share
    a window with (a group rule's window is emptied when its wait ends, never before)."""
    lists_window = True
    """Whether an incident it opens lists the alerts of its window (any of them, firing
    or not: so an alert a window holds must not be forgotten)."""

    def __init__(self, lr: LiveRule, ctx: Context) -> None:
        self.lr = lr
        self.name = lr.name
        self.span = lr.timespan
        self.ctx = ctx
        # The fixed words of `why`, spelled once per rule: an incident opens per storm.
        self.within = format_duration(self.span)
        self.condition_text = describe_condition(lr.condition)

    @property
    def rs(self) -> RuleState:
        return self.lr.state

    # -- arrivals -------------------------------------------------------------------------

    def feed(self, gkey: str, tracked: Tracked, t: Stamp, via: str) -> None:
        """A new firing alert of group `gkey` at event time `t` (matched via rule `via`;
        a Stamp, since windows store it)."""
        ctx = self.ctx
        if self.joins:
            inc = ctx.book.open_for(self.name, gkey)
            if inc is not None:
                ctx.book.join(inc, tracked, t)
                return
        if t < ctx.state.watermark - ctx.config.allowed_lateness:
            ctx.counts.late += 1
            late = ctx.counts.late_by_rule
            late[self.name] = late.get(self.name, 0) + 1
            return
        groups = self.rs.groups
        w = groups.get(gkey)
        if w is None:
            if len(groups) >= ctx.config.max_groups_per_rule:
                # Bounded memory: a group-by on an unbounded label must not grow forever.
                capped = ctx.counts.capped_by_rule
                capped[self.name] = capped.get(self.name, 0) + 1
                return
            w = groups[gkey] = Window(times=[], fps=[], values=[])
            self.new_group(gkey)
        elif self.evicts:
            cutoff = ctx.state.watermark - ctx.config.allowed_lateness - self.span
            if w.times and w.times[0] < cutoff:
                self.evicted(gkey, evict_before(w, cutoff))
        value = self.value_of(tracked, via) if self.with_values else None
        in_order = insert(w, t, tracked.fingerprint, value)
        ctx.changes.groups.add((self.name, gkey))
        hit = self.hit(gkey, w, t, in_order)
        if hit is not None:
            self.open_from(gkey, w, hit)

    def heartbeat(self, gkey: str, tracked: Tracked) -> None:
        """A re-send of a firing alert (only for types that `hears_resends`)."""

    def new_group(self, gkey: str) -> None:
        """A group got its first window event."""

    def value_of(self, tracked: Tracked, via: str) -> str:
        return ""

    def hit(self, gkey: str, w: Window, t: float, in_order: bool) -> Hit | None:
        raise NotImplementedError

    def why(self, n: int, group: dict[str, str], window: list[tuple[float, str, str]]) -> str:
        raise NotImplementedError

    def open_from(self, gkey: str, w: Window, hit: Hit) -> None:
        """Open an incident with the events `hit` picks; they leave the window."""
        idx = range(*hit) if isinstance(hit, tuple) else hit
        vals = w.values
        window = [(w.times[i], w.fps[i], vals[i] if vals else "") for i in idx]
        remove(w, hit)
        self.forget_cache(gkey)
        if not w.times:
            del self.rs.groups[gkey]
        self.ctx.changes.groups.add((self.name, gkey))
        tracked = self.ctx.state.tracked
        seen: dict[str, Tracked] = {}
        for _, fp, _ in window:
            m = tracked.get(fp)
            if m is not None:
                seen.setdefault(fp, m)
        group = self.lr.group_of(gkey)
        first = min(window)
        self.ctx.book.open(
            self.lr,
            group,
            gkey,
            list(seen.values()),
            key_time=first[0],
            key_fp=first[1],
            at=max(e[0] for e in window),
            why=self.why(len(window), group, window),
            window=window,
        )

    def forget_cache(self, gkey: str) -> None:
        """Drop derived per-group caches after the window changed other than by append."""

    def evicted(self, gkey: str, n: int) -> None:
        """The group's first `n` events were dropped from the front."""
        self.forget_cache(gkey)

    # -- timers ---------------------------------------------------------------------------

    def on_timer(self, kind: Timer, gkey: str, due: float) -> None:
        """A due time of this rule came up (only for types that set timers)."""

    def schedule_from_state(self) -> None:
        """Queue this rule's timers from its state (a restore, a reload)."""

    def gc(self, horizon: float) -> None:
        """Drop events that can no longer share a window with any alert that is not late."""
        groups = self.rs.groups
        cutoff = horizon - self.span
        for gkey in list(groups):
            w = groups[gkey]
            if w.times and w.times[0] >= cutoff:
                continue  # nothing to evict (most groups): no calls
            n = evict_before(w, cutoff)
            if n:
                self.evicted(gkey, n)
                self.ctx.changes.groups.add((self.name, gkey))
            if not w.times:
                del groups[gkey]

    @staticmethod
    def group_key(values: Sequence[str]) -> str:
        return _SEP.join(values)
