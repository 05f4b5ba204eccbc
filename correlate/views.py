"""The wire `Incident` built from the engine's state, and its classification.

Reading is free of side effects: `full_view` and `classify` change nothing and mark
nothing for the store, so the HTTP API and explain can call them at any time. Only the
announcer stores a classification, when it sends an event (`refresh`).

Events come in two sizes. `opened` and `resolved` carry the full incident with its
listed alerts and timeline; `updated` carries a compact one (summary fields only) and
the event's `changes`: re-encoding a 100-alert incident for every update cost most of a
replay (bench/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from correlate.classify import Classification
from correlate.rulebook import LiveRule
from correlate.state import IncidentState, State, Tracked
from rules import fill_placeholders
from stormwatch.wire import Alert, Incident, IncidentAlert, TimelineEntry

__all__ = [
    "alert_view",
    "classify",
    "common_labels",
    "compact_view",
    "full_view",
    "listed",
    "narrowed_common",
    "refresh",
    "render_template",
    "wire_alert",
]


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Fill `{label}` placeholders (UTF-8 names too: `{service.name}`); an unknown
    placeholder stays as written."""
    return fill_placeholders(template, values)


def common_labels(alerts: Sequence[Tracked]) -> dict[str, str]:
    """The label pairs every alert shares, in the first alert's order. Alerts with the
    same label names (nearly always) are compared column by column, in C."""
    if not alerts:
        return {}
    names = alerts[0].kind.labels
    rows = [t.values for t in alerts if t.kind.labels == names]
    if len(rows) == len(alerts):
        n = len(rows)
        return {
            name: column[0]
            for name, column in zip(names, zip(*rows, strict=True), strict=True)
            if column.count(column[0]) == n
        }
    common = set(zip(names, alerts[0].values, strict=True))
    for t in alerts:
        common.intersection_update(zip(t.kind.labels, t.values, strict=True))
        if not common:
            return {}
    return {k: v for k, v in zip(names, alerts[0].values, strict=True) if (k, v) in common}


def narrowed_common(
    previous: list[Tracked], common: dict[str, str], alerts: list[Tracked]
) -> dict[str, str] | None:
    """`common_labels(alerts)`, given `common == common_labels(previous)`, when `alerts`
    begins with `previous` (the same objects): `common` less what the alerts after them
    do not share, in the same order. None when `alerts` does not begin so. An update
    that lists more alerts then costs its new alerts, not the whole listing again."""
    n = len(previous)
    if n == 0 or len(alerts) < n:
        return None
    for before, now in zip(previous, alerts, strict=False):
        if before is not now:
            return None
    for t in alerts[n:]:
        if not common:
            break
        labels = t.labels
        common = {k: v for k, v in common.items() if labels.get(k) == v}
    return common


def listed(state: State, inc: IncidentState) -> list[Tracked]:
    tracked = state.tracked
    return [t for fp in inc.exemplars if (t := tracked.get(fp)) is not None]


def alert_view(t: Tracked) -> IncidentAlert:
    kind, notes = t.kind, t.notes
    note_values = (notes,) if kind.n_notes == 1 else notes  # Kind.note_values, inlined
    return IncidentAlert(
        fingerprint=t.fingerprint,
        labels=dict(zip(kind.labels, t.values, strict=False)),
        annotations=dict(zip(kind.notes, note_values, strict=False)),  # type: ignore[arg-type]
        status=t.status,  # type: ignore[arg-type]
        starts_at=t.starts_at,
        last_seen=t.last_seen,
        ends_at=t.ends_at if t.status == "firing" else t.resolved_at,
        duplicates=t.duplicates,
        source=kind.source,
        generator_url=kind.generator_url,
        severity=kind.severity,
    )


def wire_alert(t: Tracked) -> Alert:
    """The alert as the wire type, for readers (the HTTP API): its incident view's
    fields, with its first arrival and raw payload."""
    fields = msgspec.structs.asdict(alert_view(t))
    del fields["last_seen"], fields["duplicates"]
    return Alert(**fields, received_at=t.first_seen, raw=t.raw)


