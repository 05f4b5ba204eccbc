"""Incident lifecycle: open, join, resolve; and the `Incident` view sinks receive.

An incident's key is a hash of its rule, its group values and the event time of the
alert that opened it: deterministic, so replaying an archive yields the same keys and
a sink can use the key as its idempotency key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from correlate.classify import Classifier
from correlate.delta import Changes
from correlate.state import IncidentState, State, Tracked
from rules import Rule, fill_placeholders
from stormwatch.wire import Incident, IncidentAlert, TimelineEntry

__all__ = [
    "ALERT_ENTRIES_UP_TO",
    "TIMELINE_LIMIT",
    "IncidentBook",
    "incident_key",
    "render_template",
]

TIMELINE_LIMIT = 50
"""Timeline entries kept per incident; older ones are counted in `timeline_dropped`."""
ALERT_ENTRIES_UP_TO = 10
"""Incidents with more alerts than this stop logging each alert added or resolved."""

_SEP = "\x1e"


def incident_key(rule: str, group_key: str, opened_by: float) -> str:
    body = f"{rule}{_SEP}{group_key}{_SEP}{opened_by!r}".encode()
    return "inc-" + hashlib.blake2b(body, digest_size=10).hexdigest()


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Fill `{label}` placeholders (UTF-8 names too: `{service.name}`); an unknown
    placeholder stays as written."""
    return fill_placeholders(template, values)


def common_labels(alerts: list[IncidentAlert]) -> dict[str, str]:
    """The label pairs every alert shares (dict item views intersect in C)."""
    if not alerts:
        return {}
    common = alerts[0].labels.items()
    for a in alerts[1:]:
        common = common & a.labels.items()  # type: ignore[assignment]
        if not common:
            return {}
    return dict(common)


