"""The dedup table keeps each alert compact (correlate/state.py `Tracked`, `Kind`): what
the views, re-sends and a restore must still see of it."""

from __future__ import annotations

import msgspec

from correlate import Engine
from rules import RuleSet
from stormwatch.wire import Alert
from tests.support import T0, alert, count_rule, engine, run


def _with(a: Alert, t: float, **annotations: str) -> Alert:
    return msgspec.structs.replace(a, annotations=annotations, received_at=T0 + t)


def test_views_show_the_alert_as_it_arrived() -> None:
    eng = engine(count_rule(gte=1))
    a = msgspec.structs.replace(
        alert("A", service="s", severity="critical"),
        annotations={"summary": "down", "runbook": "http://r"},
        generator_url="http://prom/graph",
    )
    opened = run(eng, [[a]])
    (view,) = opened[0].incident.alerts
    assert view.labels == a.labels and list(view.labels) == list(a.labels)
    assert view.annotations == a.annotations
    assert (view.source, view.severity, view.generator_url) == (
        "alertmanager",
        "critical",
        "http://prom/graph",
    )
    assert view.starts_at == a.starts_at and view.fingerprint == a.fingerprint


def test_a_resend_with_other_annotations_replaces_them_and_writes_the_alert() -> None:
    eng = engine(count_rule(gte=1))
    first = _with(alert("A", service="s"), 0, summary="one")
    key = run(eng, [[first]])[0].incident.key
    fp = first.fingerprint
    eng.take_delta()
    steps: list[dict[str, str]] = [
        {"summary": "one"},  # unchanged: a heartbeat only
        {"summary": "two"},  # another value
        {"description": "two"},  # the same value under another name
        {"description": "two", "summary": "three"},
        {"summary": "three", "description": "two"},  # equal: the same pairs, reordered
        {},
    ]
    written = []
    for i, notes in enumerate(steps, start=1):
        run(eng, [[_with(first, i, **notes)]])
        view = eng.incident(key)
        assert view is not None and view.alerts[0].annotations == notes
        delta = eng.take_delta()
        written.append(fp in delta.tracked)
        assert written[-1] or fp in delta.beats
    assert written == [False, True, True, True, False, True]


def test_a_restored_engine_shares_kinds_and_keys_and_shows_the_same_alerts() -> None:
    rule = count_rule(gte=3)
    eng = engine(rule)
    alerts = [
        _with(alert("A", t=i, service="s", instance=f"h{i}"), i, summary=f"s{i}") for i in range(2)
    ]
    run(eng, [alerts])
    restored = Engine.restore(RuleSet(rules=(rule,)), eng.snapshot(), eng.config)
    tracked = restored.state.tracked
    one, two = (tracked[a.fingerprint] for a in alerts)
    assert one.kind is two.kind
    assert all(t.fingerprint is fp for fp, t in tracked.items())
    assert [(t.labels, t.annotations) for t in (one, two)] == [
        (a.labels, a.annotations) for a in alerts
    ]
    third = _with(alert("A", t=2, service="s", instance="h2"), 2, summary="s2")
    a, b = run(eng, [[third]]), run(restored, [[third]])
    assert [e.incident.alerts for e in a] == [e.incident.alerts for e in b]
    assert len(a) == 1
