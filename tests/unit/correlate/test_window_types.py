"""Each correlation type as a scenario table: alerts at event times (seconds after T0),
and the incident events expected after them."""

from __future__ import annotations

from correlate import Engine
from rules.schema import (
    Absence,
    ClassifyCase,
    ClassifyWhen,
    Condition,
    EventCount,
    Group,
    IncidentSpec,
    ResolveSpec,
    Rule,
    Temporal,
    TemporalOrdered,
    ValueCount,
)
from stormwatch.wire import Duration
from tests.support import T0, alert, engine, run


def rule(name: str, corr: object, match: list[str] | None = None, **kw: object) -> Rule:
    return Rule(name=name, match=match or [], correlation=corr, **kw)  # type: ignore[arg-type]


def kinds(events: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(e.event, e.incident.rule) for e in events]


def test_value_count_counts_distinct_hosts_not_alerts() -> None:
    r = rule(
        "spread",
        ValueCount(
            group_by=["service"],
            timespan=Duration(300),
            condition=Condition(gte=3, field="instance"),
        ),
    )
    eng = engine(r)
    # t:  0 h1   10 h1(other alert)   20 h2   -> 2 distinct: no
    assert (
        run(
            eng,
            [
                [alert("A", t=0, service="s", instance="h1")],
                [alert("B", t=10, service="s", instance="h1")],
                [alert("C", t=20, service="s", instance="h2")],
            ],
        )
        == []
    )
    # t: 30 h3 -> 3 distinct within 5m: opens
    events = run(eng, [[alert("D", t=30, service="s", instance="h3")]])
    assert kinds(events) == [("opened", "spread")]
    assert "3 distinct instance" in events[0].incident.timeline[0].detail


def test_temporal_needs_every_named_rule_in_any_order() -> None:
    failed = Rule(name="login-failed", match=['alertname="LoginFailed"'])
    ok = Rule(name="login-ok", match=['alertname="LoginOK"'])
    both = rule(
        "brute-force-success",
        Temporal(group_by=["user"], timespan=Duration(300), rules=["login-failed", "login-ok"]),
    )
    eng = engine(failed, ok, both)
    # t: 0 ok(u1)  100 failed(u2)  -> different users: no
    assert (
        run(eng, [[alert("LoginOK", t=0, user="u1")], [alert("LoginFailed", t=100, user="u2")]])
        == []
    )
    # t: 120 failed(u1) -> u1 has both within 5m (ok came first: order is free)
    events = run(eng, [[alert("LoginFailed", t=120, user="u1")]])
    assert kinds(events) == [("opened", "brute-force-success")]
    assert events[0].incident.group == {"user": "u1"}


def test_temporal_aliases_join_differently_named_fields() -> None:
    scan = Rule(name="scan", match=['alertname="PortScan"'])
    conn = Rule(name="conn", match=['alertname="OutboundConn"'])
    both = rule(
        "scan-then-connect",
        Temporal(
            group_by=["ip"],
            timespan=Duration(600),
            rules=["scan", "conn"],
            aliases={"ip": {"scan": "dst_ip", "conn": "src_ip"}},
        ),
    )
    eng = engine(scan, conn, both)
    events = run(
        eng,
        [
            [alert("PortScan", t=0, dst_ip="10.0.0.5")],
            [alert("OutboundConn", t=30, src_ip="10.0.0.5")],
        ],
    )
    assert kinds(events) == [("opened", "scan-then-connect")]
    assert events[0].incident.group == {"ip": "10.0.0.5"}


def test_temporal_ordered_wants_the_listed_order() -> None:
    steps = [Rule(name=n, match=[f'alertname="{n}"']) for n in ("scan", "exploit", "exfil")]
    chain = rule(
        "kill-chain",
        TemporalOrdered(
            group_by=["host"], timespan=Duration(600), rules=["scan", "exploit", "exfil"]
        ),
    )
    eng = engine(*steps, chain)
    # out of order for h1: exploit, scan, exfil -> no
    assert (
        run(
            eng,
            [
                [alert("exploit", t=0, host="h1")],
                [alert("scan", t=10, host="h1")],
                [alert("exfil", t=20, host="h1")],
            ],
        )
        == []
    )
    eng = engine(*steps, chain, resolve_timeout=10_000)
    events = run(
        eng,
        [
            [alert("scan", t=0, host="h2")],
            [alert("exploit", t=100, host="h2")],
            [alert("exfil", t=300, host="h2")],
        ],
    )
    assert kinds(events) == [("opened", "kill-chain")]
    assert "scan -> exploit -> exfil" in events[0].incident.timeline[0].detail


