"""Every row of sinks/coalesce.py's table, and the properties that make it safe."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sinks.coalesce import coalesce, fold, merge_changes
from stormwatch.wire import IncidentChanges, IncidentEvent
from tests.support_sinks import alert, incident_event


def kinds(events: list[IncidentEvent]) -> list[tuple[str, int]]:
    return [(e.event, e.sequence) for e in events]


def test_nothing_waiting_takes_the_newer() -> None:
    assert kinds(coalesce([], incident_event("updated", 3))) == [("updated", 3)]


def test_an_older_or_repeated_event_never_lands_after_a_newer_one() -> None:
    waiting = [incident_event("updated", 5)]
    assert coalesce(waiting, incident_event("opened", 1)) == waiting
    assert coalesce(waiting, incident_event("updated", 5)) == waiting


def test_opened_then_updated_is_opened_with_the_update_applied() -> None:
    opened = incident_event("opened", 1, alerts=2)
    update = incident_event(
        "updated",
        2,
        alerts=3,
        compact=True,
        severity="P1",
        acknowledged_by="ada",
        changes=IncidentChanges(alerts_added=[alert(2)], alerts_resolved=[alert(0).fingerprint]),
    )
    (out,) = coalesce([opened], update)
    assert (out.event, out.sequence, out.changes) == ("opened", 2, None)
    inc = out.incident
    assert inc.severity == "P1" and inc.acknowledged_by == "ada" and inc.alert_count == 3
    assert [(a.fingerprint, a.status) for a in inc.alerts] == [
        (alert(0).fingerprint, "resolved"),
        (alert(1).fingerprint, "firing"),
        (alert(2).fingerprint, "firing"),
    ]
    assert opened.incident.alerts[0].status == "firing", "the waiting event was changed"


def test_opened_then_a_full_update_keeps_the_updates_alerts() -> None:
    (out,) = coalesce(
        [incident_event("opened", 1, alerts=1)], incident_event("updated", 2, alerts=4)
    )
    assert out.event == "opened" and len(out.incident.alerts) == 4


def test_opened_then_resolved_keeps_both_so_the_sink_opens_then_closes() -> None:
    out = coalesce([incident_event("opened", 1)], incident_event("resolved", 4))
    assert kinds(out) == [("opened", 1), ("resolved", 4)]


def test_a_newer_opened_replaces_what_waits() -> None:
    assert kinds(coalesce([incident_event("opened", 1)], incident_event("opened", 2))) == [
        ("opened", 2)
    ]
    assert kinds(coalesce([incident_event("updated", 2)], incident_event("opened", 3))) == [
        ("opened", 3)
    ]


def test_updated_then_updated_merges_changes() -> None:
    a = incident_event(
        "updated",
        2,
        compact=True,
        severity="P3",
        changes=IncidentChanges(
            alerts_added=[alert(1)], duplicates=2, previous_severity="P4", previous_priority=4
        ),
    )
    b = incident_event(
        "updated",
        3,
        compact=True,
        severity="P1",
        changes=IncidentChanges(
            alerts_added=[alert(2)],
            alerts_resolved=[alert(1).fingerprint],
            duplicates=1,
            previous_severity="P3",
            previous_priority=3,
        ),
    )
    b.reason = "alerts_added,severity"
    a.reason = "alerts_added,duplicates"
    (out,) = coalesce([a], b)
    assert (out.event, out.sequence, out.incident.severity) == ("updated", 3, "P1")
    assert out.reason == "alerts_added,duplicates,severity"
    ch = out.changes
    assert ch is not None
    assert [x.fingerprint for x in ch.alerts_added] == [alert(1).fingerprint, alert(2).fingerprint]
    assert ch.alerts_resolved == [alert(1).fingerprint]
    assert (ch.duplicates, ch.previous_severity, ch.previous_priority) == (3, "P4", 4)


def test_a_refired_alert_leaves_alerts_resolved_and_a_change_undone_is_no_change() -> None:
    older = IncidentChanges(
        alerts_resolved=[alert(1).fingerprint], previous_severity="P2", previous_priority=2
    )
    newer = IncidentChanges(alerts_added=[alert(1)], previous_severity="P1", previous_priority=1)
    merged = merge_changes(older, newer, "P2", 2)
    assert merged is not None
    assert merged.alerts_resolved == [] and [a.fingerprint for a in merged.alerts_added] == [
        alert(1).fingerprint
    ]
    assert merged.previous_severity is None and merged.previous_priority is None
    assert merge_changes(None, None, "P2", 2) is None


def test_updated_then_resolved_is_the_resolved() -> None:
    assert kinds(coalesce([incident_event("updated", 2)], incident_event("resolved", 3))) == [
        ("resolved", 3)
    ]


def test_resolved_is_final() -> None:
    waiting = [incident_event("opened", 1), incident_event("resolved", 2)]
    assert coalesce(waiting, incident_event("updated", 3)) == waiting
    assert coalesce([incident_event("resolved", 2)], incident_event("opened", 3)) == [
        incident_event("resolved", 2)
    ]


def test_fold_takes_events_in_any_order() -> None:
    events = [
        incident_event("resolved", 4),
        incident_event("opened", 1),
        incident_event("updated", 2),
    ]
    assert kinds(fold(events)) == [("opened", 2), ("resolved", 4)]


@st.composite
def lifecycles(draw: st.DrawFn) -> list[IncidentEvent]:
    """An incident's events: opened, updates (alerts, severity), maybe resolved."""
    n = draw(st.integers(0, 6))
    out = [incident_event("opened", 1, alerts=1)]
    severity = "P3"
    for i in range(n):
        new = draw(st.sampled_from(["P1", "P2", "P3", "P4"]))
        ch = IncidentChanges(
            alerts_added=[alert(i + 1)],
            previous_severity=severity if new != severity else None,
        )
        out.append(
            incident_event("updated", i + 2, alerts=i + 2, compact=True, severity=new, changes=ch)
        )
        severity = new
    if draw(st.booleans()):
        out.append(incident_event("resolved", n + 2, alerts=n + 1, severity=severity))
    return out


@given(events=lifecycles(), cut=st.integers(0, 8))
def test_at_most_two_events_wait_and_the_last_is_the_latest_state(
    events: list[IncidentEvent], cut: int
) -> None:
    """Whatever the sink already had (the first `cut` events), what waits is at most
    [opened, resolved] and ends with the newest event's state."""
    waiting: list[IncidentEvent] = []
    for e in events[cut:]:
        waiting = coalesce(waiting, e)
    if not events[cut:]:
        return
    assert 1 <= len(waiting) <= 2
    last, newest = waiting[-1], events[-1]
    assert last.sequence == newest.sequence
    assert last.incident.severity == newest.incident.severity
    assert last.incident.status == newest.incident.status
    if len(waiting) == 2:
        assert kinds(waiting)[0][0] == "opened" and last.event == "resolved"
    if cut == 0:
        assert waiting[0].event == "opened", "a sink that never had it must open it"
        updates = sum(e.event == "updated" for e in events)
        assert {a.fingerprint for a in waiting[0].incident.alerts} == {
            alert(j).fingerprint for j in range(updates + 1)
        }, "the opened lost an alert an update added"
