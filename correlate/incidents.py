"""Incident lifecycle: open, join, resolve, acknowledge; and the timers incidents own.

An incident's key is a hash of its rule, its group values and the event time of the
first alert of the window that opened it (for an incident of no alerts, the due time
that opened it): never processing time, so a replay, a restart fed the same re-sends and
a second replica all give the same key, and a sink can use it as its idempotency key.

Times: `opened_at`, `resolved_at`, `first_seen`, `last_seen` and timeline entries are
event time; `last_activity`, `last_event_at` and `arrivals` run on the arrival clock
(`State.clock`), as do the timers: `resolve.quiet` (QUIET), hysteresis (HYSTERESIS),
`repeat_interval` (REPEAT) and the spaced `updated` event (FLUSH). `opened` and
`resolved` go out at once (through the `Announcer`); any other change marks the incident
dirty and queues one FLUSH, so a storm of changes costs one `updated` event per
`update_interval`, not one per alert.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import deque
from typing import Final

from correlate.announce import Announcer
from correlate.context import Context
from correlate.rulebook import LiveRule
from correlate.state import IncidentState, Tracked
from correlate.timers import Timer
from stormwatch.wire import TimelineEntry, format_duration

__all__ = ["ALERT_ENTRIES_UP_TO", "TIMELINE_LIMIT", "IncidentBook", "incident_key"]

_bisect_right: Final = bisect.bisect_right
"""Compiled (setup.py), a function imported by name is looked up in the module's
globals at every call; a Final name is a C static."""

TIMELINE_LIMIT: Final = 50
"""Timeline entries kept per incident; older ones are counted in `timeline_dropped`."""
ALERT_ENTRIES_UP_TO: Final = 10
"""Incidents with more alerts than this stop logging each alert added or resolved."""

_SEP: Final = "\x1e"
_SHARED_MAX: Final = 10_000
"""Distinct `Tracked.incidents` tuples kept for sharing; dropped whole when full."""


def incident_key(rule: str, group_key: str, first_at: float, first_fp: str = "", n: int = 0) -> str:
    """The key of the incident whose window began with alert `first_fp` at `first_at`."""
    body = f"{rule}{_SEP}{group_key}{_SEP}{first_at!r}"
    if first_fp:
        body += _SEP + first_fp
    if n:
        body += f"{_SEP}{n}"
    return "inc-" + hashlib.blake2b(body.encode(), digest_size=10).hexdigest()


class IncidentBook:
    """Opens, updates and resolves incidents in the state, and marks what changed."""

    def __init__(self, ctx: Context, announcer: Announcer) -> None:
        self.ctx = ctx
        self.state = ctx.state
        self.announcer = announcer
        self._flush_due: dict[str, float] = {}
        """incident key -> due time of its queued FLUSH (derived from the state)."""
        self._hysteresis_due: dict[str, float] = {}
        """incident key -> due time of its queued HYSTERESIS check (derived)."""
        self.closed: deque[tuple[float, str]] = deque()
        """(arrival clock it resolved at, key), in clock order: what the engine forgets
        after `retention`, oldest first."""
        self._shared: dict[tuple[str, ...], tuple[str, ...]] = {}
        """Membership tuples handed out: the alerts of a storm are in the same incidents,
        so they share one tuple (56 bytes an alert otherwise; bench/README.md, memory).
        Only sharing is lost when it is dropped: tuples compare by value."""

    # -- marks and the timeline ----------------------------------------------------------

    def touch(self, inc: IncidentState, reason: str) -> None:
        """A change that goes out in the incident's next `updated` event."""
        self.ctx.changes.incidents.add(inc.key)
        if reason not in inc.dirty:
            inc.dirty.append(reason)
        self.schedule_flush(inc)

    def schedule_flush(self, inc: IncidentState) -> None:
        due = self.flush_due(inc)
        pending = self._flush_due.get(inc.key)
        if pending is None or due < pending:
            self._flush_due[inc.key] = due
            self.ctx.timers.at(due, Timer.FLUSH, inc.key)

    def flush_due(self, inc: IncidentState) -> float:
        cfg = self.ctx.config
        lr = self.ctx.live[inc.rule]
        interval = lr.group_interval if lr.group_interval is not None else cfg.update_interval
        if inc.dirty == ["duplicates"]:
            interval = max(interval, cfg.duplicates_interval)
        return max(self.state.clock, inc.last_event_at + interval)

    def log(self, inc: IncidentState, at: float, event: str, detail: str = "") -> None:
        self.ctx.changes.incidents.add(inc.key)
        inc.timeline.append(TimelineEntry(at=at, event=event, detail=detail))
        if len(inc.timeline) > TIMELINE_LIMIT:
            # Keep the opening entry: it says why the incident exists.
            del inc.timeline[1]
            inc.timeline_dropped += 1

    def _log_alert(self, inc: IncidentState, at: float, event: str, fp: str) -> None:
        """Per-alert entries only while the incident is small: in a storm they would
        crowd out the lifecycle and make every save of the incident large (the Redis
        load test in bench/README.md); the alerts list says when each alert started."""
        if inc.alert_count <= ALERT_ENTRIES_UP_TO:
            self.log(inc, at, event, fp)

    # -- lifecycle ------------------------------------------------------------------------

    def open_for(self, rule: str, group_key: str) -> IncidentState | None:
        key = self.state.open_by_group.get(rule + _SEP + group_key)
        return self.state.incidents.get(key) if key is not None else None

    def open(
        self,
        lr: LiveRule,
        group: dict[str, str],
        group_key: str,
        members: list[Tracked],
        *,
        key_time: float,
        at: float,
        why: str,
        key_fp: str = "",
        window: list[tuple[float, str, str]] | None = None,
        idle_resolves: bool = True,
    ) -> IncidentState:
        """Open an incident whose condition held at event time `at`; `key_time` is the
        event time of the first alert of its window."""
        state, clock = self.state, self.state.clock
        key, n = incident_key(lr.name, group_key, key_time, key_fp), 0
        while key in state.incidents:  # the same occurrence opened one before
            n += 1
            key = incident_key(lr.name, group_key, key_time, key_fp, n)
        times = [m.event_time for m in members]
        inc = IncidentState(
            key=key,
            rule=lr.name,
            group=group,
            group_key=group_key,
            opened_at=at,
            detected_at=self.ctx.now,
            opened_clock=clock,
            first_seen=min(times, default=at),
            last_seen=max(times, default=at),
            last_activity=clock,
            last_event_at=clock,
            why=why,
            window=window or [],
            arrivals=[clock] * len(members) if lr.resolve_condition is not None else [],
        )
        state.incidents[key] = inc
        open_key = lr.name + _SEP + group_key
        state.open_by_group[open_key] = key
        self.ctx.changes.opens.add(open_key)
        self.log(inc, at, "opened", why)
        for m in members:
            self._add_member(inc, m, at, log=False)
        timers = self.ctx.timers
        if lr.quiet is not None:
            timers.at(clock + lr.quiet, Timer.QUIET, key)
        if lr.resolve_condition is not None:
            self._check_hysteresis_at(key, clock + lr.resolve_timespan)
        self.announcer.opened(inc, lr)
        if inc.firing == 0 and idle_resolves:
            # Every alert that made the window has already resolved: the incident still
            # happened, so it is opened and resolved at once.
            self.resolve(inc, at, "all alerts resolved")
        return inc

    def _add_member(self, inc: IncidentState, tracked: Tracked, at: float, *, log: bool) -> None:
        fp = tracked.fingerprint
        firing = tracked.status == "firing"
        changes = self.ctx.changes
        changes.incidents.add(inc.key)
        if inc.key in tracked.incidents:
            # A member that resolved and fired again: same alert, firing once more.
            inc.firing += firing
            if log:
                self._log_alert(inc, at, "alert_refired", fp)
            return
        tracked.incidents = self._share((*tracked.incidents, inc.key))
        changes.tracked.add(fp)
        inc.alert_count += 1
        inc.firing += firing
        max_alerts = self.ctx.config.max_alerts_per_incident
        if len(inc.exemplars) < max_alerts:
            inc.exemplars.append(fp)
            if log:
                inc.added.append(fp)
        elif inc.alert_count == max_alerts + 1:
            self.log(
                inc,
                at,
                "storm",
                f"more than {max_alerts} alerts: listing the first "
                f"{max_alerts}, counting the rest in alert_count",
            )
        if log:
            self._log_alert(inc, at, "alert_added", fp)

    def _share(self, keys: tuple[str, ...]) -> tuple[str, ...]:
        shared = self._shared.get(keys)
        if shared is None:
            if len(self._shared) >= _SHARED_MAX:
                self._shared.clear()
            shared = self._shared[keys] = keys
        return shared

    def join(self, inc: IncidentState, tracked: Tracked, t: float) -> None:
        """A new alert of the incident's group (event time `t`) joins it."""
        self._add_member(inc, tracked, t, log=True)
        inc.first_seen = min(inc.first_seen, tracked.event_time)
        inc.last_seen = max(inc.last_seen, tracked.event_time)
        clock = inc.last_activity = self.state.clock
        lr = self.ctx.live[inc.rule]
        if lr.resolve_condition is not None:
            inc.arrivals.append(clock)
            if inc.key not in self._hysteresis_due:
                self._check_hysteresis_at(inc.key, clock + lr.resolve_timespan)
        self.touch(inc, "alerts_added")

    def saw_duplicate(self, tracked: Tracked) -> None:
        """A member was re-sent. Only what changes is written: `last_activity` matters
        to rules with `resolve.quiet`, the `duplicates` reason once per update; a store
        then rewrites a big incident once per update, not once per batch of re-sends
        (the Redis load test in bench/README.md)."""
        incidents, live, idle = self.state.incidents, self.ctx.live, self.ctx.idle_duplicates
        stale = False
        for key in tracked.incidents:
            if key in idle:
                continue
            inc = incidents.get(key)
            if inc is None or inc.status != "open":
                stale = True
                continue
            if live[inc.rule].quiet is not None:
                inc.last_activity = self.state.clock
                self.ctx.changes.incidents.add(key)
            elif "duplicates" in inc.dirty:
                idle.add(key)
                continue
            if "duplicates" not in inc.dirty:
                self.touch(inc, "duplicates")
        if stale:
            self._drop_closed(tracked)

    def _drop_closed(self, tracked: Tracked) -> None:
        """Members beyond the listed ones are not unlinked when their incident resolves
        (that would mean keeping every member's fingerprint); they unlink here."""
        incidents = self.state.incidents
        tracked.incidents = tuple(
            k
            for k in tracked.incidents
            if (i := incidents.get(k)) is not None and i.status == "open"
        )
        self.ctx.changes.tracked.add(tracked.fingerprint)

    def alert_resolved(self, tracked: Tracked, at: float) -> None:
        """A member resolved at event time `at`."""
        fp = tracked.fingerprint
        stale = False
        for key in tracked.incidents:
            inc = self.state.incidents.get(key)
            if inc is None or inc.status != "open":
                stale = True
                continue
            inc.firing -= 1
            self._log_alert(inc, at, "alert_resolved", fp)
            if fp in inc.exemplars:
                inc.resolved_fps.append(fp)
            if inc.firing <= 0:
                self.resolve(inc, max(at, inc.opened_at), "all alerts resolved")
            else:
                self.touch(inc, "alerts_resolved")
        if stale:
            self._drop_closed(tracked)

    def resolve(self, inc: IncidentState, at: float, why: str) -> None:
        if inc.status != "open":
            return
        changes = self.ctx.changes
        changes.incidents.add(inc.key)
        self.ctx.idle_duplicates.discard(inc.key)
        inc.status = "resolved"
        inc.resolved_at = at
        self.log(inc, at, "resolved", why)
        open_key = inc.rule + _SEP + inc.group_key
        if self.state.open_by_group.get(open_key) == inc.key:
            del self.state.open_by_group[open_key]
            changes.opens.add(open_key)
        for fp in inc.exemplars:
            tracked = self.state.tracked.get(fp)
            if tracked is not None and inc.key in tracked.incidents:
                tracked.incidents = tuple(k for k in tracked.incidents if k != inc.key)
                changes.tracked.add(fp)
        self.closed.append((self.state.clock, inc.key))
        self.announcer.resolved(inc, self.ctx.live[inc.rule])
        self._flush_due.pop(inc.key, None)
        self._hysteresis_due.pop(inc.key, None)

    def acknowledge(self, inc: IncidentState, by: str, at: float) -> bool:
        if inc.status != "open" or inc.acknowledged_at is not None:
            return False
        inc.acknowledged_at = at
        inc.acknowledged_by = by
        self.log(inc, at, "acknowledged", by)
        self.touch(inc, "acknowledged")
        # A person acted: the sinks hear it now, not at the next spaced update.
        self.announcer.flush(inc, self.ctx.live[inc.rule], at)
        return True

    # -- timers ---------------------------------------------------------------------------

    def on_timer(self, kind: Timer, key: str, due: float) -> None:
        inc = self.state.incidents.get(key)
        if inc is None or inc.status != "open":
            if kind is Timer.FLUSH:
                self._flush_due.pop(key, None)
            return
        lr = self.ctx.live[inc.rule]
        if kind is Timer.FLUSH:
            if self._flush_due.get(key) != due:
                return  # superseded by an earlier entry
            del self._flush_due[key]
            if not inc.dirty:
                return
            later = self.flush_due(inc)
            if later > due:
                self.schedule_flush(inc)
                return
            self.announcer.flush(inc, lr, due)
        elif kind is Timer.QUIET:
            assert lr.quiet is not None
            due_now = inc.last_activity + lr.quiet
            if due_now > due:
                self.ctx.timers.at(due_now, Timer.QUIET, key)
            elif due_now == due:
                self.resolve(inc, due, f"quiet for {format_duration(lr.quiet)}")
        elif kind is Timer.HYSTERESIS:
            if self._hysteresis_due.get(key) == due:
                del self._hysteresis_due[key]
                self._hysteresis(inc, lr, due)
        elif kind is Timer.REPEAT:
            repeat = lr.repeat_interval
            if repeat is not None and inc.announced and inc.last_event_at + repeat == due:
                self.touch(inc, "repeat_interval")

    def _hysteresis(self, inc: IncidentState, lr: LiveRule, due: float) -> None:
        """Resolve when few enough alerts fed the incident within `resolve.timespan`;
        the count only falls when an arrival leaves that span, so that is when to look."""
        span, cond = lr.resolve_timespan, lr.resolve_condition
        assert cond is not None
        gone = _bisect_right(inc.arrivals, due - span)
        if gone:
            del inc.arrivals[:gone]
            self.ctx.changes.incidents.add(inc.key)
        if due >= inc.opened_clock + span and cond.holds(len(inc.arrivals)):
            self.resolve(
                inc, due, f"{len(inc.arrivals)} matching alerts in the last {format_duration(span)}"
            )
            return
        nxt = max(inc.opened_clock + span, inc.arrivals[0] + span if inc.arrivals else due)
        if nxt > due:
            self._check_hysteresis_at(inc.key, nxt)

    def _check_hysteresis_at(self, key: str, due: float) -> None:
        self._hysteresis_due[key] = due
        self.ctx.timers.at(due, Timer.HYSTERESIS, key)

    def schedule_from_state(self) -> None:
        """Queue every open incident's timers from the state (restore, reload)."""
        self._flush_due.clear()
        self._hysteresis_due.clear()
        timers = self.ctx.timers
        self.closed = deque(
            sorted(
                (inc.resolved_at or inc.opened_clock, key)
                for key, inc in self.state.incidents.items()
                if inc.status != "open"
            )
        )
        for key, inc in self.state.incidents.items():
            if inc.status != "open":
                continue
            lr = self.ctx.live.get(inc.rule)
            if lr is None:
                continue
            if inc.dirty:
                self.schedule_flush(inc)
            if lr.quiet is not None:
                timers.at(inc.last_activity + lr.quiet, Timer.QUIET, key)
            if lr.resolve_condition is not None:
                first = inc.arrivals[0] + lr.resolve_timespan if inc.arrivals else 0.0
                self._check_hysteresis_at(key, max(inc.opened_clock + lr.resolve_timespan, first))
            if lr.repeat_interval is not None and inc.announced:
                timers.at(inc.last_event_at + lr.repeat_interval, Timer.REPEAT, key)
