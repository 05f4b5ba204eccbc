"""`Engine`: the pure, synchronous correlation core.

`process(alerts, now)` and `tick(now)` are the only ways in; `Effects` is the only way
out. The engine reads no clock and does no I/O: the caller passes processing time in
(`now`), and windows run on each alert's own event time (`starts_at`), clamped to `now`
so a sender with a fast clock cannot drag the watermark into the future.

Per batch, in straight lines: expire alerts whose `ends_at` passed -> for each alert in
(event time, fingerprint) order: dedup -> silences -> match rules -> window -> open or
join an incident -> events for the incidents opened or resolved. Other changes are sent
as one `updated` event per incident from `tick`, at most every `update_interval`.
Sorting the batch first makes the result independent of the order inside one batch.

Semantics (README.md's rule reference says the same):
- the watermark is the highest event time seen; an alert more than `allowed_lateness`
  behind it is late: counted per rule in `Effects.counts.late_by_rule`, never merged
  into a window (it still joins an incident already open for its group);
- an alert feeds at most one incident per rule: the alerts that open an incident leave
  the window, and while it is open later alerts of its group join it;
- an incident resolves when all its alerts have resolved, after `resolve.quiet` without
  a matching alert, or when `resolve.condition` holds over `resolve.timespan`.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from correlate.dedup import Admission, DedupTable
from correlate.delta import Changes, StateDelta, build_delta
from correlate.incidents import IncidentBook
from correlate.reasons import resolve_reason, unique_members, why_opened
from correlate.rulebook import LiveRule, Rulebook
from correlate.state import IncidentState, State, Tracked, decode_state, encode_state
from correlate.suppress import InhibitRule, Silence, active_silence, inhibitor_of
from correlate.timers import (
    check_absence,
    check_resolve_timers,
    check_upper_bound,
    flush_group_waits,
)
from correlate.windows import count_hit, distinct_hit, evict_before, insert_event, ordered_hit
from rules import Matcher, RuleSet
from stormwatch.wire import (
    Alert,
    Duration,
    Incident,
    IncidentEvent,
    IncidentEventKind,
)

__all__ = ["Counts", "Effects", "Engine", "EngineConfig"]

_SEP = "\x1f"


class EngineConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """How the core treats time and memory; `correlate:` in the config file."""

    resolve_timeout: Duration = Duration(300)
    """A firing alert without `endsAt` resolves this long after its last arrival."""
    allowed_lateness: Duration = Duration(600)
    """How far behind the watermark an alert may arrive and still feed windows.
    Prometheus alerts arrive after their rule's `for:` with `startsAt` at its start,
    so this must exceed the longest `for:` in use."""
    max_alerts_per_incident: int = 100
    """Alerts listed on an incident; beyond it they are counted, not listed (storms)."""
    update_interval: Duration = Duration(10)
    """Least time between two `updated` events of one incident; opened and resolved
    are sent at once. Alertmanager's `group_interval` plays the same part."""
    duplicates_interval: Duration = Duration(60)
    """Least time between two `updated` events whose only change is re-sent alerts
    (their duplicate counts): Prometheus re-sends every alert each evaluation."""
    max_groups_per_rule: int = 50_000
    """Live windows one rule may keep; alerts of new groups beyond it are counted, not kept."""
    retention: Duration = Duration(900)
    """How long resolved alerts and incidents are remembered (re-sends, explain)."""
    inhibit: list[InhibitRule] = msgspec.field(default_factory=lambda: [InhibitRule()])
    """Inhibit rules; the default holds back P2-P4 incidents of a service while a P1
    incident of the same service is open. `inhibit: []` turns inhibition off."""


class Counts(msgspec.Struct, kw_only=True):
    """What one call did, for metrics and logs; the core itself never counts elsewhere."""

    received: int = 0
    new: int = 0
    duplicates: int = 0
    resolved: int = 0
    expired: int = 0
    stale: int = 0
    unmatched: int = 0
    silenced: int = 0
    late: int = 0
    duplicates_by_source: dict[str, int] = {}
    late_by_rule: dict[str, int] = {}
    capped_by_rule: dict[str, int] = {}
    """Alerts that found their rule at `max_groups_per_rule` live windows, with no room for
    a new group."""


