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

import sys
from collections import deque
from enum import IntEnum
from typing import Final

from correlate.context import Context
from correlate.state import Kind, Notes, Stamp, Tracked
from stormwatch.wire import Alert

__all__ = ["Admission", "DedupTable"]

_intern: Final = sys.intern
"""Compiled (setup.py), a function imported by name is looked up in the module's
globals at every call; a Final name is a C static."""


class Admission(IntEnum):
    NEW = 0
    """Firing, and not firing before: feeds the rules."""
    DUPLICATE = 1
    """Firing, and already firing: a re-send."""
    RESOLVED = 2
    """Was firing, arrived resolved."""
    STALE = 3
    """Arrived resolved, but was not firing: nothing to do."""


_KINDS_MAX: Final = 10_000
"""Distinct `Kind`s kept for sharing; dropped whole when full (only sharing is lost)."""
_NOTES_MAX: Final = 10_000
"""Annotation values kept for sharing, likewise. Not `sys.intern`: most annotation
values are unique to their alert (a summary naming its instance), and the interpreter's
table of interned strings would hold an entry for each (about 30 bytes a live alert)."""


def notes_equal(annotations: dict[str, str], kind: Kind, notes: Notes) -> bool:
    """Whether a record's annotations are those the alert keeps (`kind`, `notes`):
    a length and one C call (`Engine.process` inlines it for re-sends)."""
    try:
        return len(annotations) == kind.n_notes and kind.read_notes(annotations) == notes
    except KeyError:
        return False  # a name it had is gone (another took its place)


def _shed(t: Tracked) -> None:
    """A resolved alert no incident lists no longer needs its raw payload (evidence
    for explain is kept for the alerts incidents list)."""
    if t.raw is not None and not t.incidents:
        t.raw = None