def test_temporal_ordered_outside_the_timespan_is_nothing() -> None:
    steps = [Rule(name=n, match=[f'alertname="{n}"']) for n in ("a", "b")]
    chain = rule("ab", TemporalOrdered(group_by=[], timespan=Duration(60), rules=["a", "b"]))
    eng = engine(*steps, chain)
    assert run(eng, [[alert("a", t=0)], [alert("b", t=61)]]) == []


def test_absence_opens_when_the_heartbeat_stops_and_resolves_when_it_returns() -> None:
    dead = rule(
        "watchdog-missing",
        Absence(group_by=["cluster"], timespan=Duration(600)),
        match=['alertname="Watchdog"'],
    )
    eng = engine(dead, resolve_timeout=10_000)
    eng.process([alert("Watchdog", t=0, cluster="c1")], T0)
    # Re-sends are the heartbeat: they keep it alive although they are duplicates.
    eng.process([alert("Watchdog", t=500, cluster="c1")], T0 + 500)
    assert eng.tick(T0 + 1099).events == []
    events = eng.tick(T0 + 1100).events
    assert kinds(events) == [("opened", "watchdog-missing")]
    assert events[0].incident.group == {"cluster": "c1"}
    assert events[0].incident.opened_at == T0 + 1100  # the beat at 500 + 10m, not the tick
    back = eng.process([alert("Watchdog", t=1200, cluster="c1")], T0 + 1200).events
    assert [(e.event, e.reason) for e in back] == [("resolved", "a matching alert arrived again")]


def test_group_waits_then_opens_one_incident_with_everything_that_arrived() -> None:
    g = rule(
        "by-team",
        Group(
            group_by=["team"],
            group_wait=Duration(30),
            group_interval=Duration(60),
            repeat_interval=Duration(3600),
        ),
    )
    eng = engine(g, resolve_timeout=100_000)
    eng.process([alert("A", t=0, team="t1")], T0)
    eng.process([alert("B", t=10, team="t1")], T0 + 10)
    assert eng.tick(T0 + 29).events == []
    events = eng.tick(T0 + 30).events
    assert kinds(events) == [("opened", "by-team")]
    assert events[0].incident.alert_count == 2
    eng.process([alert("C", t=40, team="t1")], T0 + 40)
    assert eng.tick(T0 + 60).events == []  # group_interval 60s since the opened event
    assert [e.reason for e in eng.tick(T0 + 90).events] == ["alerts_added"]
    assert [e.reason for e in eng.tick(T0 + 90 + 3600).events] == ["repeat_interval"]


def test_group_whose_alerts_resolve_during_group_wait_sends_nothing() -> None:
    g = rule("by-team", Group(group_by=["team"], group_wait=Duration(30)))
    eng = engine(g)
    eng.process([alert("A", t=0, team="t1")], T0)
    eng.process([alert("A", t=5, team="t1", status="resolved")], T0 + 5)
    assert eng.tick(T0 + 30).events == []


