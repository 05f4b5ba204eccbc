"""Timers `Engine.tick` runs: group waits, absences, too-quiet windows, resolve timers.

Each takes time as an argument and changes incidents only through the `IncidentBook`,
like the arrival path does.
"""

from __future__ import annotations

from correlate.incidents import IncidentBook
from correlate.reasons import describe_group, first_at_or_after, unique_members
from correlate.rulebook import LiveRule
from correlate.state import IncidentState, State
from stormwatch.wire import format_duration

__all__ = ["check_absence", "check_resolve_timers", "check_upper_bound", "flush_group_waits"]


def flush_group_waits(lr: LiveRule, book: IncidentBook, state: State, now: float) -> None:
    """`group` rules open an incident `group_wait` after a group's first alert, with
    every alert of the group still firing then (none firing: nothing is sent)."""
    wait = lr.group.group_wait  # type: ignore[union-attr]
    for gkey, first in list(lr.state.pending.items()):
        if now - first < wait:
            continue
        del lr.state.pending[gkey]
        events = lr.state.groups.pop(gkey, [])
        book.changes.rules.add(lr.name)
        book.changes.groups.add((lr.name, gkey))
        tracked = state.tracked
        members = [
            tracked[e[1]] for e in events if e[1] in tracked and tracked[e[1]].status == "firing"
        ]
        if not members:
            continue
        group = lr.group_of(gkey)
        why = f"{len(members)} alerts grouped by {describe_group(group)} after group_wait {format_duration(wait)}"
        book.open(
            lr.name,
            group,
            gkey,
            unique_members(members),
            opened_by=events[0][0],
            now=now,
            why=why,
            window=events,
        )


def check_absence(lr: LiveRule, book: IncidentBook, now: float) -> None:
    for gkey, last in lr.state.last_seen.items():
        if now - last < lr.timespan or book.open_for(lr.name, gkey) is not None:
            continue
        group = lr.group_of(gkey)
        why = f"no matching alert for {describe_group(group)} within {format_duration(lr.timespan)}"
        book.open(
            lr.name,
            group,
            gkey,
            [],
            opened_by=last + lr.timespan,
            now=now,
            why=why,
            idle_resolves=False,
        )


def check_upper_bound(lr: LiveRule, book: IncidentBook, watermark: float, now: float) -> None:
    """`event_count` with only `lt`/`lte`: judged when a full window has passed."""
    cond = lr.condition
    assert cond is not None
    end = watermark
    for gkey, events in list(lr.state.groups.items()):
        open_inc = book.open_for(lr.name, gkey)
        if not events or end - events[0][0] < lr.timespan:
            continue
        count = len(events) - first_at_or_after(events, end - lr.timespan)
        holds = cond.holds(count)
        if holds and open_inc is None:
            group = lr.group_of(gkey)
            why = f"only {count} matching alerts within {format_duration(lr.timespan)} for {describe_group(group)}"
            book.open(
                lr.name, group, gkey, [], opened_by=end, now=now, why=why, idle_resolves=False
            )
        elif not holds and open_inc is not None:
            book.resolve(
                open_inc,
                now,
                f"{count} matching alerts within {format_duration(lr.timespan)} again",
            )


def check_resolve_timers(
    inc: IncidentState, lr: LiveRule, book: IncidentBook, state: State, now: float
) -> None:
    """Quiet period, hysteresis and `group` repeat intervals of one open incident."""
    if lr.quiet is not None and now - inc.last_activity >= lr.quiet:
        book.resolve(inc, now, f"quiet for {format_duration(lr.quiet)}")
        return
    if lr.resolve_condition is not None:
        span = lr.resolve_timespan
        kept = [a for a in inc.arrivals if a > now - span]
        if len(kept) != len(inc.arrivals):
            inc.arrivals = kept
            book.mark(inc.key)
        if now - inc.opened_at >= span and lr.resolve_condition.holds(len(inc.arrivals)):
            book.resolve(
                inc,
                now,
                f"{len(inc.arrivals)} matching alerts in the last {format_duration(span)}",
            )
            return
    if (
        lr.group is not None
        and inc.announced
        and now - inc.last_event_at >= lr.group.repeat_interval
    ):
        state.dirty.setdefault(inc.key, []).append("repeat_interval")
        book.mark(inc.key)
