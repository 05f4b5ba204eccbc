"""The core's contract, stated as properties over generated alert streams (batching and
order within an instant: test_batch_invariance.py)."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from stormwatch.wire import Alert, IncidentEvent
from tests.support import alert, count_rule, engine, run

RULES = (
    count_rule("burst", gte=3, timespan=60),
    count_rule("pair", gte=2, timespan=20, group_by=("service", "alertname")),
)


@st.composite
def alert_streams(draw: st.DrawFn) -> list[Alert]:
    """Alerts in event-time order: few names and services so windows really fill."""
    n = draw(st.integers(1, 40))
    t, out = 0.0, []
    for _ in range(n):
        t += draw(st.sampled_from([0, 1, 5, 15, 40, 90]))
        out.append(
            alert(
                draw(st.sampled_from("ABCDEF")),
                t=t,
                status=draw(st.sampled_from(["firing"] * 4 + ["resolved"])),
                service=draw(st.sampled_from(["x", "y"])),
            )
        )
    return out


def incidents_of(events: list[IncidentEvent]) -> list[tuple[str, str, frozenset[str]]]:
    """Opened and resolved incidents with the alerts they held: what a ticket system sees."""
    return [
        (e.event, e.incident.key, frozenset(a.fingerprint for a in e.incident.alerts))
        for e in events
        if e.event != "updated"
    ]


def batches_of(stream: list[Alert], size: int) -> list[list[Alert]]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


@settings(max_examples=150, deadline=None)
@given(stream=alert_streams(), copies=st.integers(1, 5), size=st.integers(1, 8))
def test_sending_an_alert_many_times_equals_sending_it_once(
    stream: list[Alert], copies: int, size: int
) -> None:
    once = incidents_of(run(engine(*RULES), batches_of(stream, size)))
    many_stream = [a for a in stream for _ in range(copies)]
    many = incidents_of(run(engine(*RULES), batches_of(many_stream, size * copies)))
    assert once == many


@settings(max_examples=100, deadline=None)
@given(stream=alert_streams(), cut=st.integers(0, 40))
def test_snapshot_restore_gives_the_same_future(stream: list[Alert], cut: int) -> None:
    from correlate import Engine

    before, after = stream[:cut], stream[cut:]
    straight = engine(*RULES)
    run(straight, [[a] for a in before])
    restored = Engine.restore(straight.rules, straight.snapshot(), straight.config)
    expect = run(straight, [[a] for a in after], tick=True)
    got = run(restored, [[a] for a in after], tick=True)
    assert [(e.event, e.reason, e.incident.key, e.sequence) for e in expect] == [
        (e.event, e.reason, e.incident.key, e.sequence) for e in got
    ]


def _naive_first_open(times: list[float], gte: int, span: float) -> float | None:
    """Oracle: the event time of the first alert whose trailing window holds `gte`."""
    seen: list[float] = []
    for t in times:
        seen.append(t)
        if sum(1 for s in seen if t - span <= s <= t) >= gte:
            return t
    return None


@settings(max_examples=200, deadline=None)
@given(gaps=st.lists(st.integers(0, 50), min_size=1, max_size=30), gte=st.integers(1, 6))
def test_count_window_opens_exactly_when_a_naive_recount_says(gaps: list[int], gte: int) -> None:
    t, stream = 0.0, []
    for i, g in enumerate(gaps):
        t += g
        stream.append(alert(f"A{i}", t=t, service="s"))
    eng = engine(count_rule(gte=gte, timespan=60))
    opened = [e for e in run(eng, [[a] for a in stream]) if e.event == "opened"]
    expect = _naive_first_open([a.starts_at for a in stream], gte, 60)
    if expect is None:
        assert opened == []
    else:
        assert len(opened) == 1
        assert opened[0].incident.last_seen == expect


def _naive_first_distinct(events: list[tuple[float, str]], need: int, span: float) -> float | None:
    """Oracle: the first arrival whose trailing window holds `need` distinct values."""
    seen: list[tuple[float, str]] = []
    for t, v in events:
        seen.append((t, v))
        if len({x for s, x in seen if t - span <= s <= t}) >= need:
            return t
    return None


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 40), st.sampled_from("abcde")), min_size=1, max_size=30
    ),
    need=st.integers(1, 4),
)
def test_value_count_opens_exactly_when_a_naive_recount_says(
    steps: list[tuple[int, str]], need: int
) -> None:
    from rules.schema import Condition, Rule, ValueCount
    from stormwatch.wire import Duration

    rule = Rule(
        name="distinct",
        correlation=ValueCount(
            group_by=["service"], timespan=Duration(60), condition=Condition(gte=need, field="host")
        ),
    )
    t, stream = 0.0, []
    for i, (gap, host) in enumerate(steps):
        t += gap
        stream.append(alert(f"A{i}", t=t, service="s", host=host))
    opened = [e for e in run(engine(rule), [[a] for a in stream]) if e.event == "opened"]
    expect = _naive_first_distinct([(a.starts_at, a.labels["host"]) for a in stream], need, 60)
    if expect is None:
        assert opened == []
    else:
        assert len(opened) == 1
        assert opened[0].incident.last_seen == expect


def _all_types() -> tuple[object, ...]:
    from rules.schema import (
        Absence,
        Condition,
        Group,
        Rule,
        Temporal,
        TemporalOrdered,
        ValueCount,
    )
    from stormwatch.wire import Duration

    a = Rule(name="is-a", match=['alertname="A"'])
    b = Rule(name="is-b", match=['alertname="B"'])
    return (
        *RULES,
        a,
        b,
        Rule(
            name="vc",
            correlation=ValueCount(
                group_by=["service"],
                timespan=Duration(60),
                condition=Condition(gte=2, field="alertname"),
            ),
        ),
        Rule(
            name="tmp",
            correlation=Temporal(
                group_by=["service"], timespan=Duration(60), rules=["is-a", "is-b"]
            ),
        ),
        Rule(
            name="ord",
            correlation=TemporalOrdered(
                group_by=["service"], timespan=Duration(60), rules=["is-a", "is-b"]
            ),
        ),
        Rule(
            name="abs",
            match=['alertname="C"'],
            correlation=Absence(group_by=["service"], timespan=Duration(30)),
        ),
        Rule(
            name="grp",
            match=['alertname="D"'],
            correlation=Group(group_by=["service"], group_wait=Duration(10)),
        ),
    )


@settings(max_examples=100, deadline=None)
@given(stream=alert_streams(), cut=st.integers(0, 40))
def test_snapshot_restore_gives_the_same_future_for_every_correlation_type(
    stream: list[Alert], cut: int
) -> None:
    from correlate import Engine

    rules = _all_types()
    before, after = stream[:cut], stream[cut:]
    straight = engine(*rules)  # type: ignore[arg-type]
    run(straight, [[a] for a in before])
    restored = Engine.restore(straight.rules, straight.snapshot(), straight.config)
    expect = run(straight, [[a] for a in after], tick=True)
    got = run(restored, [[a] for a in after], tick=True)
    assert [(e.event, e.reason, e.incident.key, e.sequence) for e in expect] == [
        (e.event, e.reason, e.incident.key, e.sequence) for e in got
    ]


def _same_state(a: object, b: object) -> bool:
    enc = msgspec.json.Encoder(order="sorted")
    return enc.encode(a) == enc.encode(b)


@settings(max_examples=150, deadline=None)
@given(stream=alert_streams(), size=st.integers(1, 6), reload_at=st.integers(0, 10))
def test_replaying_every_delta_rebuilds_the_engines_state(
    stream: list[Alert], size: int, reload_at: int
) -> None:
    """A store saves deltas; a missed change mark would lose state across a restart.
    Each delta goes through JSON as a store's does, so the replica shares no object with
    the engine and a change nobody marked shows."""
    from correlate.delta import StateDelta
    from correlate.delta import apply_delta as apply
    from correlate.state import State
    from rules import RuleSet

    def apply_delta(state: State, delta: StateDelta) -> None:
        apply(state, msgspec.json.decode(msgspec.json.encode(delta), type=StateDelta))

    rules = _all_types()
    eng = engine(*rules, retention=120)  # type: ignore[arg-type]
    replica = State()
    for i, batch in enumerate(batches_of(stream, size)):
        now = max(a.received_at for a in batch)
        eng.process(batch, now)
        apply_delta(replica, eng.take_delta())
        assert _same_state(replica, eng.state)
        eng.tick(now + 30)
        if i == reload_at:
            eng.reload(RuleSet(rules=tuple(r for r in eng.rules.rules if r.name != "vc")))  # type: ignore[union-attr]
        apply_delta(replica, eng.take_delta())
        assert _same_state(replica, eng.state)
    eng.tick((stream[-1].received_at if stream else 0) + 10_000)  # expiry and forgetting
    apply_delta(replica, eng.take_delta())
    assert _same_state(replica, eng.state)
