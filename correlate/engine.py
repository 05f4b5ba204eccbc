"""`Engine`: the pure, synchronous correlation core.

`process(alerts, now)` and `tick(now)` are the only ways in; `Effects` is the only way
out. The engine reads no clock and does no I/O: the caller passes processing time in
(`now`), and windows run on each alert's own event time (`starts_at`), clamped to `now`
so a sender with a fast clock cannot drag the watermark into the future.

Per batch, in straight lines: expire alerts whose `ends_at` passed -> for each alert in
(event time, fingerprint) order: dedup -> match rules -> window -> open or join an
incident -> events for the incidents opened or resolved. Other changes are sent as one
`updated` event per incident from `tick`, at most every `update_interval`. Sorting the batch first makes the result
independent of the order of alerts inside one batch.

Semantics (the rule reference in README.md says the same):
- the watermark is the highest event time seen; an alert more than `allowed_lateness`
  behind it is late: counted per rule in `Effects.counts.late_by_rule`, never merged
  into a window (it still joins an incident already open for its group);
- an alert feeds at most one incident per rule: the alerts that open an incident leave
  the window, and while it is open later alerts of its group join it;
- an incident resolves when all its alerts have resolved, or after `resolve.quiet`
  without a matching alert firing or being re-sent (checked on `tick`).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from correlate.classify import Classifier
from correlate.dedup import Admission, DedupTable
from correlate.incidents import IncidentBook
from correlate.match import RuleMatcher
from correlate.state import IncidentState, RuleState, State, Tracked, decode_state, encode_state
from correlate.windows import count_hit, evict_before, insert_event
from correlate.windows.count import fires_on_arrival
from rules import Rule, RuleSet, rule_fingerprint
from rules.schema import EventCount
from stormwatch.wire import Alert, Duration, Incident, IncidentEvent, format_duration

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
    retention: Duration = Duration(900)
    """How long resolved alerts and incidents are remembered (re-sends, explain)."""


class Counts(msgspec.Struct, kw_only=True):
    """What one call did, for metrics and logs; the core itself never counts elsewhere."""

    received: int = 0
    new: int = 0
    duplicates: int = 0
    resolved: int = 0
    expired: int = 0
    stale: int = 0
    unmatched: int = 0
    late: int = 0
    duplicates_by_source: dict[str, int] = {}
    late_by_rule: dict[str, int] = {}


class Effects(msgspec.Struct, kw_only=True):
    """Incident events in the order they happened, and the counts of the call."""

    events: list[IncidentEvent]
    counts: Counts


class _LiveRule:
    """A correlating rule with everything the hot path needs hoisted out of the Struct."""

    __slots__ = ("classifier", "condition", "fires", "group_by", "name", "quiet", "rule", "state", "timespan")

    def __init__(self, rule: Rule, state: RuleState) -> None:
        corr = rule.correlation
        assert isinstance(corr, EventCount), "checked by Engine._supported"
        self.rule = rule
        self.name = rule.name
        self.state = state
        self.group_by = tuple(corr.group_by)
        self.timespan = float(corr.timespan)
        self.condition = corr.condition
        self.fires = fires_on_arrival(corr.condition)
        self.quiet = float(rule.resolve.quiet) if rule.resolve and rule.resolve.quiet else None
        self.classifier = Classifier(rule)


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

    def __init__(self, rules: RuleSet, config: EngineConfig | None = None, state: State | None = None) -> None:
        self.config = config or EngineConfig()
        self.state = state if state is not None else State()
        self._dedup = DedupTable(self.state, self.config.resolve_timeout, self.config.retention)
        self._retired: dict[str, _LiveRule] = {}
        self._last_gc = self.state.watermark
        self._install(rules)

    # -- rules ----------------------------------------------------------------------

    @staticmethod
    def _supported(rule: Rule) -> bool:
        return isinstance(rule.correlation, EventCount)

    def _install(self, rules: RuleSet) -> None:
        old_states = self.state.rules
        new_states: dict[str, RuleState] = {}
        live: dict[str, _LiveRule] = {}
        for rule in rules.rules:
            if not rule.enabled or not self._supported(rule):
                continue
            fp = rule_fingerprint(rule)
            prev = old_states.get(rule.name)
            rs = prev if prev is not None and prev.fingerprint == fp else RuleState(fingerprint=fp)
            new_states[rule.name] = rs
            live[rule.name] = _LiveRule(rule, rs)
        for name, lr in getattr(self, "_live", {}).items():
            if name not in live:
                self._retired[name] = lr
        self.state.rules = new_states
        self.rules = rules
        self._live = live
        self._matcher = RuleMatcher([r for r in rules.rules if r.name in live])

    def reload(self, rules: RuleSet) -> None:
        """Swap in new rules. Windows of rules whose match and correlation did not change
        are kept; a changed rule starts with empty windows. Open incidents stay open and
        resolve as their alerts do."""
        self._install(rules)

    # -- the hot path -----------------------------------------------------------------

    def process(self, alerts: Sequence[Alert], now: float) -> Effects:
        """Take one batch of alerts at processing time `now`."""
        book = IncidentBook(self.state, self.config.max_alerts_per_incident)
        counts = Counts(received=len(alerts))
        self._expire(book, counts, now)
        admit = self._dedup.admit
        candidates = self._matcher.candidates
        state = self.state
        for alert in sorted(alerts, key=_order):
            admission, tracked = admit(alert, now)
            if admission is Admission.DUPLICATE:
                counts.duplicates += 1
                src = alert.source
                counts.duplicates_by_source[src] = counts.duplicates_by_source.get(src, 0) + 1
                if tracked.incidents:  # type: ignore[union-attr]
                    book.saw_duplicate(tracked, now)  # type: ignore[arg-type]
                continue
            if admission is Admission.RESOLVED:
                counts.resolved += 1
                book.alert_resolved(tracked, now)  # type: ignore[arg-type]
                continue
            if admission is Admission.STALE:
                counts.stale += 1
                continue
            counts.new += 1
            t = alert.starts_at if alert.starts_at < now else now
            if t > state.watermark:
                state.watermark = t
            matched = candidates(alert)
            if not matched:
                counts.unmatched += 1
                continue
            for c in matched:
                self._feed(self._live[c.name], alert, tracked, t, now, book, counts)  # type: ignore[arg-type]
        return Effects(events=self._emit(book, now), counts=counts)

    def _feed(
        self, lr: _LiveRule, alert: Alert, tracked: Tracked, t: float, now: float,
        book: IncidentBook, counts: Counts,
    ) -> None:
        values = [alert.labels.get(label, "") for label in lr.group_by]
        gkey = _SEP.join(values)
        inc = book.open_for(lr.name, gkey)
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
            events = groups[gkey] = []
        else:
            evict_before(events, horizon - lr.timespan)
        in_order = insert_event(events, (t, alert.fingerprint, ""))
        if not lr.fires:
            return
        hit = count_hit(events, t, lr.timespan, lr.condition, in_order)
        if hit is None:
            return
        lo, hi = hit
        tracked_by_fp = self.state.tracked
        members = [tracked_by_fp[e[1]] for e in events[lo:hi] if e[1] in tracked_by_fp]
        group = dict(zip(lr.group_by, values, strict=True))
        why = (
            f"{hi - lo} matching alerts within {format_duration(lr.timespan)} "
            f"(event_count {_describe(lr.condition)}) for {_describe_group(group)}"
        )
        del events[lo:hi]
        if not events:
            del groups[gkey]
        book.open(lr.name, group, gkey, members, opened_by=t, now=now, why=why)

    # -- timers -------------------------------------------------------------------------

    def tick(self, now: float) -> Effects:
        """Advance timers to `now`: alert expiry, quiet periods, and forgetting old state."""
        book = IncidentBook(self.state, self.config.max_alerts_per_incident)
        counts = Counts()
        self._expire(book, counts, now)
        for inc in list(self.state.incidents.values()):
            if inc.status != "open":
                continue
            lr = self._live.get(inc.rule)
            if lr is not None and lr.quiet is not None and now - inc.last_activity >= lr.quiet:
                book.resolve(inc, now, f"quiet for {format_duration(lr.quiet)}")
        if now - self._last_gc >= 60:
            self._gc(now)
        events = self._emit(book, now)
        events.extend(self._flush_updates(now))
        return Effects(events=events, counts=counts)

    def _flush_updates(self, now: float) -> list[IncidentEvent]:
        out: list[IncidentEvent] = []
        interval = self.config.update_interval
        incidents = self.state.incidents
        dirty = self.state.dirty
        for key in list(dirty):
            inc = incidents.get(key)
            if inc is None or inc.status != "open":
                del dirty[key]
                continue
            if now - inc.last_event_at < interval:
                continue
            reasons = dirty.pop(key)
            lr = self._rule_for(inc.rule)
            view = IncidentBook(self.state, self.config.max_alerts_per_incident).view(inc, lr.rule, lr.classifier)
            out.append(self._event(inc, "updated", ",".join(reasons), view, now))
        return out

    def _expire(self, book: IncidentBook, counts: Counts, now: float) -> None:
        for tracked in self._dedup.expire(now):
            counts.expired += 1
            book.alert_resolved(tracked, now)

    def _gc(self, now: float) -> None:
        self._last_gc = now
        self._dedup.forget(now)
        cutoff = now - self.config.retention
        incidents = self.state.incidents
        for key in [k for k, i in incidents.items() if i.status == "resolved" and (i.resolved_at or 0) < cutoff]:
            del incidents[key]
        horizon = self.state.watermark - self.config.allowed_lateness
        for lr in self._live.values():
            groups = lr.state.groups
            for gkey in list(groups):
                events = groups[gkey]
                evict_before(events, horizon - lr.timespan)
                if not events:
                    del groups[gkey]

    # -- output -------------------------------------------------------------------------

    def _rule_for(self, name: str) -> _LiveRule:
        return self._live.get(name) or self._retired[name]

    def _view(self, inc: IncidentState) -> Incident:
        lr = self._rule_for(inc.rule)
        return IncidentBook(self.state, self.config.max_alerts_per_incident).view(inc, lr.rule, lr.classifier)

    def _emit(self, book: IncidentBook, now: float) -> list[IncidentEvent]:
        """Events for the incidents opened or resolved in this call, in that order."""
        out: list[IncidentEvent] = []
        for key, kinds in book.touched.items():
            inc = self.state.incidents[key]
            lr = self._rule_for(inc.rule)
            view = book.view(inc, lr.rule, lr.classifier)
            if "opened" in kinds:
                self.state.dirty.pop(key, None)  # the opened view already holds them
                opened = view
                if "resolved" in kinds:
                    opened = msgspec.structs.replace(view, status="open", resolved_at=None)
                out.append(self._event(inc, "opened", "opened", opened, now))
            if "resolved" in kinds:
                out.append(self._event(inc, "resolved", _resolve_reason(inc), view, now))
        return out

    @staticmethod
    def _event(inc: IncidentState, kind: str, reason: str, view: Incident, now: float) -> IncidentEvent:
        inc.sequence += 1
        inc.last_event_at = now
        return IncidentEvent(event=kind, at=now, reason=reason, sequence=inc.sequence, incident=view)  # type: ignore[arg-type]

    # -- queries and persistence ----------------------------------------------------------

    def incident(self, key: str) -> Incident | None:
        inc = self.state.incidents.get(key)
        return self._view(inc) if inc is not None else None

    def incident_state(self, key: str) -> IncidentState | None:
        return self.state.incidents.get(key)

    def open_incidents(self) -> list[Incident]:
        return [self._view(i) for i in self.state.incidents.values() if i.status == "open"]

    def open_by_rule(self) -> dict[str, int]:
        out = dict.fromkeys(self._live, 0)
        for key in self.state.open_by_group.values():
            inc = self.state.incidents.get(key)
            if inc is not None:
                out[inc.rule] = out.get(inc.rule, 0) + 1
        return out

    def snapshot(self) -> bytes:
        """The whole state, encoded; `Engine.restore` takes it back."""
        return encode_state(self.state)

    @classmethod
    def restore(cls, rules: RuleSet, blob: bytes, config: EngineConfig | None = None) -> Engine:
        return cls(rules, config, decode_state(blob))


def _resolve_reason(inc: IncidentState) -> str:
    return inc.timeline[-1].detail if inc.timeline else "resolved"


def _describe(cond: object) -> str:
    fields = msgspec.structs.asdict(cond)  # type: ignore[arg-type]
    return ", ".join(f"{k} {v:g}" for k, v in fields.items() if v is not None and k != "field")


def _describe_group(group: dict[str, str]) -> str:
    if not group:
        return "all matching alerts"
    return ", ".join(f'{k}="{v}"' for k, v in group.items())