def test_event_count_at_most_fires_when_a_full_window_is_too_quiet() -> None:
    r = rule(
        "too-few-orders",
        EventCount(group_by=["shop"], timespan=Duration(60), condition=Condition(lt=2)),
        match=['alertname="Order"'],
    )
    eng = engine(r)
    # clock: 0 (first order: the group is observed from here)  10  ... 60: a full window
    # has passed and the order at 0 leaves it: (0s, 60s] holds one order -> 1 < 2
    run(eng, [[alert("Order", t=0, shop="a", id="1")], [alert("Order", t=10, shop="a", id="2")]])
    assert eng.tick(T0 + 59).events == []  # no full window observed yet
    events = run(eng, [[alert("Other", t=100, shop="b")]])  # the clock passes 60
    assert kinds(events) == [("opened", "too-few-orders")]
    assert events[0].incident.opened_at == T0 + 60
    assert "only 1 matching alerts" in events[0].incident.timeline[0].detail
    # Two orders within a minute again: resolved, at the second one's event time.
    again = run(
        eng, [[alert("Order", t=110, shop="a", id="3")], [alert("Order", t=120, shop="a", id="4")]]
    )
    assert [(e.event, e.at) for e in again] == [("resolved", T0 + 120)]


def test_hysteresis_resolves_when_the_rate_falls_below_the_clear_threshold() -> None:
    r = rule(
        "flapping",
        EventCount(group_by=["service"], timespan=Duration(60), condition=Condition(gte=2)),
        resolve=ResolveSpec(condition=Condition(lte=0), timespan=Duration(300)),
    )
    eng = engine(r, resolve_timeout=100_000)
    run(eng, [[alert("A", t=0, service="s"), alert("B", t=1, service="s")]])
    eng.process([alert("C", t=200, service="s")], T0 + 200)
    assert [e.event for e in eng.tick(T0 + 400).events] == ["updated"]  # C fed it 200s ago
    events = eng.tick(T0 + 501).events
    assert [(e.event, e.reason) for e in events] == [
        ("resolved", "0 matching alerts in the last 5m")
    ]


def test_classify_cases_set_severity_category_and_itil_priority() -> None:
    r = Rule(
        name="burst",
        correlation=EventCount(
            group_by=["service"], timespan=Duration(60), condition=Condition(gte=2)
        ),
        incident=IncidentSpec(title="{service}", severity="P3", category="performance"),
        classify=[
            ClassifyCase(
                when=ClassifyWhen(alert_severity=["critical"]),
                severity="P1",
                category="availability",
                impact=1,
                urgency=1,
            ),
            ClassifyCase(
                when=ClassifyWhen(min_distinct={"instance": 2}), severity="P2", impact=2, urgency=2
            ),
        ],
    )
    crit = run(
        engine(r),
        [[alert("A", t=0, service="s", severity="critical"), alert("B", t=1, service="s")]],
    )
    assert (crit[0].incident.severity, crit[0].incident.category, crit[0].incident.priority) == (
        "P1",
        "availability",
        1,
    )
    wide = run(
        engine(r),
        [
            [
                alert("A", t=0, service="s", instance="h1"),
                alert("B", t=1, service="s", instance="h2"),
            ]
        ],
    )
    assert (wide[0].incident.severity, wide[0].incident.category, wide[0].incident.priority) == (
        "P2",
        "performance",
        3,
    )
    plain = run(engine(r), [[alert("A", t=0, service="s"), alert("B", t=1, service="s")]])
    assert (plain[0].incident.severity, plain[0].incident.priority) == ("P3", 3)


def _silenced_burst(ends_after: float) -> Engine:
    """A burst rule, and a silence on service s from T0 for `ends_after` seconds."""
    from correlate.suppress import Silence

    r = rule(
        "burst",
        EventCount(group_by=["service"], timespan=Duration(600), condition=Condition(gte=2)),
    )
    eng = engine(r, resolve_timeout=1000)
    silence = Silence(id="maint", matchers=['service="s"'], starts_at=T0, ends_at=T0 + ends_after)
    eng.add_silence(silence, T0)
    return eng


def test_silenced_alerts_feed_no_rule_until_the_silence_ends() -> None:
    eng = _silenced_burst(100)
    fx = eng.process([alert("A", t=0, service="s"), alert("B", t=1, service="s")], T0 + 1)
    assert fx.events == [] and fx.counts.silenced == 2
    assert eng.tick(T0 + 99).events == []
    # clock 100: the silence ends; A and B still fire, so they feed the rule now.
    events = eng.tick(T0 + 100).events
    assert [(e.event, e.at, e.incident.alert_count) for e in events] == [("opened", T0 + 100, 2)]


