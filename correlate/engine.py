"""`Engine`: the pure, synchronous correlation core.

`process(alerts, now)` and `tick(now)` are the ways in for records and time; `Effects`
is the way out. The engine reads no clock and does no I/O: `now` is the processing
time of the call, used only to stamp `detected_at` and `processed_at`.

The time model (README.md's rule reference says the same):

- **Arrival order.** Records are taken in arrival order (`received_at`), never re-sorted
  by `startsAt`. Records that arrived at the same instant are taken in a fixed order
  (event time, fingerprint, status, endsAt), so their order inside one instant cannot
  matter. A batch holds whole instants (the pipeline stamps each request with its own).
- **Event time.** A new alert enters windows at its event time: its `startsAt`,
  clamped to its arrival. The watermark is the highest event time seen; an alert more
  than `allowed_lateness` behind it is late: counted, never merged into a window.
- **Re-sends and resolves.** A re-send is a heartbeat at its arrival. A resolved record
  is handled at its arrival and recorded as resolved at its `endsAt`.
- **Timers** (alert expiry, silence ends, group waits, absences, too-quiet windows,
  `resolve.quiet`, hysteresis, repeat intervals, spaced `updated` events) fire at their
  due times on the arrival clock: before each record, every timer due before its arrival
  fires, in due-time order, also inside one batch. `tick(now)` fires those due at or
  before `now` (the pipeline ticks only when no record stamped before `now` waits).

So the incident events -- keys, kinds, alerts and every event-time stamp -- depend only
on the records and their times, never on how the stream was cut into batches or when
`tick` ran (tests/property/test_batch_invariance.py). `replay` feeds an archive through
the same calls and predicts the live daemon.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any, Final

from correlate.announce import Announcer
from correlate.config import EngineConfig
from correlate.context import Context
from correlate.dedup import Admission, DedupTable
from correlate.delta import Changes, StateDelta, build_delta
from correlate.effects import Counts, Effects
from correlate.incidents import IncidentBook
from correlate.rulebook import LiveRule, Rulebook
from correlate.state import IncidentState, Stamp, State, Tracked, decode_state, encode_state
from correlate.suppress import Silence, active_silence
from correlate.timers import Timer
from correlate.views import full_view, wire_alert
from rules import Matcher, RuleSet
from stormwatch.wire import Alert, Incident, IncidentEvent

__all__ = ["Counts", "Effects", "Engine", "EngineConfig"]

_SEP: Final = "\x1e"
_NAN: Final = float("nan")
_GC_EVERY: Final = 60.0
"""Seconds of arrival clock between sweeps of forgotten state (unobservable in events)."""
_SWEEP_EVERY: Final = 600.0
"""Seconds of arrival clock between sweeps of every window for idle groups' old events."""
_MATCH_CACHE_MAX: Final = 50_000
_Feeds = tuple[tuple[Callable[..., None], Callable[[dict[str, str], str], str], str], ...]
"""(an aggregator's feed or heartbeat, its group-key function, the rule matched via)."""
_MatchCache = dict[tuple[str, ...], _Feeds]
"""(source, severity, the values of the labels the rules' matchers name) -> what the
alert feeds."""


def _order(a: Alert) -> tuple[float, float, str, str, float]:
    return (a.received_at, a.starts_at, a.fingerprint, a.status, a.ends_at or 0.0)


_full_order: Final = attrgetter("received_at", "starts_at", "fingerprint", "status", "ends_at")
_instant_order: Final = attrgetter("starts_at", "fingerprint", "status", "ends_at")
_by_fingerprint: Final = attrgetter("fingerprint")


