"""`Announcer`: turns incident changes into `IncidentEvent`s, and applies inhibition.

`opened` and `resolved` carry the full incident; `updated` a compact one and its
`changes`. Every event stores the classification it carried on the incident (what
inhibition compares and what the next update reports changes against), bumps the
incident's `sequence`, and is stamped with two times: `at`, the event time of the change,
and `processed_at`, the processing time of the call that emitted it.

Inhibition: an incident whose severity and labels an open, announced incident of a
source severity inhibits is held back (`announced = False`, a timeline entry); it is
announced (`opened`, reason "no longer inhibited") as soon as nothing holds it back,
whether its inhibitor resolved or de-escalated, or it escalated itself.
"""

from __future__ import annotations

from typing import Final

from correlate.context import Context
from correlate.reasons import resolve_reason
from correlate.rulebook import LiveRule
from correlate.state import IncidentState, Tracked
from correlate.suppress import InhibitIndex
from correlate.timers import Timer
from correlate.views import (
    alert_view,
    common_labels,
    compact_view,
    full_view,
    listed,
    narrowed_common,
    refresh,
)
from stormwatch.wire import IncidentChanges, IncidentEvent, IncidentEventKind

__all__ = ["Announcer"]

_SUMMARY_ONLY: Final = frozenset(("duplicates", "repeat_interval", "acknowledged"))
"""Reasons that change no alert and no count: the stored classification still holds."""
_COMMONS_MAX: Final = 10_000


