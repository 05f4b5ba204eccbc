"""The fingerprint table: which alerts are firing, and which arrivals are re-sends.

Prometheus re-sends every firing alert each evaluation interval; only the first arrival
of a firing alert (or its return after it resolved) feeds the rules. A re-send updates
`last_seen`, `ends_at` and the duplicate count. An alert resolves when it arrives
resolved, or when its `ends_at` passes without a re-send (Alertmanager's semantics; a
missing `endsAt` means now + `resolve_timeout`).
"""

from __future__ import annotations

import heapq
from enum import IntEnum

from correlate.delta import Changes
from correlate.state import State, Tracked
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


class DedupTable:
    """Admits alerts against `State.tracked`; keeps a heap of `ends_at` deadlines."""

    def __init__(
        self, state: State, resolve_timeout: float, retention: float, changes: Changes | None = None
    ) -> None:
        self.state = state
        self.changes = changes if changes is not None else Changes()
        self.tracked = state.tracked
        self.resolve_timeout = resolve_timeout
        self.retention = retention
        self._deadlines: list[tuple[float, str]] = []
        for fp, t in self.tracked.items():
            if t.status == "firing":
                self._deadlines.append((t.ends_at, fp))
        heapq.heapify(self._deadlines)

    def admit(self, alert: Alert, now: float) -> tuple[Admission, Tracked | None]:
        fp = alert.fingerprint
        t = self.tracked.get(fp)
        self.changes.tracked.add(fp)
        if alert.status == "resolved":
            if t is None or t.status != "firing":
                return Admission.STALE, t
            t.alert = alert
            t.status = "resolved"
            t.last_seen = now
            t.resolved_at = now
            t.ends_at = alert.ends_at if alert.ends_at is not None else now
            return Admission.RESOLVED, t
        ends_at = alert.ends_at if alert.ends_at is not None else now + self.resolve_timeout
        if t is not None and t.status == "firing":
            t.alert = alert
            t.last_seen = now
            t.duplicates += 1
            if ends_at < t.ends_at:
                heapq.heappush(self._deadlines, (ends_at, fp))
            # A later deadline needs no push: `expire` re-queues an entry whose deadline
            # moved on when its old one comes up (saves a heappush per re-send; see
            # bench/test_bench_core.py::test_process_50_rules_80pct_duplicates).
            t.ends_at = ends_at
            return Admission.DUPLICATE, t
        if t is None:
            t = Tracked(
                alert=alert, status="firing", first_seen=now, last_seen=now, ends_at=ends_at
            )
            self.tracked[fp] = t
        else:
            # Back from resolved: a new occurrence of the same alert.
            t.alert = alert
            t.status = "firing"
            t.last_seen = now
            t.ends_at = ends_at
            t.resolved_at = None
            t.duplicates = 0
        heapq.heappush(self._deadlines, (ends_at, fp))
        return Admission.NEW, t

    def expire(self, now: float) -> list[Tracked]:
        """Resolve the firing alerts whose `ends_at` has passed; return them."""
        out = []
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            ends_at, fp = heapq.heappop(heap)
            t = self.tracked.get(fp)
            if t is None or t.status != "firing":
                continue  # already resolved, or forgotten
            if t.ends_at > ends_at:
                heapq.heappush(heap, (t.ends_at, fp))  # a re-send moved it on
                continue
            if t.ends_at < ends_at:
                continue  # an earlier entry for the same alert handled it
            t.status = "resolved"
            t.resolved_at = now
            self.changes.tracked.add(fp)
            out.append(t)
        return out

    def forget(self, now: float) -> int:
        """Drop resolved alerts older than `retention` that no open incident holds.

        Bounded memory: without this, every alert ever seen stays in the table."""
        cutoff = now - self.retention
        incidents = self.state.incidents

        def held_open(t: Tracked) -> bool:
            return any(
                (i := incidents.get(k)) is not None and i.status == "open" for k in t.incidents
            )

        stale = [
            fp
            for fp, t in self.tracked.items()
            if t.status == "resolved" and (t.resolved_at or 0) < cutoff and not held_open(t)
        ]
        for fp in stale:
            del self.tracked[fp]
            self.changes.tracked.add(fp)
        return len(stale)