def _in_order(alerts: Sequence[Alert]) -> Sequence[Alert]:
    """Records in arrival order, those of one instant by (event time, fingerprint,
    status, endsAt). A key of attributes sorts in C; it compares `ends_at` only for one
    alert twice in one instant with one status, and only when one of them has no
    `endsAt` (None against a float raises) does the slower key that reads None as 0 run.

    A batch of one instant (nearly every request) leaves the arrival out of the key:
    CPython compares tuple keys by their first fields with a float fast path and looks
    further only on a tie, and an arrival shared by all would tie every time (the sort
    was a tenth of the compiled core, bench/README.md, "Compiled core"). When the
    records share one event time too (one evaluation's alerts) and no fingerprint occurs
    twice, the fingerprint alone decides every comparison: the same order, with no tuple
    built per record (the sort was a twentieth of the HTTP route). Proving that costs a
    set of the fingerprints, paid only when the event times are shared: with distinct
    event times the tuple's first field decides nearly every comparison anyway."""
    if len(alerts) < 2:
        return alerts
    first = alerts[0]
    arrival, start = first.received_at, first.starts_at
    one_start = True
    for alert in alerts:
        if alert.received_at != arrival:
            return _sorted(alerts, _full_order)
        if one_start and alert.starts_at != start:
            one_start = False
    if one_start and len({alert.fingerprint for alert in alerts}) == len(alerts):
        return sorted(alerts, key=_by_fingerprint)
    return _sorted(alerts, _instant_order)


def _sorted(alerts: Sequence[Alert], key: Callable[[Alert], Any]) -> list[Alert]:
    try:
        return sorted(alerts, key=key)
    except TypeError:
        return sorted(alerts, key=_order)


def _tally(items: list[str]) -> dict[str, int]:
    """How often each item occurs, in the order they first occur (a request's re-sends
    nearly always come from one source: one count in C)."""
    first = items[0]
    if items.count(first) == len(items):
        return {first: len(items)}
    return dict(Counter(items))


