"""`Engine.acknowledge`: one `updated` event, a timeline entry, state the store saves."""

from __future__ import annotations

from correlate.delta import apply_delta
from correlate.state import State
from tests.support import T0, alert, count_rule, engine, run


def opened_engine():  # type: ignore[no-untyped-def]
    eng = engine(count_rule(gte=2))
    events = run(eng, [[alert("A", t=0, service="s"), alert("B", t=1, service="s")]])
    (opened,) = [e for e in events if e.event == "opened"]
    return eng, opened.incident.key


def test_acknowledging_sends_one_update_and_records_who_and_when() -> None:
    eng, key = opened_engine()
    eng.take_delta()
    fx = eng.acknowledge(key, "ada", T0 + 30)
    assert fx is not None
    (event,) = fx.events  # at once, not at the next spaced update
    assert (event.event, event.reason, event.sequence) == ("updated", "acknowledged", 2)
    assert (event.incident.acknowledged_at, event.incident.acknowledged_by) == (T0 + 30, "ada")
    view = eng.incident(key)
    assert view is not None and view.acknowledged_by == "ada"
    assert view.timeline[-1].event == "acknowledged" and view.timeline[-1].detail == "ada"
    replica = State()
    apply_delta(replica, eng.take_delta())
    assert replica.incidents[key].acknowledged_at == T0 + 30, "the store would not save it"


def test_a_second_acknowledgement_an_unknown_and_a_resolved_incident_send_nothing() -> None:
    eng, key = opened_engine()
    assert eng.acknowledge(key, "ada", T0 + 30)
    assert eng.acknowledge(key, "bob", T0 + 40) is None
    assert eng.incident(key).acknowledged_by == "ada"  # type: ignore[union-attr]
    assert eng.acknowledge("inc-nope", "ada", T0) is None
    eng2, key2 = opened_engine()
    run(
        eng2,
        [
            [
                alert("A", t=2, service="s", status="resolved"),
                alert("B", t=2, service="s", status="resolved"),
            ]
        ],
    )
    assert eng2.incident(key2).status == "resolved"  # type: ignore[union-attr]
    assert eng2.acknowledge(key2, "ada", T0 + 50) is None
