"""Coalescing: what one incident's waiting events fold into, for one sink.

A sink must reach each incident's latest state, not replay every step of it. While
events for an incident wait in a sink's outbox (the sink is slow, down, or its breaker
is open), a newer event folds into them, so an outage of any length leaves at most two
events per incident to deliver. `coalesce(waiting, newer)` is the whole rule; it is
pure and never changes its arguments (the same event object sits in several sinks'
outboxes).

`waiting` is what the sink has not confirmed yet, oldest first: one event, or an
`opened` followed by its `resolved`. By the last waiting event and the newer one:

| last waiting | newer      | result                                                      |
|--------------|------------|-------------------------------------------------------------|
| any          | seq <= it  | waiting, unchanged: a repeat or an older event never lands  |
|              |            | after a newer one (dead-letter replays, redeliveries)       |
| (none)       | any        | [newer]                                                     |
| opened       | updated    | [opened]: the newer summary (title, severity, priority,     |
|              |            | counts, acknowledgement), the waiting alerts with the       |
|              |            | update's added and resolved alerts applied, the newer       |
|              |            | sequence; the sink never had the incident, so it opens it   |
|              |            | as it is now                                                |
| opened       | resolved   | [opened, resolved]: the sink opens the ticket, then closes  |
|              |            | it, so stream receivers (webhook, file, Kafka) still see    |
|              |            | the incident open before it resolves                        |
| opened       | opened     | [newer] (announced again, e.g. after inhibition)            |
| updated      | updated    | [updated]: the newer summary; `changes` merged: alerts      |
|              |            | added and resolved united (a re-fired alert leaves          |
|              |            | `alerts_resolved`), duplicates summed, `previous_severity`  |
|              |            | and `previous_priority` the oldest known (dropped when the  |
|              |            | value came back to it), reasons united                      |
| updated      | resolved   | [resolved]: a resolved carries the full incident            |
| updated      | opened     | [newer]                                                     |
| resolved     | any        | waiting, unchanged: resolved is final                       |

`fold(events)` applies the table to events in sequence order: how a replay puts dead
letters and what already waits back together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from stormwatch.wire import IncidentAlert, IncidentChanges, IncidentEvent

__all__ = ["apply_changes", "coalesce", "fold", "merge_changes"]


def coalesce(waiting: Sequence[IncidentEvent], newer: IncidentEvent) -> list[IncidentEvent]:
    """Fold `newer` into the events that wait for one incident (see the table above)."""
    if not waiting:
        return [newer]
    last = waiting[-1]
    if newer.sequence <= last.sequence or last.event == "resolved":
        return list(waiting)
    if newer.event == "opened":
        return [newer]
    if last.event == "opened":
        if newer.event == "resolved":
            return [*waiting, newer]
        return [*waiting[:-1], _open_with(last, newer)]
    if newer.event == "resolved":
        return [*waiting[:-1], newer]
    return [*waiting[:-1], _merge_updates(last, newer)]


def fold(events: Iterable[IncidentEvent]) -> list[IncidentEvent]:
    """Coalesce events of one incident given in any order."""
    out: list[IncidentEvent] = []
    for e in sorted(events, key=lambda e: e.sequence):
        out = coalesce(out, e)
    return out


def apply_changes(
    alerts: Sequence[IncidentAlert], changes: IncidentChanges | None
) -> list[IncidentAlert]:
    """An alert list with an update's added alerts put in and its resolved marked."""
    if changes is None:
        return list(alerts)
    by_fp = {a.fingerprint: a for a in alerts}
    for a in changes.alerts_added:
        by_fp[a.fingerprint] = a
    for fp in changes.alerts_resolved:
        found = by_fp.get(fp)
        if found is not None and found.status != "resolved":
            by_fp[fp] = msgspec.structs.replace(found, status="resolved")
    return list(by_fp.values())


def merge_changes(
    older: IncidentChanges | None, newer: IncidentChanges | None, severity: str, priority: int
) -> IncidentChanges | None:
    """Two consecutive updates' changes as one; `severity`/`priority` are the newest."""
    if older is None and newer is None:
        return None
    o, n = older or IncidentChanges(), newer or IncidentChanges()
    added = {a.fingerprint: a for a in o.alerts_added}
    for a in n.alerts_added:
        added[a.fingerprint] = a
    resolved = dict.fromkeys(o.alerts_resolved)
    for a in n.alerts_added:  # resolved, then fired again: no longer resolved
        resolved.pop(a.fingerprint, None)
    resolved.update(dict.fromkeys(n.alerts_resolved))
    prev_sev = o.previous_severity if o.previous_severity is not None else n.previous_severity
    prev_pri = o.previous_priority if o.previous_priority is not None else n.previous_priority
    return IncidentChanges(
        alerts_added=list(added.values()),
        alerts_resolved=list(resolved),
        duplicates=o.duplicates + n.duplicates,
        previous_severity=None if prev_sev == severity else prev_sev,
        previous_priority=None if prev_pri == priority else prev_pri,
    )


def _reasons(*reasons: str) -> str:
    return ",".join(dict.fromkeys(r for text in reasons for r in text.split(",") if r))


def _open_with(opened: IncidentEvent, update: IncidentEvent) -> IncidentEvent:
    inc = update.incident
    # A compact update lists no alerts: the waiting `opened` has them, the update's
    # `changes` say what happened to them since.
    alerts = inc.alerts or apply_changes(opened.incident.alerts, update.changes)
    view = msgspec.structs.replace(
        inc,
        alerts=alerts,
        truncated_alerts=max(0, inc.alert_count - len(alerts)),
        timeline=inc.timeline or opened.incident.timeline,
    )
    return msgspec.structs.replace(opened, sequence=update.sequence, incident=view, changes=None)


def _merge_updates(older: IncidentEvent, newer: IncidentEvent) -> IncidentEvent:
    inc = newer.incident
    return msgspec.structs.replace(
        newer,
        reason=_reasons(older.reason, newer.reason),
        changes=merge_changes(older.changes, newer.changes, inc.severity, inc.priority),
    )