class _Memo:
    """What an alert feeds, memoised by what decides it: its source, its normalised
    severity and the values of the labels the rules' matchers name (a label no rule
    names cannot change a match). A fleet has a few hundred such combinations where it
    has a million label sets, so the memo is small and nearly always hits, where one
    keyed by fingerprint held an entry per live alert (bench/README.md, memory). Built
    per (re)load."""

    __slots__ = ("_cache", "_compute", "_first", "_names", "_second")

    def __init__(self, names: tuple[str, ...], compute: Callable[[Alert], _Feeds]) -> None:
        self._names = names
        self._first = names[0] if names else ""
        self._second = names[1] if len(names) > 1 else ""
        self._compute = compute
        self._cache: _MatchCache = {}

    def get(self, alert: Alert) -> _Feeds:
        # Asked for every re-send when heartbeat rules exist: one or two names (say
        # `alertname`) are the common case, keyed without building a list.
        get, n = alert.labels.get, len(self._names)
        if n == 1:
            key: tuple[str, ...] = (alert.source, alert.severity, get(self._first, ""))
        elif n == 2:
            key = (alert.source, alert.severity, get(self._first, ""), get(self._second, ""))
        else:
            key = (alert.source, alert.severity, *[get(name, "") for name in self._names])
        found = self._cache.get(key)
        if found is None:
            found = self._compute(alert)
            if len(self._cache) >= _MATCH_CACHE_MAX:
                self._cache.clear()  # bounded: dropped whole, no LRU bookkeeping
            self._cache[key] = found
        return found


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
        ctx = self.ctx = Context(self.state, self.config, self.changes)
        ctx.counts = Counts()
        self.timers = ctx.timers
        self.announcer = Announcer(ctx)
        self.book = ctx.book = IncidentBook(ctx, self.announcer)
        self._dedup = DedupTable(ctx)
        self._silences: list[tuple[Silence, list[Matcher]]] = [
            (s, s.compiled()) for s in self.state.silences
        ]
        self._muted: dict[str, set[str]] = {}
        """silence id -> fingerprints it kept from the rules (derived from `Tracked.muted`)."""
        self._since_sweep = 0
        """Records taken since the windows were last swept (see `_gc`)."""
        self._last_sweep = self.state.clock
        self._install(rules)
        self._schedule_from_state()

    # -- rules and derived indexes ------------------------------------------------------

    def _install(self, rules: RuleSet) -> None:
        old = getattr(self, "_book", None)
        old_states = self.state.rules
        book = Rulebook(rules, old_states, self.ctx)
        retired = dict(self.ctx.live)
        retired.update(book.live)
        self.ctx.live = retired  # incidents of a removed rule still need their rule
        self.ctx.idle_duplicates.clear()  # a rule's `resolve.quiet` may have changed
        self.state.rules = book.states
        # Only rule state changed: the windows of rules dropped or restarted go, those of
        # the others stay as stored (a reload rewrites rule state, not the shard).
        changes = self.changes
        for name, rs in old_states.items():
            if book.states.get(name) is not rs:
                changes.rules.add(name)
                changes.groups.update((name, gkey) for gkey in rs.groups)
        changes.rules.update(
            name for name, rs in book.states.items() if old_states.get(name) is not rs
        )
        self.rules = rules
        self._book = book
        self._live = book.live
        self._feeds = _Memo(book.matcher.label_names, self._feeds_for)
        self._beats = _Memo(
            book.heartbeats.label_names if book.heartbeats is not None else (), self._beats_for
        )
        if old is not None:
            for lr in book.live.values():
                lr.agg.schedule_from_state()
            self.book.schedule_from_state()

    def _schedule_from_state(self) -> None:
        """Derive every timer and index from the state alone (construction, restore)."""
        self.timers.clear()
        self._dedup.schedule_from_state()
        for lr in self._live.values():
            lr.agg.schedule_from_state()
        self.book.schedule_from_state()
        self.announcer.rebuild()
        for silence in self.state.silences:
            self.timers.at(silence.ends_at, Timer.SILENCE, silence.id)
        for fp, t in self.state.tracked.items():
            if t.muted:
                self._muted.setdefault(t.muted, set()).add(fp)

    def reload(self, rules: RuleSet) -> None:
        """Swap in new rules. Windows of rules whose match and correlation did not change
        are kept; a changed rule starts with empty windows. Open incidents stay open and
        resolve as their alerts do."""
        self._install(rules)

    # -- the hot path -------------------------------------------------------------------

    def _begin(self, now: float, received: int = 0) -> tuple[Counts, list[IncidentEvent]]:
        self.ctx.now = now
        counts = self.ctx.counts = Counts(received=received)
        events = self.announcer.events = []
        return counts, events

    def process(self, alerts: Sequence[Alert], now: float) -> Effects:
        """Take a batch of records (whole arrival instants) at processing time `now`."""
        counts, events = self._begin(now, len(alerts))
        state = self.state
        self._since_sweep += len(alerts)
        tracked_by_fp = state.tracked
        beat_marks = self.changes.beats
        timeout = self._dedup.resolve_timeout
        # Times stored per alert travel as the float objects they are (see Stamp): the
        # state and the records are read through `Stamp` references.
        boxed: Stamp = state
        deadline_of: Stamp = _NAN  # one float per arrival, as DedupTable.deadline
        deadline: Stamp = 0.0
        last_end: Stamp = _NAN  # records of one request mostly share their endsAt: one float
        # Compiled (setup.py), a method called on its object is a direct C call, where
        # one taken into a local first is a generic Python call: no bound-method locals.
        dedup, timers, book = self._dedup, self.timers, self.book
        heartbeats = self._book.heartbeats is not None
        sources: list[str] = []  # of the re-sends, tallied once at the end
        ordered = _in_order(alerts)
        # One arrival instant (every request): the clock moves once, before its first
        # record, and stays; several: at each record, as it comes.
        one_instant = bool(ordered) and ordered[0].received_at == ordered[-1].received_at
        if one_instant and ordered[0].received_at > state.clock:
            self._advance(ordered[0].received_at)
        clock: Stamp = boxed.clock
        for alert in ordered:
            if not one_instant:
                arrival = alert.received_at
                if arrival > state.clock:
                    self._advance(arrival)
                clock = boxed.clock
            fp = alert.fingerprint
            t = tracked_by_fp.get(fp)
            if t is None or t.status != "firing" or alert.status != "firing":
                self._take(alert, counts)
                continue
            # A re-send of a firing alert (80 % of what Prometheus sends): a heartbeat,
            # inlined, since it is most of the hot path (bench/test_bench_core.py).
            a: Stamp = clock
            t.last_seen = a
            t.duplicates += 1
            # Its annotations unchanged (notes_equal, inlined), its start no earlier:
            # only the heartbeat changed.
            ann, kind = alert.annotations, t.kind
            try:
                same = len(ann) == kind.n_notes and kind.read_notes(ann) == t.notes
            except KeyError:
                same = False
            if (not same or alert.starts_at < t.starts_at) and dedup.merge(t, alert):
                self.changes.tracked.add(fp)  # more than the heartbeat changed
            record: Stamp = alert
            ends: Stamp = record.ends_at
            if ends is None:
                if a != deadline_of:
                    deadline_of, deadline = a, a + timeout
                ends = deadline
            elif ends == last_end:
                ends = last_end
            else:
                last_end = ends
            if ends < t.ends_at:
                timers.expire_at(ends, fp)
            t.ends_at = ends
            beat_marks.add(fp)
            sources.append(alert.source)
            if t.incidents:
                book.saw_duplicate(t)
            if heartbeats and not t.muted:
                for beat, gkey, via in self._beats.get(alert):
                    beat(gkey(alert.labels, via), t)
        if sources:
            counts.duplicates += len(sources)
            counts.duplicates_by_source = _tally(sources)
        if state.clock - state.last_gc >= _GC_EVERY:
            self._gc()
        return Effects(events=events, counts=counts)

    def _advance(self, a: float) -> None:
        """Fire every timer due before arrival `a`, in order; the clock is then `a`."""
        self._fire_all(a, until=False)
        self.state.clock = a

    def _fire_all(self, t: float, until: bool) -> None:
        """Fire the timers due before `t` (`until`: at or before it), in order."""
        state, timers = self.state, self.timers
        while (entry := timers.pop_until(t) if until else timers.pop_before(t)) is not None:
            due = entry[0]
            if due > state.clock:
                state.clock = due
            self._fire(due, entry[1], entry[2])

    def _take(self, alert: Alert, counts: Counts) -> None:
        """A record that is not a re-send of a firing alert (`process` takes those)."""
        boxed: Stamp = self.state
        admission, tracked = self._dedup.admit(alert, boxed.clock)
        if admission is Admission.RESOLVED:
            assert tracked is not None and tracked.resolved_at is not None
            counts.resolved += 1
            self._unmute(tracked)
            self.book.alert_resolved(tracked, tracked.resolved_at)
            return
        if admission is Admission.STALE:
            counts.stale += 1
            return
        assert tracked is not None
        counts.new += 1
        if self._silences:
            by = active_silence(self._silences, alert.labels, self.state.clock)
            if by is not None:
                counts.silenced += 1
                tracked.muted = by
                self._muted.setdefault(by, set()).add(alert.fingerprint)
                return
        held: Stamp = tracked
        self._feed(tracked, held.event_time, counts, alert)

    def _feed(self, tracked: Tracked, t: Stamp, counts: Counts, alert: Alert) -> None:
        """A firing alert enters the rules at event time `t`; `alert` is its record (or
        one built from `tracked`: the same labels, source and severity)."""
        state = self.state
        if t > state.watermark:
            state.watermark = t
        if t > tracked.fed_at:
            tracked.fed_at = t
        feeds = self._feeds.get(alert)
        if not feeds:
            counts.unmatched += 1
            return
        labels = alert.labels
        for feed, gkey, via in feeds:
            feed(gkey(labels, via), tracked, t, via)

    def _feeds_for(self, alert: Alert) -> _Feeds:
        """What a new alert feeds: each window it enters, with how to key its group. A
        rule's own matches feed it; a temporal rule hears the rules it joins."""
        live, listeners = self._live, self._book.listeners
        out = []
        for c in self._book.matcher.candidates(alert):
            lr = live.get(c.name)
            if lr is not None and not lr.steps:
                out.append((lr.agg.feed, lr.gkey, c.name))
            for temporal in listeners.get(c.name, ()):
                out.append((temporal.agg.feed, temporal.gkey, c.name))
        return tuple(out)

    def _beats_for(self, alert: Alert) -> _Feeds:
        """What a re-send beats: the absence rules it matches."""
        matcher = self._book.heartbeats
        assert matcher is not None
        return tuple(
            (lr.agg.heartbeat, lr.gkey, c.name)
            for c in matcher.candidates(alert)
            if (lr := self._live.get(c.name)) is not None
        )

    # -- timers -------------------------------------------------------------------------

    def tick(self, now: float) -> Effects:
        """Fire every timer due at or before `now` (processing time); the clock is then
        `now`. Call it only when no record stamped before `now` is still to come."""
        counts, events = self._begin(now)
        state = self.state
        self._fire_all(now, until=True)
        if now > state.clock:
            state.clock = now
        if state.clock - state.last_gc >= _GC_EVERY:
            self._gc()
        return Effects(events=events, counts=counts)

    def next_due(self) -> float | None:
        """When the earliest queued timer is due (it may turn out stale), or None."""
        return self.timers.next_due()

    def _fire(self, due: float, kind: int, key: str) -> None:
        if kind == Timer.EXPIRE:
            tracked = self._dedup.expire(key, due)
            if tracked is not None:
                self.ctx.counts.expired += 1
                self._unmute(tracked)
                self.book.alert_resolved(tracked, tracked.resolved_at or due)
        elif kind == Timer.SILENCE:
            self._silence_ended(key, due)
        elif kind < Timer.QUIET:
            rule, _, gkey = key.partition(_SEP)
            lr = self._live.get(rule)
            if lr is not None:
                lr.agg.on_timer(Timer(kind), gkey, due)
        else:
            self.book.on_timer(Timer(kind), key, due)

    def _gc(self) -> None:
        """Forget what can no longer matter: resolved alerts and incidents past
        `retention`, window events no alert that is not late can share a window with.
        Nothing here changes an event, so when it runs cannot matter."""
        state = self.state
        state.last_gc = state.clock
        horizon = state.watermark - self.config.allowed_lateness
        spans = [lr.timespan for lr in self._live.values() if lr.agg.lists_window]
        self._dedup.forget(state.clock, horizon - max(spans, default=0.0))
        cutoff = state.clock - self.config.retention
        incidents, closed = state.incidents, self.book.closed
        while closed and closed[0][0] < cutoff:
            _, key = closed.popleft()
            inc = incidents.get(key)
            if inc is not None and inc.status == "resolved":
                del incidents[key]
                self.changes.incidents.add(key)
        # Sweeping every window costs O(groups): only once as many records have come
        # (amortised O(1) a record); feeds evict their own group's head meanwhile.
        if state.clock - self._last_sweep >= _SWEEP_EVERY and self._since_sweep >= sum(
            len(lr.state.groups) for lr in self._live.values()
        ):
            self._since_sweep, self._last_sweep = 0, state.clock
            for lr in self._live.values():
                lr.agg.gc(horizon)

    # -- silences -----------------------------------------------------------------------

    def _at(self, at: float) -> float:
        """Bring the clock to an action's time (never backwards): timers due before it fire."""
        if at > self.state.clock:
            self._advance(at)
        return self.state.clock

    def add_silence(self, silence: Silence, now: float) -> Effects:
        """Add or replace (by id) a silence at processing time `now`; raises MatcherError
        for a bad matcher. Alerts that fire while it is active feed no rule."""
        compiled = silence.compiled()
        counts, events = self._begin(now)
        at = self._at(now)
        self._drop_silence(silence.id, at)
        self.changes.meta = True
        self.state.silences.append(silence)
        self._silences.append((silence, compiled))
        self.timers.at(silence.ends_at, Timer.SILENCE, silence.id)
        return Effects(events=events, counts=counts)

    def expire_silence(self, silence_id: str, now: float) -> Effects | None:
        """End a silence at processing time `now`; the still-firing alerts it held feed
        the rules at that moment. None if there is no such silence."""
        if not any(s.id == silence_id for s in self.state.silences):
            return None
        counts, events = self._begin(now)
        self._drop_silence(silence_id, self._at(now))
        return Effects(events=events, counts=counts)

    def _drop_silence(self, silence_id: str, at: float) -> None:
        before = len(self.state.silences)
        self.state.silences = [s for s in self.state.silences if s.id != silence_id]
        self._silences = [(s, m) for s, m in self._silences if s.id != silence_id]
        if len(self.state.silences) != before:
            self.changes.meta = True
            self._release_muted(silence_id, at)

    def _silence_ended(self, silence_id: str, due: float) -> None:
        silence = next((s for s in self.state.silences if s.id == silence_id), None)
        if silence is None or silence.ends_at != due:
            return
        self._drop_silence(silence_id, due)

    def _release_muted(self, silence_id: str, at: float) -> None:
        """Alertmanager users expect alerts to notify once a silence ends: the firing
        alerts this silence kept from the rules feed them now, at event time `at`."""
        tracked = self.state.tracked
        for fp in sorted(self._muted.pop(silence_id, ())):
            t = tracked.get(fp)
            if t is None or t.status != "firing" or t.muted != silence_id:
                continue
            self.changes.tracked.add(fp)
            alert = wire_alert(t)
            other = active_silence(self._silences, alert.labels, at)
            if other is not None:
                t.muted = other
                self._muted.setdefault(other, set()).add(fp)
                continue
            t.muted = ""
            self._feed(t, at, self.ctx.counts, alert)

    def _unmute(self, tracked: Tracked) -> None:
        if tracked.muted:
            self._muted.get(tracked.muted, set()).discard(tracked.fingerprint)
            tracked.muted = ""

    # -- acknowledgement ----------------------------------------------------------------

    def acknowledge(self, key: str, by: str, now: float) -> Effects | None:
        """Acknowledge an open incident at processing time `now`; its next `updated`
        event says so. None if it is not open or already acknowledged."""
        inc = self.state.incidents.get(key)
        if inc is None or inc.status != "open" or inc.acknowledged_at is not None:
            return None
        counts, events = self._begin(now)
        at = self._at(now)
        self.book.acknowledge(inc, by, at)
        return Effects(events=events, counts=counts)

    # -- queries and persistence ----------------------------------------------------------

    def _rule_for(self, name: str) -> LiveRule:
        return self.ctx.live[name]

    def incident(self, key: str) -> Incident | None:
        """The incident as a reader sees it now (changes nothing)."""
        inc = self.state.incidents.get(key)
        return full_view(self.state, inc, self._rule_for(inc.rule), stored=False) if inc else None

    def incidents(self) -> list[Incident]:
        return [
            full_view(self.state, inc, self._rule_for(inc.rule), stored=False)
            for inc in self.state.incidents.values()
        ]

    def incident_state(self, key: str) -> IncidentState | None:
        return self.state.incidents.get(key)

    def open_incidents(self) -> list[Incident]:
        return [i for i in self.incidents() if i.status == "open"]

    def windows_by_rule(self) -> dict[str, int]:
        return {name: len(lr.state.groups) for name, lr in self._live.items()}

    def open_by_rule(self) -> dict[str, int]:
        out = dict.fromkeys(self._live, 0)
        for key in self.state.open_by_group.values():
            inc = self.state.incidents.get(key)
            if inc is not None:
                out[inc.rule] = out.get(inc.rule, 0) + 1
        return out

    def take_delta(self, heartbeats: bool = True) -> StateDelta:
        """Everything changed since the last call, to persist; then starts afresh.
        `heartbeats` False: without the re-sends' heartbeats (`build_delta`)."""
        delta = build_delta(self.state, self.changes, heartbeats)
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