def test_alerts_that_resolve_under_a_silence_never_feed_the_rules() -> None:
    eng = _silenced_burst(100)
    eng.process([alert("A", t=0, service="s"), alert("B", t=1, service="s")], T0 + 1)
    eng.process([alert("A", t=50, service="s", status="resolved")], T0 + 50)
    assert eng.tick(T0 + 100).events == []  # only B is left: one alert is not a burst
    assert eng.expire_silence("maint", T0 + 101) is None  # already over


def test_expiring_a_silence_early_releases_its_alerts_at_that_moment() -> None:
    eng = _silenced_burst(3600)
    eng.process([alert("A", t=0, service="s"), alert("B", t=1, service="s")], T0 + 1)
    fx = eng.expire_silence("maint", T0 + 30)
    assert fx is not None
    assert [(e.event, e.at) for e in fx.events] == [("opened", T0 + 30)]


def test_open_p1_inhibits_lower_incidents_of_the_same_service_until_it_resolves() -> None:
    p1 = Rule(
        name="crit",
        match=['severity="critical"'],
        correlation=EventCount(
            group_by=["service"], timespan=Duration(60), condition=Condition(gte=1)
        ),
        incident=IncidentSpec(severity="P1"),
    )
    p3 = Rule(
        name="warn",
        match=['severity="warning"'],
        correlation=EventCount(
            group_by=["service"], timespan=Duration(60), condition=Condition(gte=1)
        ),
        incident=IncidentSpec(severity="P3"),
    )
    eng = engine(p1, p3)
    assert kinds(run(eng, [[alert("Down", t=0, service="s", severity="critical")]])) == [
        ("opened", "crit")
    ]
    assert run(eng, [[alert("Slow", t=1, service="s", severity="warning")]]) == []  # held back
    other = run(eng, [[alert("Slow", t=2, service="other", severity="warning")]])
    assert kinds(other) == [("opened", "warn")]  # a different service is not inhibited
    events = run(eng, [[alert("Down", t=3, service="s", severity="critical", status="resolved")]])
    assert [(e.event, e.incident.rule, e.reason) for e in events] == [
        ("resolved", "crit", "all alerts resolved"),
        ("opened", "warn", "no longer inhibited"),
    ]


def test_a_held_incident_stays_held_while_another_inhibitor_of_its_service_is_open() -> None:
    p1 = Rule(
        name="crit",
        match=['severity="critical"'],
        correlation=EventCount(
            group_by=["service", "alertname"], timespan=Duration(60), condition=Condition(gte=1)
        ),
        incident=IncidentSpec(severity="P1"),
    )
    p3 = Rule(
        name="warn",
        match=['severity="warning"'],
        correlation=EventCount(
            group_by=["service"], timespan=Duration(60), condition=Condition(gte=1)
        ),
        incident=IncidentSpec(severity="P3"),
    )
    eng = engine(p1, p3, resolve_timeout=10_000)
    run(
        eng,
        [
            [alert("Down", t=0, service="s", severity="critical")],
            [alert("Slow", t=1, service="other", severity="critical")],
            [alert("Gone", t=2, service="s", severity="critical")],
        ],
    )
    assert run(eng, [[alert("Lag", t=3, service="s", severity="warning")]]) == []  # held
    # The other service's P1 resolving releases nothing of service s.
    other = run(
        eng, [[alert("Slow", t=4, service="other", severity="critical", status="resolved")]]
    )
    assert [(e.event, e.incident.rule) for e in other] == [("resolved", "crit")]
    # One of the two P1s of s resolves: the other still holds the P3 back.
    one = run(eng, [[alert("Down", t=5, service="s", severity="critical", status="resolved")]])
    assert [(e.event, e.incident.rule) for e in one] == [("resolved", "crit")]
    last = run(eng, [[alert("Gone", t=6, service="s", severity="critical", status="resolved")]])
    assert [(e.event, e.incident.rule, e.reason) for e in last] == [
        ("resolved", "crit", "all alerts resolved"),
        ("opened", "warn", "no longer inhibited"),
    ]