class IncidentBook:
    """Opens, updates and resolves incidents in a `State`, and records what changed.

    `touched` collects the incidents opened or resolved in the current call: those are
    sent at once. Any other change (alerts added or resolved, re-sends) only marks the
    incident dirty in `State.dirty`; `Engine.tick` sends one `updated` event for it at
    most every `update_interval`, so a storm of re-sends costs one update, not thousands.
    """

    def __init__(
        self,
        state: State,
        max_alerts: int,
        changes: Changes | None = None,
        quiet_rules: frozenset[str] = frozenset(),
        rate_rules: frozenset[str] = frozenset(),
    ) -> None:
        self.state = state
        self.quiet_rules = quiet_rules
        self.rate_rules = rate_rules
        """Rules that resolve by hysteresis: only their incidents keep arrival times."""
        """Rules with `resolve.quiet`: only their incidents track `last_activity` on re-sends."""
        self.max_alerts = max_alerts
        self.changes = changes if changes is not None else Changes()
        """Where every change to an incident or a tracked alert is marked for the store."""
        self.touched: dict[str, list[str]] = {}
        self.opened: set[str] = set()
        self.resolved: set[str] = set()

    def mark(self, key: str) -> None:
        self.changes.incidents.add(key)

    def _touch(self, key: str, reason: str) -> None:
        self.changes.incidents.add(key)
        if reason in ("opened", "resolved"):
            self.touched.setdefault(key, []).append(reason)
            return
        dirty = self.state.dirty
        reasons = dirty.get(key)
        if reasons is None:
            dirty[key] = [reason]
        elif reason not in reasons:
            reasons.append(reason)

    def _log(self, inc: IncidentState, at: float, event: str, detail: str = "") -> None:
        self.changes.incidents.add(inc.key)
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
            self._log(inc, at, event, fp)
        else:
            self.changes.incidents.add(inc.key)

    def open_for(self, rule: str, group_key: str) -> IncidentState | None:
        key = self.state.open_by_group.get(rule + _SEP + group_key)
        return self.state.incidents.get(key) if key is not None else None

    def open(
        self,
        rule: str,
        group: dict[str, str],
        group_key: str,
        members: list[Tracked],
        opened_by: float,
        now: float,
        why: str,
        *,
        window: list[tuple[float, str, str]] | None = None,
        idle_resolves: bool = True,
    ) -> IncidentState:
        key = incident_key(rule, group_key, opened_by)
        times = [m.alert.starts_at for m in members]
        inc = IncidentState(
            key=key,
            rule=rule,
            group=group,
            group_key=group_key,
            opened_at=now,
            first_seen=min(times, default=opened_by),
            last_seen=max(times, default=opened_by),
            last_activity=now,
            why=why,
            window=window or [],
            arrivals=[now] * len(members) if rule in self.rate_rules else [],
        )
        self.state.incidents[key] = inc
        self.state.open_by_group[rule + _SEP + group_key] = key
        self._log(inc, now, "opened", why)
        for m in members:
            self._add_member(inc, m, now, log=False)
        self.opened.add(key)
        self._touch(key, "opened")
        if inc.firing == 0 and idle_resolves:
            # Every alert that made the window has already resolved: the incident still
            # happened, so it is opened and resolved in the same batch.
            self.resolve(inc, now, "all alerts resolved")
        return inc

    def _add_member(self, inc: IncidentState, tracked: Tracked, now: float, *, log: bool) -> None:
        fp = tracked.alert.fingerprint
        firing = tracked.status == "firing"
        if inc.key in tracked.incidents:
            # A member that resolved and fired again: same alert, firing once more.
            self.changes.incidents.add(inc.key)
            inc.firing += firing
            if log:
                self._log_alert(inc, now, "alert_refired", fp)
            return
        tracked.incidents.append(inc.key)
        self.changes.tracked.add(fp)
        self.changes.incidents.add(inc.key)
        inc.alert_count += 1
        inc.firing += firing
        if len(inc.exemplars) < self.max_alerts:
            inc.exemplars.append(fp)
        elif inc.alert_count == self.max_alerts + 1:
            self._log(
                inc,
                now,
                "storm",
                f"more than {self.max_alerts} alerts: listing the first "
                f"{self.max_alerts}, counting the rest in alert_count",
            )
        if log:
            self._log_alert(inc, now, "alert_added", fp)

    def join(self, inc: IncidentState, tracked: Tracked, now: float) -> None:
        self._add_member(inc, tracked, now, log=True)
        t = tracked.alert.starts_at
        inc.first_seen = min(inc.first_seen, t)
        inc.last_seen = max(inc.last_seen, t)
        inc.last_activity = now
        if inc.rule in self.rate_rules:
            inc.arrivals.append(now)
        self._touch(inc.key, "alerts_added")

    def saw_duplicate(self, tracked: Tracked, now: float) -> None:
        """A member was re-sent. Only what changes is written: `last_activity` matters
        to rules with `resolve.quiet`, the `duplicates` reason once per update; a store
        then rewrites a big incident once per update, not once per batch of re-sends
        (the Redis load test in bench/README.md)."""
        dirty = self.state.dirty
        for key in tracked.incidents:
            inc = self.state.incidents.get(key)
            if inc is None or inc.status != "open":
                continue
            if inc.rule in self.quiet_rules:
                inc.last_activity = now
                self.changes.incidents.add(key)
            reasons = dirty.get(key)
            if reasons is None or "duplicates" not in reasons:
                self._touch(key, "duplicates")

    def alert_resolved(self, tracked: Tracked, now: float) -> None:
        for key in tracked.incidents:
            inc = self.state.incidents.get(key)
            if inc is None or inc.status != "open":
                continue
            inc.firing -= 1
            self._log_alert(inc, now, "alert_resolved", tracked.alert.fingerprint)
            if inc.firing <= 0:
                self.resolve(inc, now, "all alerts resolved")
            else:
                self._touch(key, "alerts_resolved")

    def resolve(self, inc: IncidentState, now: float, why: str) -> None:
        if inc.status != "open":
            return
        inc.status = "resolved"
        inc.resolved_at = now
        self._log(inc, now, "resolved", why)
        self.state.open_by_group.pop(inc.rule + _SEP + inc.group_key, None)
        self.state.dirty.pop(inc.key, None)
        for fp in inc.exemplars:
            tracked = self.state.tracked.get(fp)
            if tracked is not None and inc.key in tracked.incidents:
                tracked.incidents.remove(inc.key)
                self.changes.tracked.add(fp)
        self.resolved.add(inc.key)
        self._touch(inc.key, "resolved")

    def view(self, inc: IncidentState, rule: Rule, classifier: Classifier) -> Incident:
        """Build the wire `Incident` (classified, titled) from the engine's state."""
        tracked = self.state.tracked
        alerts = []
        for fp in inc.exemplars:
            t = tracked.get(fp)
            if t is None:
                continue
            a = t.alert
            alerts.append(
                IncidentAlert(
                    fingerprint=fp,
                    labels=a.labels,
                    annotations=a.annotations,
                    status=t.status,  # type: ignore[arg-type]
                    starts_at=a.starts_at,
                    last_seen=t.last_seen,
                    ends_at=t.ends_at,
                    duplicates=t.duplicates,
                    source=a.source,
                    generator_url=a.generator_url,
                    severity=a.severity,
                )
            )
        common = common_labels(alerts)
        labels = {**common, **inc.group}
        if labels != inc.labels:
            inc.labels = labels
            self.changes.incidents.add(inc.key)
        c = classifier.classify(alerts, inc.alert_count, common)
        if inc.severity != c.severity:
            inc.severity = c.severity
            self.changes.incidents.add(inc.key)
        values = {**common, **inc.group, "rule": inc.rule, "count": str(inc.alert_count)}
        timeline = list(inc.timeline)
        if inc.timeline_dropped:
            timeline.insert(
                1,
                TimelineEntry(
                    at=timeline[0].at,
                    event="timeline_truncated",
                    detail=f"{inc.timeline_dropped} earlier entries not kept",
                ),
            )
        return Incident(
            key=inc.key,
            rule=inc.rule,
            group=inc.group,
            status=inc.status,  # type: ignore[arg-type]
            severity=c.severity,
            category=c.category,
            priority=c.priority,
            title=render_template(rule.title_template, values),
            summary=render_template(rule.incident.summary, values),
            alerts=alerts,
            alert_count=inc.alert_count,
            truncated_alerts=inc.alert_count - len(alerts),
            first_seen=inc.first_seen,
            last_seen=inc.last_seen,
            opened_at=inc.opened_at,
            resolved_at=inc.resolved_at,
            timeline=timeline,
        )
