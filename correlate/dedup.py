"""The fingerprint table: which alerts are firing, and which arrivals are re-sends.

Prometheus re-sends every firing alert each evaluation interval; only the first arrival
of a firing alert (or its return after it resolved) feeds the rules. A re-send is a
heartbeat at its arrival: it moves `last_seen` and `ends_at` and counts as a duplicate;
as in Alertmanager's merge, the alert keeps its earliest `startsAt`. An alert resolves
when a resolved record arrives (recorded as resolved at its `endsAt`, clamped between
its start and that arrival), or when its `ends_at` (its `endsAt`, or arrival +
`resolve_timeout`) passes without a re-send: an EXPIRE timer, fired at that due time.
"""

from __future__ import annotations

from collections import deque
from enum import IntEnum
from sys import intern

import msgspec

from correlate.context import Context
from correlate.state import Tracked
from stormwatch.wire import Alert

__all__ = ["Admission", "DedupTable"]


class Admission(IntEnum):
    NEW = 0
    """Firing, and not firing before: feeds the rules."""
    DUPLICATE = 1
    """Firing, and already firing: a re-send."""
    RESOLVED = 2
    """Was firing, arrived resolved."""
    STALE = 3
    """Arrived resolved, but was not firing: nothing to do."""


def _compact(alert: Alert) -> Alert:
    """The copy of a new alert the table keeps: label names and values, annotations and
    the generator URL interned, so the thousands of alerts of one service, cluster or
    rule share one string for each (a live alert costs about 1 KiB; bench/README.md)."""
    labels = {intern(k): intern(v) for k, v in alert.labels.items()}
    annotations = (
        {intern(k): intern(v) for k, v in alert.annotations.items()} if alert.annotations else {}
    )
    return msgspec.structs.replace(
        alert, labels=labels, annotations=annotations, generator_url=intern(alert.generator_url)
    )


def _shed(t: Tracked) -> None:
    """A resolved alert no incident lists no longer needs its raw payload (evidence
    for explain is kept for the alerts incidents list)."""
    if t.alert.raw is not None and not t.incidents:
        t.alert = msgspec.structs.replace(t.alert, raw=None)


class DedupTable:
    """Admits records against `State.tracked` at their arrival (the engine's clock)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.tracked = ctx.state.tracked
        self.resolve_timeout = float(ctx.config.resolve_timeout)
        self._deadline_of, self._deadline = float("nan"), 0.0
        """The last arrival `deadline` was asked for, and its answer."""
        self._gone: deque[tuple[float, str]] = deque()
        """(arrival clock it resolved at, fingerprint), in clock order: what `forget`
        looks at, oldest first, so forgetting costs O(1) per alert, not a scan."""

    def schedule_from_state(self) -> None:
        timers = self.ctx.timers
        gone = []
        for fp, t in self.tracked.items():
            if t.status == "firing":
                timers.expire_at(t.ends_at, fp)
            else:
                gone.append((t.last_seen, fp))
        self._gone = deque(sorted(gone))

    def admit(self, alert: Alert, a: float) -> tuple[Admission, Tracked | None]:
        fp = alert.fingerprint
        t = self.tracked.get(fp)
        if alert.status == "resolved":
            if t is None or t.status != "firing":
                return Admission.STALE, t
            end = alert.ends_at if alert.ends_at is not None else a
            t.status = "resolved"
            t.last_seen = a
            t.resolved_at = t.ends_at = min(max(end, t.event_time), a)
            _shed(t)
            self._gone.append((a, fp))
            if alert.annotations != t.alert.annotations:
                t.alert = msgspec.structs.replace(t.alert, annotations=alert.annotations)
            self.ctx.changes.tracked.add(fp)
            return Admission.RESOLVED, t
        ends_at = alert.ends_at if alert.ends_at is not None else self.deadline(a)
        if t is not None and t.status == "firing":
            t.last_seen = a
            t.duplicates += 1
            old = t.alert
            if alert.annotations != old.annotations or alert.starts_at < old.starts_at:
                t.alert = self.merged(old, alert)
            if ends_at < t.ends_at:
                self.ctx.timers.expire_at(ends_at, fp)
            # A later deadline needs no push: the queued entry re-queues itself when it
            # comes up (saves a heappush per re-send).
            t.ends_at = ends_at
            self.ctx.changes.tracked.add(fp)
            return Admission.DUPLICATE, t
        event_time = alert.starts_at if alert.starts_at < a else a
        alert = _compact(alert)
        if t is None:
            t = Tracked(
                alert=alert,
                status="firing",
                event_time=event_time,
                first_seen=a,
                last_seen=a,
                ends_at=ends_at,
            )
            self.tracked[fp] = t
        else:
            # Back from resolved: a new occurrence of the same alert.
            t.alert = alert
            t.status = "firing"
            t.event_time = event_time
            t.first_seen = t.last_seen = a
            t.ends_at = ends_at
            t.resolved_at = None
            t.duplicates = 0
            t.muted = ""
        self.ctx.timers.expire_at(ends_at, fp)
        self.ctx.changes.tracked.add(fp)
        return Admission.NEW, t

    def deadline(self, a: float) -> float:
        """When an alert last seen at arrival `a` without `endsAt` resolves. The alerts of
        one request share an arrival, so they share one float for it (24 bytes a live
        alert otherwise)."""
        if a != self._deadline_of:
            self._deadline_of, self._deadline = a, a + self.resolve_timeout
        return self._deadline

    @staticmethod
    def merged(old: Alert, resent: Alert) -> Alert:
        """The alert a re-send leaves: the first copy's label dict (shared by every
        re-send), the newest annotations, the earliest start (Alertmanager's merge)."""
        return msgspec.structs.replace(
            old, annotations=resent.annotations, starts_at=min(old.starts_at, resent.starts_at)
        )

    def expire(self, fp: str, due: float) -> Tracked | None:
        """An EXPIRE entry came up: resolve the alert if its deadline really is `due`."""
        t = self.tracked.get(fp)
        if t is None or t.status != "firing":
            return None
        if t.ends_at > due:
            self.ctx.timers.expire_at(t.ends_at, fp)  # a re-send moved it on
            return None
        if t.ends_at < due:
            return None  # an earlier entry for the same alert handled it
        t.status = "resolved"
        t.resolved_at = max(due, t.event_time)
        _shed(t)
        self.ctx.changes.tracked.add(fp)
        self._gone.append((self.ctx.state.clock, fp))
        return t

    def forget(self, clock: float, horizon: float) -> int:
        """Drop resolved alerts older than `retention` that no open incident holds and no
        window can still list (their event time is before `horizon`, the earliest event
        time a window that can still open may hold).

        Bounded memory: without this, every alert ever seen stays in the table. The
        conditions make forgetting invisible in the incident events, so when it runs
        cannot matter."""
        cutoff = clock - self.ctx.config.retention
        incidents, tracked, gone = self.ctx.state.incidents, self.tracked, self._gone
        dropped, kept = 0, []
        while gone and gone[0][0] < cutoff:
            _, fp = gone.popleft()
            t = tracked.get(fp)
            if t is None or t.status != "resolved":
                continue  # forgotten already, or firing again (its next resolve queues it)
            held = any(
                (i := incidents.get(k)) is not None and i.status == "open" for k in t.incidents
            )
            if held or t.fed_at >= horizon:
                kept.append((clock, fp))  # look again a retention later
                continue
            del tracked[fp]
            self.ctx.changes.tracked.add(fp)
            dropped += 1
        gone.extend(kept)
        return dropped
