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

from correlate.classify import Classification
from correlate.rulebook import LiveRule
from correlate.state import IncidentState, State, Tracked
from rules import fill_placeholders
from stormwatch.wire import Incident, IncidentAlert, TimelineEntry

__all__ = [
    "alert_view",
    "classify",
    "common_labels",
    "compact_view",
    "full_view",
    "listed",
    "refresh",
    "render_template",
]


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Fill `{label}` placeholders (UTF-8 names too: `{service.name}`); an unknown
    placeholder stays as written."""
    return fill_placeholders(template, values)


def common_labels(alerts: Sequence[Tracked]) -> dict[str, str]:
    """The label pairs every alert shares, in the first alert's order (sets of pairs
    intersect in C; alerts of one kind are compared value by value)."""
    if not alerts:
        return {}
    first = alerts[0]
    names, values = first.kind.labels, first.values
    common: set[tuple[str, str]] | None = None
    for t in alerts:
        if t.values is values:
            continue
        if common is None:
            common = set(zip(names, values, strict=True))
        common.intersection_update(zip(t.kind.labels, t.values, strict=True))
        if not common:
            return {}
    if common is None:
        return dict(zip(names, values, strict=True))
    return {k: v for k, v in zip(names, values, strict=True) if (k, v) in common}


def listed(state: State, inc: IncidentState) -> list[Tracked]:
    tracked = state.tracked
    return [t for fp in inc.exemplars if (t := tracked.get(fp)) is not None]


def alert_view(t: Tracked) -> IncidentAlert:
    return IncidentAlert(**t.wire_fields(), last_seen=t.last_seen, duplicates=t.duplicates)


def classify(
    state: State, inc: IncidentState, lr: LiveRule
) -> tuple[dict[str, str], Classification]:
    """The incident's labels (group + shared by its listed alerts) and classification."""
    alerts = listed(state, inc)
    common = common_labels(alerts)
    labels = {**common, **inc.group}
    return labels, lr.classifier.classify(alerts, inc.alert_count, common)


def refresh(state: State, inc: IncidentState, lr: LiveRule) -> None:
    """Store the current labels, classification and title on the incident (the
    announcer calls it when it sends an event whose alerts changed)."""
    labels, c = classify(state, inc, lr)
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


def full_view(state: State, inc: IncidentState, lr: LiveRule, *, stored: bool) -> Incident:
    """The incident with its listed alerts and timeline. `stored`: use the classification
    the last event stored (what an event carries) rather than classifying afresh (what
    a reader asking now should see)."""
    alerts = [alert_view(t) for t in listed(state, inc)]
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