class Effects(msgspec.Struct, kw_only=True):
    """Incident events in the order they happened, and the counts of the call."""

    events: list[IncidentEvent]
    counts: Counts


def _order(a: Alert) -> tuple[float, str, str]:
    return (a.starts_at, a.fingerprint, a.status)


class Engine:
    """The correlation core for one shard.

    Example:
        >>> engine = Engine(ruleset)
        >>> effects = engine.process(alerts, now=1_700_000_000.0)
        >>> [e.event for e in effects.events]
        ['opened']
    """

    def __init__(
        self, rules: RuleSet, config: EngineConfig | None = None, state: State | None = None
    ) -> None:
        self.config = config or EngineConfig()
        self.state = state if state is not None else State()
        self.changes = Changes()
        """What changed since the last `take_delta` (a store saves only that)."""
        self._dedup = DedupTable(
            self.state, self.config.resolve_timeout, self.config.retention, self.changes
        )
        self._retired: dict[str, LiveRule] = {}
        self._last_gc = self.state.watermark
        self._silences: list[tuple[Silence, list[Matcher]]] = [
            (s, s.compiled()) for s in self.state.silences
        ]
        self._source_severities = frozenset(
            sev for r in self.config.inhibit for sev in r.source_severity
        )
        self._inhibitors: dict[str, tuple[str, str, dict[str, str]]] = {}
        """Open, announced incidents that could inhibit others: an index, so an opened
        event checks the few P1s rather than every open incident."""
        self._held: dict[str, None] = {}
        """Open incidents whose `opened` event inhibition holds back."""
        for inc in self.state.incidents.values():
            self._index_inhibitor(inc)
            if inc.status == "open" and not inc.announced:
                self._held[inc.key] = None
        self._install(rules)

    # -- rules and silences --------------------------------------------------------------

    def _book_for_call(self) -> IncidentBook:
        return IncidentBook(
            self.state,
            self.config.max_alerts_per_incident,
            self.changes,
            self._book.quiet,
            self._book.hysteresis,
        )

    def _install(self, rules: RuleSet) -> None:
        book = Rulebook(rules, self.state.rules)
        for name, lr in getattr(self, "_book", book).live.items():
            if name not in book.live:
                self._retired[name] = lr
        self.state.rules = book.states
        self.changes.full = True  # rule states were swapped: the store rewrites everything
        self.rules = rules
        self._book = book
        self._live = book.live

    def reload(self, rules: RuleSet) -> None:
        """Swap in new rules. Windows of rules whose match and correlation did not change
        are kept; a changed rule starts with empty windows. Open incidents stay open and
        resolve as their alerts do."""
        self._install(rules)

    def add_silence(self, silence: Silence) -> None:
        """Add or replace (by id) a silence; raises MatcherError for a bad matcher."""
        self.changes.meta = True
        compiled = silence.compiled()
        self.expire_silence(silence.id)
        self.state.silences.append(silence)
        self._silences.append((silence, compiled))

    def expire_silence(self, silence_id: str) -> bool:
        self.changes.meta = True
        before = len(self.state.silences)
        self.state.silences = [s for s in self.state.silences if s.id != silence_id]
        self._silences = [(s, m) for s, m in self._silences if s.id != silence_id]
        return len(self.state.silences) != before

    # -- the hot path -------------------------------------------------------------------

    def process(self, alerts: Sequence[Alert], now: float) -> Effects:
        """Take one batch of alerts at processing time `now`."""
        book = self._book_for_call()
        counts = Counts(received=len(alerts))
        self._expire(book, counts, now)
        admit = self._dedup.admit
        candidates = self._book.matcher.candidates
        listeners = self._book.listeners
        live = self._live
        state = self.state
        silences = self._silences
        heartbeats = self._book.heartbeats
        for alert in sorted(alerts, key=_order):
            admission, tracked = admit(alert, now)
            if admission is Admission.DUPLICATE:
                counts.duplicates += 1
                src = alert.source
                counts.duplicates_by_source[src] = counts.duplicates_by_source.get(src, 0) + 1
                if tracked.incidents:  # type: ignore[union-attr]
                    book.saw_duplicate(tracked, now)  # type: ignore[arg-type]
                if heartbeats is not None:
                    for c in heartbeats.candidates(alert):
                        self._feed(live[c.name], c.name, alert, tracked, now, now, book, counts)  # type: ignore[arg-type]
                continue
            if admission is Admission.RESOLVED:
                counts.resolved += 1
                book.alert_resolved(tracked, now)  # type: ignore[arg-type]
                continue
            if admission is Admission.STALE:
                counts.stale += 1
                continue
            counts.new += 1
            if silences and active_silence(silences, alert.labels, now) is not None:
                counts.silenced += 1
                continue
            t = alert.starts_at if alert.starts_at < now else now
            if t > state.watermark:
                state.watermark = t
            matched = candidates(alert)
            if not matched:
                counts.unmatched += 1
                continue
            for c in matched:
                lr = live.get(c.name)
                if lr is not None and not lr.steps:  # temporal rules only hear their rules
                    self._feed(lr, c.name, alert, tracked, t, now, book, counts)  # type: ignore[arg-type]
                for temporal in listeners.get(c.name, ()):
                    self._feed(temporal, c.name, alert, tracked, t, now, book, counts)  # type: ignore[arg-type]
        return Effects(events=self._emit(book, now), counts=counts)

    def _feed(
        self,
        lr: LiveRule,
        via: str,
        alert: Alert,
        tracked: Tracked,
        t: float,
        now: float,
        book: IncidentBook,
        counts: Counts,
    ) -> None:
        labels = alert.labels
        values = [labels.get(name, "") for name in lr.group_labels(via)]
        gkey = _SEP.join(values)
        inc = book.open_for(lr.name, gkey)
        if lr.kind == "absence":
            lr.state.last_seen[gkey] = now
            self.changes.rules.add(lr.name)
            if inc is not None:
                book.resolve(inc, now, "a matching alert arrived again")
            return
        if inc is not None:
            book.join(inc, tracked, now)
            return
        horizon = self.state.watermark - self.config.allowed_lateness
        if t < horizon:
            counts.late += 1
            counts.late_by_rule[lr.name] = counts.late_by_rule.get(lr.name, 0) + 1
            return
        groups = lr.state.groups
        events = groups.get(gkey)
        if events is None:
            if len(groups) >= self.config.max_groups_per_rule:
                # Bounded memory: a group-by on an unbounded label must not grow forever.
                counts.capped_by_rule[lr.name] = counts.capped_by_rule.get(lr.name, 0) + 1
                return
            events = groups[gkey] = []
        elif lr.kind != "group":
            evict_before(events, horizon - lr.timespan)
        if lr.kind == "value":
            value = _SEP.join(labels.get(f, "") for f in lr.field)
        elif lr.kind in ("temporal", "ordered"):
            value = via
        else:
            value = ""
        in_order = insert_event(events, (t, alert.fingerprint, value))
        self.changes.groups.add((lr.name, gkey))
        if lr.kind == "group":
            lr.state.pending.setdefault(gkey, now)
            self.changes.rules.add(lr.name)
            return
        picked = self._hit(lr, events, t, in_order)
        if picked is None:
            return
        window = [events[i] for i in picked]
        for i in sorted(picked, reverse=True):
            del events[i]
        if not events:
            del groups[gkey]
        tracked_by_fp = self.state.tracked
        members = [tracked_by_fp[e[1]] for e in window if e[1] in tracked_by_fp]
        group = dict(zip(lr.group_by, values, strict=True))
        book.open(
            lr.name,
            group,
            gkey,
            unique_members(members),
            opened_by=t,
            now=now,
            why=why_opened(lr, len(window), group, window),
            window=window,
        )

    @staticmethod
    def _hit(
        lr: LiveRule, events: list[tuple[float, str, str]], t: float, in_order: bool
    ) -> list[int] | None:
        if lr.kind == "count":
            if not lr.fires:
                return None
            hit = count_hit(events, t, lr.timespan, lr.condition, in_order)  # type: ignore[arg-type]
        elif lr.kind == "ordered":
            return ordered_hit(events, t, lr.timespan, lr.steps)
        else:
            hit = distinct_hit(events, t, lr.timespan, lr.holds, in_order)
        return list(range(*hit)) if hit is not None else None

    # -- timers -------------------------------------------------------------------------

    def tick(self, now: float) -> Effects:
        """Advance timers to `now`: alert expiry, group waits, absences, quiet periods,
        hysteresis, repeat intervals, spaced updates; and forget old state."""
        book = self._book_for_call()
        counts = Counts()
        self._expire(book, counts, now)
        for lr in self._live.values():
            if lr.kind == "group":
                flush_group_waits(lr, book, self.state, now)
            elif lr.kind == "absence":
                check_absence(lr, book, now)
            elif lr.kind == "count" and not lr.fires:
                check_upper_bound(lr, book, self.state.watermark, now)
        if self._book.timed:
            timed = self._book.timed
            for inc in list(self.state.incidents.values()):
                if inc.status == "open" and inc.rule in timed:
                    check_resolve_timers(inc, self._live[inc.rule], book, self.state, now)
        if now - self._last_gc >= 60:
            self._gc(now)
        events = self._emit(book, now)
        events.extend(self._flush_updates(now))
        return Effects(events=events, counts=counts)

    def _expire(self, book: IncidentBook, counts: Counts, now: float) -> None:
        for tracked in self._dedup.expire(now):
            counts.expired += 1
            book.alert_resolved(tracked, now)

    def _gc(self, now: float) -> None:
        self._last_gc = now
        self._dedup.forget(now)
        cutoff = now - self.config.retention
        incidents = self.state.incidents
        for key in [
            k
            for k, i in incidents.items()
            if i.status == "resolved" and (i.resolved_at or 0) < cutoff
        ]:
            del incidents[key]
            self.changes.incidents.add(key)
        live_silences = [s for s in self.state.silences if s.ends_at > now]
        if len(live_silences) != len(self.state.silences):
            self.state.silences = live_silences
            self.changes.meta = True
        self._silences = [(s, m) for s, m in self._silences if s.ends_at > now]
        horizon = self.state.watermark - self.config.allowed_lateness
        for lr in self._live.values():
            if lr.kind == "group":
                continue
            groups = lr.state.groups
            for gkey in list(groups):
                events = groups[gkey]
                if evict_before(events, horizon - lr.timespan):
                    self.changes.groups.add((lr.name, gkey))
                if not events:
                    del groups[gkey]

    # -- output -------------------------------------------------------------------------

    def _rule_for(self, name: str) -> LiveRule:
        return self._live.get(name) or self._retired[name]

    def _view(self, inc: IncidentState) -> Incident:
        lr = self._rule_for(inc.rule)
        return self._book_for_call().view(inc, lr.rule, lr.classifier)

    def _index_inhibitor(self, inc: IncidentState) -> None:
        if inc.status == "open" and inc.announced and inc.severity in self._source_severities:
            self._inhibitors[inc.key] = (inc.key, inc.severity, inc.labels)
        else:
            self._inhibitors.pop(inc.key, None)

    def _inhibited(self, inc: IncidentState) -> str | None:
        """Who holds this incident back; uses the severity and labels its last view set."""
        if not any(inc.severity in r.target_severity for r in self.config.inhibit):
            return None
        return inhibitor_of(
            self.config.inhibit, inc.severity, inc.labels, self._inhibitors.values(), inc.key
        )

    def _emit(self, book: IncidentBook, now: float) -> list[IncidentEvent]:
        """Events for the incidents opened or resolved in this call, in that order."""
        out: list[IncidentEvent] = []
        for key, kinds in book.touched.items():
            inc = self.state.incidents[key]
            view = self._view(inc)
            if "opened" in kinds:
                self.state.dirty.pop(key, None)  # the opened view already holds them
                opened = view
                if "resolved" in kinds:
                    opened = msgspec.structs.replace(view, status="open", resolved_at=None)
                by = self._inhibited(inc)
                if by is not None:
                    self._hold(inc, by, now)
                else:
                    out.append(self._event(inc, "opened", "opened", opened, now))
            if "resolved" in kinds and inc.announced:
                out.append(self._event(inc, "resolved", resolve_reason(inc), view, now))
        return out

    def _hold(self, inc: IncidentState, by: str, now: float) -> None:
        self.changes.incidents.add(inc.key)
        inc.announced = False
        self._held[inc.key] = None
        if inc.inhibited_by != by:
            inc.inhibited_by = by
            book = self._book_for_call()
            book._log(inc, now, "inhibited", f"held back while {by} is open")

    def _flush_updates(self, now: float) -> list[IncidentEvent]:
        out: list[IncidentEvent] = []
        incidents = self.state.incidents
        for key in list(self._held):
            # Announce what inhibition held back, once its inhibitor is gone.
            inc = incidents.get(key)
            if inc is None or inc.status != "open":
                del self._held[key]
                continue
            if not inc.announced:
                by = self._inhibited(inc)
                if by is None:
                    inc.announced = True
                    inc.inhibited_by = ""
                    del self._held[key]
                    self.state.dirty.pop(inc.key, None)
                    out.append(
                        self._event(inc, "opened", "no longer inhibited", self._view(inc), now)
                    )
                elif by != inc.inhibited_by:
                    self._hold(inc, by, now)
        dirty = self.state.dirty
        for key in list(dirty):
            inc = incidents.get(key)
            if inc is None or inc.status != "open" or not inc.announced:
                del dirty[key]
                self.changes.incidents.add(key)
                continue
            lr = self._rule_for(inc.rule)
            interval = (
                lr.group.group_interval if lr.group is not None else self.config.update_interval
            )
            if dirty[key] == ["duplicates"]:
                interval = max(interval, self.config.duplicates_interval)
            if now - inc.last_event_at < interval:
                continue
            reasons = dirty.pop(key)
            out.append(self._event(inc, "updated", ",".join(reasons), self._view(inc), now))
        return out

    def acknowledge(self, key: str, by: str, at: float) -> list[IncidentEvent]:
        """Someone took an open incident on (in stormwatch, or at a sink): one `updated`
        event with reason `acknowledged`; [] if the incident is unknown, resolved or
        already acknowledged, and for one inhibition holds back (acknowledged, but no
        sink has it yet)."""
        inc = self.state.incidents.get(key)
        if inc is None or inc.status != "open" or inc.acknowledged_at is not None:
            return []
        inc.acknowledged_at, inc.acknowledged_by = at, by
        self._book_for_call()._log(inc, at, "acknowledged", by)  # marks it for the store
        if not inc.announced:
            return []
        return [self._event(inc, "updated", "acknowledged", self._view(inc), at)]

    def _event(
        self, inc: IncidentState, kind: IncidentEventKind, reason: str, view: Incident, now: float
    ) -> IncidentEvent:
        inc.sequence += 1
        self.changes.incidents.add(inc.key)
        inc.last_event_at = now
        self._index_inhibitor(inc)  # `view` refreshed inc.severity and inc.labels
        return IncidentEvent(
            event=kind, at=now, reason=reason, sequence=inc.sequence, incident=view
        )

    # -- queries and persistence ----------------------------------------------------------

    def incident(self, key: str) -> Incident | None:
        inc = self.state.incidents.get(key)
        return self._view(inc) if inc is not None else None

    def incident_state(self, key: str) -> IncidentState | None:
        return self.state.incidents.get(key)

    def open_incidents(self) -> list[Incident]:
        return [self._view(i) for i in self.state.incidents.values() if i.status == "open"]

    def windows_by_rule(self) -> dict[str, int]:
        return {name: len(lr.state.groups) for name, lr in self._live.items()}

    def open_by_rule(self) -> dict[str, int]:
        out = dict.fromkeys(self._live, 0)
        for key in self.state.open_by_group.values():
            inc = self.state.incidents.get(key)
            if inc is not None:
                out[inc.rule] = out.get(inc.rule, 0) + 1
        return out

    def take_delta(self) -> StateDelta:
        """Everything changed since the last call, to persist; then starts afresh."""
        delta = build_delta(self.state, self.changes)
        self.changes.clear()
        return delta

    def discard_changes(self) -> None:
        """Forget the change marks: for runs that never save (replay, rule tests)."""
        self.changes.clear()

    def snapshot(self) -> bytes:
        """The whole state, encoded; `Engine.restore` takes it back."""
        return encode_state(self.state)

    @classmethod
    def restore(cls, rules: RuleSet, blob: bytes, config: EngineConfig | None = None) -> Engine:
        return cls(rules, config, decode_state(blob))