class DedupTable:
    """Admits records against `State.tracked` at their arrival (the engine's clock)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.tracked = ctx.state.tracked
        self.resolve_timeout = float(ctx.config.resolve_timeout)
        # Stamps (correlate/state.py): the one float object each, shared by the alerts
        # that store it.
        self._deadline_of: Stamp = float("nan")
        self._deadline: Stamp = 0.0
        """The last arrival `deadline` was asked for, and its answer."""
        self._gone: deque[tuple[float, str]] = deque()
        """(arrival clock it resolved at, fingerprint), in clock order: what `forget`
        looks at, oldest first, so forgetting costs O(1) per alert, not a scan."""
        self._kinds: dict[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], Kind] = {}
        self._notes: dict[str, str] = {}
        self._start: Stamp = float("nan")
        self._end: Stamp = float("nan")
        """The last `startsAt` and `endsAt` kept: the alerts of one request mostly share
        them, and so share one float (24 bytes a live alert each otherwise)."""

    def schedule_from_state(self) -> None:
        timers = self.ctx.timers
        gone = []
        for fp, t in self.tracked.items():
            # A decoded state holds its own copy of every string of every alert: share
            # them as taking the alert in would have (the key is the fingerprint too).
            t.fingerprint = fp
            t.kind = self.kind(t.kind)
            t.values = tuple(map(_intern, t.values))
            t.notes = self.notes_of(t.annotations)
            if t.status == "firing":
                timers.expire_at(t.ends_at, fp)
            else:
                gone.append((t.last_seen, fp))
        self._gone = deque(sorted(gone))

    def kind(self, kind: Kind) -> Kind:
        """The shared `Kind` equal to `kind`."""
        return self._kind((kind.source, kind.severity, kind.generator_url, kind.labels, kind.notes))

    def _kind(self, key: tuple[str, str, str, tuple[str, ...], tuple[str, ...]]) -> Kind:
        # Keyed by a plain tuple: building and hashing one costs less than a Struct.
        shared = self._kinds.get(key)
        if shared is None:
            if len(self._kinds) >= _KINDS_MAX:
                self._kinds.clear()
            source, severity, url, labels, notes = key
            shared = self._kinds[key] = Kind(
                source=_intern(source),
                severity=_intern(severity),
                generator_url=_intern(url),
                labels=tuple(map(_intern, labels)),
                notes=tuple(map(_intern, notes)),
            )
        return shared

    def notes_of(self, annotations: dict[str, str]) -> Notes:
        """A record's annotation values (`Notes`), each shared with equal values kept
        before."""
        n = len(annotations)
        if n == 0:
            return ()
        shared = self._notes
        if len(shared) >= _NOTES_MAX:
            shared.clear()
        if n == 1:
            (v,) = annotations.values()
            return shared.setdefault(v, v)
        return tuple([shared.setdefault(v, v) for v in annotations.values()])

    def take_notes(self, t: Tracked, alert: Alert) -> None:
        """The record's annotations replace those the alert kept (the newest win); the
        rest of its kind stays the first copy's."""
        ann, k = alert.annotations, t.kind
        names = tuple(ann)
        if names != k.notes:
            t.kind = self._kind((k.source, k.severity, k.generator_url, k.labels, names))
        t.notes = self.notes_of(ann)

    def admit(self, alert: Alert, a: Stamp) -> tuple[Admission, Tracked | None]:
        """`a`: the arrival clock, as the state holds it (a Stamp: stored as it is)."""
        fp = alert.fingerprint
        record: Stamp = alert  # its times read as the objects it holds (see Stamp)
        t = self.tracked.get(fp)
        if alert.status == "resolved":
            if t is None or t.status != "firing":
                return Admission.STALE, t
            end: Stamp = record.ends_at if record.ends_at is not None else a
            t.status = "resolved"
            t.last_seen = a
            held: Stamp = t
            t.resolved_at = t.ends_at = min(max(end, held.event_time), a)
            _shed(t)
            self._gone.append((a, fp))
            if not notes_equal(alert.annotations, t.kind, t.notes):
                self.take_notes(t, alert)
            self.ctx.changes.tracked.add(fp)
            return Admission.RESOLVED, t
        ends_at: Stamp = record.ends_at if record.ends_at is not None else self.deadline(a)
        if t is not None and t.status == "firing":
            t.last_seen = a
            t.duplicates += 1
            self.merge(t, alert)
            if ends_at < t.ends_at:
                self.ctx.timers.expire_at(ends_at, fp)
            # A later deadline needs no push: the queued entry re-queues itself when it
            # comes up (saves a heappush per re-send).
            t.ends_at = ends_at
            self.ctx.changes.tracked.add(fp)
            return Admission.DUPLICATE, t
        starts_at: Stamp = record.starts_at
        if starts_at == self._start:
            starts_at = self._start
        else:
            self._start = starts_at
        if ends_at == self._end:
            ends_at = self._end
        else:
            self._end = ends_at
        event_time = starts_at if starts_at < a else a
        # Interned: alerts of a fleet share most label values (service, cluster, ...),
        # and so one string each.
        labels = alert.labels
        kind = self._kind(
            (
                alert.source,
                alert.severity,
                alert.generator_url,
                tuple(labels),
                tuple(alert.annotations),
            )
        )
        values = tuple(map(_intern, labels.values()))
        notes = self.notes_of(alert.annotations)
        if t is None:
            t = Tracked(
                fingerprint=fp,
                kind=kind,
                values=values,
                notes=notes,
                starts_at=starts_at,
                raw=alert.raw,
                status="firing",
                event_time=event_time,
                first_seen=a,
                last_seen=a,
                ends_at=ends_at,
            )
            self.tracked[fp] = t
        else:
            # Back from resolved: a new occurrence of the same alert.
            t.kind, t.values, t.notes = kind, values, notes
            t.starts_at, t.raw = starts_at, alert.raw
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

    def deadline(self, a: Stamp) -> Stamp:
        """When an alert last seen at arrival `a` without `endsAt` resolves. The alerts of
        one request share an arrival, so they share one float for it (24 bytes a live
        alert otherwise)."""
        if a != self._deadline_of:
            self._deadline_of, self._deadline = a, a + self.resolve_timeout
        return self._deadline

    def merge(self, t: Tracked, resent: Alert) -> bool:
        """What a re-send leaves: the first copy's labels (shared by every re-send), the
        newest annotations, the earliest start (Alertmanager's merge). True when more
        than the heartbeat changed."""
        changed = False
        if not notes_equal(resent.annotations, t.kind, t.notes):
            self.take_notes(t, resent)
            changed = True
        if resent.starts_at < t.starts_at:
            t.starts_at = resent.starts_at
            changed = True
        return changed

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