def classify(
    state: State,
    inc: IncidentState,
    lr: LiveRule,
    alerts: list[Tracked] | None = None,
    common: dict[str, str] | None = None,
) -> tuple[dict[str, str], Classification]:
    """The incident's labels (group + shared by its listed alerts) and classification;
    `alerts`: its listed alerts, and `common` the labels they share, when the caller
    has them already."""
    if alerts is None:
        alerts = listed(state, inc)
    if common is None:
        common = common_labels(alerts)
    labels = {**common, **inc.group}
    return labels, lr.classifier.classify(alerts, inc.alert_count, common)


def refresh(
    state: State,
    inc: IncidentState,
    lr: LiveRule,
    alerts: list[Tracked] | None = None,
    common: dict[str, str] | None = None,
) -> None:
    """Store the current labels, classification and title on the incident (the
    announcer calls it when it sends an event whose alerts changed); `alerts` and
    `common` as for `classify`."""
    labels, c = classify(state, inc, lr, alerts, common)
    inc.labels = labels
    inc.severity, inc.category, inc.priority = c.severity, c.category, c.priority
    inc.title = _title(inc, lr, labels)


def _title(inc: IncidentState, lr: LiveRule, labels: Mapping[str, str]) -> str:
    return render_template(lr.rule.title_template, _values(inc, labels))


def _values(inc: IncidentState, labels: Mapping[str, str]) -> dict[str, str]:
    return {**labels, "rule": inc.rule, "count": str(inc.alert_count)}


def _timeline(inc: IncidentState) -> list[TimelineEntry]:
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
    return timeline


def _summary(inc: IncidentState, lr: LiveRule, labels: Mapping[str, str]) -> dict[str, object]:
    """The fields every view of an incident carries."""
    return {
        "key": inc.key,
        "rule": inc.rule,
        "group": inc.group,
        "status": inc.status,
        "summary": render_template(lr.rule.incident.summary, _values(inc, labels)),
        "labels": dict(labels),
        "alert_count": inc.alert_count,
        "first_seen": inc.first_seen,
        "last_seen": inc.last_seen,
        "opened_at": inc.opened_at,
        "resolved_at": inc.resolved_at,
        "detected_at": inc.detected_at,
        "acknowledged_at": inc.acknowledged_at,
        "acknowledged_by": inc.acknowledged_by,
    }


def full_view(
    state: State,
    inc: IncidentState,
    lr: LiveRule,
    *,
    stored: bool,
    members: list[Tracked] | None = None,
) -> Incident:
    """The incident with its listed alerts and timeline. `stored`: use the classification
    the last event stored (what an event carries) rather than classifying afresh (what
    a reader asking now should see); `members`: its listed alerts, if the caller has them."""
    alerts = [alert_view(t) for t in (listed(state, inc) if members is None else members)]
    if stored:
        severity, category, priority, title = inc.severity, inc.category, inc.priority, inc.title
        labels: Mapping[str, str] = inc.labels
    else:
        labels, c = classify(state, inc, lr)
        severity, category, priority = c.severity, c.category, c.priority
        title = _title(inc, lr, labels)
    return Incident(
        severity=severity,  # type: ignore[arg-type]
        category=category,
        priority=priority,
        title=title,
        alerts=alerts,
        truncated_alerts=inc.alert_count - len(alerts),
        timeline=_timeline(inc),
        **_summary(inc, lr, labels),  # type: ignore[arg-type]
    )


def compact_view(inc: IncidentState, lr: LiveRule) -> Incident:
    """The incident's summary as its last refresh stored it: no alerts, no timeline."""
    return Incident(
        severity=inc.severity,  # type: ignore[arg-type]
        category=inc.category,
        priority=inc.priority,
        title=inc.title,
        truncated_alerts=inc.alert_count,
        **_summary(inc, lr, inc.labels),  # type: ignore[arg-type]
    )