class Announcer:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.events: list[IncidentEvent] = []
        """The current call's events, in the order they happened."""
        self._index_of = InhibitIndex(ctx.config.inhibit)
        """Open, announced incidents that could inhibit others, and those held back."""
        self._commons: dict[str, tuple[list[Tracked], dict[str, str]]] = {}
        """Incident key -> (its listed alerts at its last classification, the labels they
        share): derived, not stored; an update that only lists more alerts narrows it
        (`narrowed_common`). Dropped whole when full, and per incident when it resolves."""

    def rebuild(self) -> None:
        """Derive the indexes from the state (construction, restore)."""
        self._index_of.clear()
        for inc in self.ctx.state.incidents.values():
            self._index(inc)
            if inc.status == "open" and not inc.announced:
                self._index_of.hold(inc.key, inc.severity, inc.labels)

    # -- what the incident book reports ---------------------------------------------------

    def _common(self, inc: IncidentState, members: list[Tracked]) -> dict[str, str]:
        """The labels `members` (the incident's listed alerts) share."""
        known = self._commons.get(inc.key)
        common = narrowed_common(known[0], known[1], members) if known is not None else None
        if common is None:
            common = common_labels(members)
        if len(self._commons) >= _COMMONS_MAX:
            self._commons.clear()
        self._commons[inc.key] = (members, common)
        return common

    def opened(self, inc: IncidentState, lr: LiveRule) -> None:
        members = listed(self.ctx.state, inc)
        refresh(self.ctx.state, inc, lr, members, self._common(inc, members))
        by = self._inhibited(inc)
        if by is not None:
            self._hold(inc, by, inc.opened_at)
            return
        self._emit(inc, lr, "opened", "opened", inc.opened_at)

    def resolved(self, inc: IncidentState, lr: LiveRule) -> None:
        self._index_of.release(inc.key)
        self._commons.pop(inc.key, None)
        if inc.announced:
            refresh(self.ctx.state, inc, lr)
            at = inc.resolved_at if inc.resolved_at is not None else self.ctx.state.clock
            self._emit(inc, lr, "resolved", resolve_reason(inc), at)
        where = self._index_of.drop_inhibitor(inc.key)
        if where:
            self._release(where, inc.resolved_at or self.ctx.state.clock)

    def flush(self, inc: IncidentState, lr: LiveRule, due: float) -> None:
        """The incident's spaced `updated` event is due."""
        if inc.announced:
            self._emit(inc, lr, "updated", ",".join(inc.dirty), due)
            return
        refresh(self.ctx.state, inc, lr)
        inc.dirty.clear()
        self.ctx.idle_duplicates.discard(inc.key)
        by = self._inhibited(inc)
        if by is None:
            self._announce_held(inc, lr, due)
        else:
            self._hold(inc, by, due)  # its labels may have changed: indexed afresh

    # -- events ---------------------------------------------------------------------------

    def _emit(
        self, inc: IncidentState, lr: LiveRule, kind: IncidentEventKind, reason: str, at: float
    ) -> None:
        state = self.ctx.state
        members = listed(state, inc)
        duplicates = sum(t.duplicates for t in members)
        changes = None
        reclassified = kind != "updated" or not _SUMMARY_ONLY.issuperset(inc.dirty)
        if kind == "updated":
            severity, priority = inc.severity, inc.priority
            if reclassified:
                # the listing walked once, not twice; its shared labels narrowed if it grew
                refresh(state, inc, lr, members, self._common(inc, members))
            tracked = state.tracked
            changes = IncidentChanges(
                alerts_added=[alert_view(tracked[fp]) for fp in inc.added if fp in tracked],
                alerts_resolved=list(inc.resolved_fps),
                duplicates=max(duplicates - inc.duplicates_sent, 0),
                previous_severity=severity if severity != inc.severity else None,  # type: ignore[arg-type]
                previous_priority=priority if priority != inc.priority else None,
            )
            view = compact_view(inc, lr)
        else:
            view = full_view(state, inc, lr, stored=True, members=members)
        inc.sequence += 1
        inc.last_event_at = state.clock
        inc.duplicates_sent = duplicates
        inc.dirty.clear()
        self.ctx.idle_duplicates.discard(inc.key)
        inc.added.clear()
        inc.resolved_fps.clear()
        self.ctx.changes.incidents.add(inc.key)
        self.events.append(
            IncidentEvent(
                event=kind,
                at=at,
                reason=reason,
                sequence=inc.sequence,
                incident=view,
                processed_at=self.ctx.now,
                changes=changes,
            )
        )
        if reclassified:  # else its severity and labels, what inhibition indexes, stand
            index = self._index_of
            was = index.drop_inhibitor(inc.key)
            self._index(inc)
            if was and not index.is_inhibitor(inc.key):
                self._release(was, at)  # it de-escalated
        if lr.repeat_interval is not None and inc.status == "open":
            self.ctx.timers.at(state.clock + lr.repeat_interval, Timer.REPEAT, inc.key)

    # -- inhibition -----------------------------------------------------------------------

    def _index(self, inc: IncidentState) -> None:
        index = self._index_of
        if inc.status == "open" and inc.announced and inc.severity in index.sources:
            index.set_inhibitor(inc.key, inc.severity, inc.labels)
        else:
            index.drop_inhibitor(inc.key)

    def _inhibited(self, inc: IncidentState) -> str | None:
        return self._index_of.inhibitor_of(inc.key, inc.severity, inc.labels)

    def _hold(self, inc: IncidentState, by: str, at: float) -> None:
        self.ctx.changes.incidents.add(inc.key)
        inc.announced = False
        self._index_of.hold(inc.key, inc.severity, inc.labels)
        if inc.inhibited_by != by:
            inc.inhibited_by = by
            self.ctx.book.log(inc, at, "inhibited", f"held back while {by} is open")

    def _announce_held(self, inc: IncidentState, lr: LiveRule, at: float) -> None:
        self._index_of.release(inc.key)
        inc.announced = True
        inc.inhibited_by = ""
        self._emit(inc, lr, "opened", "no longer inhibited", at)

    def _release(self, where: list[tuple[int, tuple[str, ...]]], at: float) -> None:
        """Announce what an inhibitor that went away held back, if nothing else holds it
        back now; only the incidents that shared its values are looked at."""
        incidents = self.ctx.state.incidents
        for key in self._index_of.held_at(where):
            inc = incidents.get(key)
            if inc is None or inc.status != "open":
                self._index_of.release(key)
                continue
            if self._inhibited(inc) is None:
                self._announce_held(inc, self.ctx.live[inc.rule], at)
