"""The core's behaviour, as scenario tables: each alert with its event time (seconds
after T0) and the incident events expected once it has been processed."""

from __future__ import annotations

from correlate import EngineConfig
from tests.support import T0, alert, count_rule, engine, run


def test_burst_of_five_within_a_minute_opens_one_incident() -> None:
    # t:  0   10   20   30   40
    #     a1  a2   a3   a4   a5   -> 5 within 60s: opened on a5
    eng = engine(count_rule(gte=5))
    events = []
    for i, t in enumerate([0, 10, 20, 30, 40], start=1):
        events.append(eng.process([alert(f"A{i}", t=t, service="checkout")], T0 + t).events)
    assert [len(e) for e in events] == [0, 0, 0, 0, 1]
    opened = events[-1][0]
    assert opened.event == "opened"
    assert opened.sequence == 1
    assert opened.incident.alert_count == 5
    assert opened.incident.group == {"service": "checkout"}
    assert opened.incident.title == "checkout: 5 alerts"
    assert opened.incident.severity == "P2"
    assert "5 matching alerts within 1m" in opened.incident.timeline[0].detail


def test_alerts_spread_wider_than_the_timespan_open_nothing() -> None:
    # t:  0     50    100   150   200      never 3 within 60s
    eng = engine(count_rule(gte=3))
    events = run(eng, [[alert(f"A{i}", t=50 * i, service="s")] for i in range(5)])
    assert events == []


def test_window_slides_rather_than_tumbles() -> None:
    # t:  0    50 | 70    (a boundary at 60s would split these; a sliding window does not)
    eng = engine(count_rule(gte=3))
    events = run(
        eng,
        [
            [alert("A", t=0, service="s")],
            [alert("B", t=50, service="s")],
            [alert("C", t=70, service="s")],
        ],
    )
    assert events == []  # 0..70 is wider than 60s
    events = run(eng, [[alert("D", t=75, service="s")]])
    assert [e.event for e in events] == ["opened"]
    assert {a.labels["alertname"] for a in events[0].incident.alerts} == {"B", "C", "D"}


def test_resent_firing_alert_does_not_feed_rules_again() -> None:
    eng = engine(count_rule(gte=3))
    same = alert("A", t=0, service="s")
    events = run(eng, [[same], [same], [same], [same]])
    assert events == []
    fx = eng.process([same], T0 + 5)
    assert fx.counts.duplicates == 1 and fx.counts.new == 0


def test_later_alerts_of_the_group_join_the_open_incident() -> None:
    eng = engine(count_rule(gte=2))
    opened = run(eng, [[alert("A", t=0, service="s"), alert("B", t=1, service="s")]])
    assert [e.event for e in opened] == ["opened"]
    later = run(eng, [[alert("C", t=200, service="s")]])
    assert [(e.event, e.reason, e.incident.alert_count) for e in later] == [
        ("updated", "alerts_added", 3)
    ]
    assert later[0].incident.key == opened[0].incident.key
    assert later[0].sequence == 2


def test_groups_are_separate() -> None:
    eng = engine(count_rule(gte=2))
    events = run(
        eng,
        [
            [
                alert("A", t=0, service="x"),
                alert("B", t=1, service="y"),
                alert("C", t=2, service="x"),
            ]
        ],
    )
    assert [(e.event, e.incident.group["service"]) for e in events] == [("opened", "x")]


def test_duplicates_are_counted_on_the_incident() -> None:
    eng = engine(count_rule(gte=2))
    opened = run(eng, [[alert("A", t=0, service="s"), alert("B", t=1, service="s")]])
    # Two re-sends of A in one request, then one of B: one compact update per instant.
    events = run(
        eng,
        [
            [alert("A", t=5, service="s"), alert("A", t=5, service="s")],
            [alert("B", t=7, service="s")],
        ],
    )
    assert [(e.event, e.reason, e.changes.duplicates) for e in events if e.changes] == [
        ("updated", "duplicates", 2),
        ("updated", "duplicates", 1),
    ]
    assert all(e.incident.alerts == [] for e in events)  # compact
    view = eng.incident(opened[0].incident.key)
    assert view is not None
    assert {x.labels["alertname"]: x.duplicates for x in view.alerts} == {"A": 2, "B": 1}


def test_incident_resolves_when_all_its_alerts_resolve() -> None:
    eng = engine(count_rule(gte=2))
    run(eng, [[alert("A", t=0, service="s"), alert("B", t=1, service="s")]])
    first = run(eng, [[alert("A", t=10, status="resolved", service="s")]])
    assert [(e.event, e.reason) for e in first] == [("updated", "alerts_resolved")]
    last = run(eng, [[alert("B", t=11, status="resolved", service="s")]])
    assert [(e.event, e.reason) for e in last] == [("resolved", "all alerts resolved")]
    assert last[0].incident.status == "resolved"
    assert last[0].incident.resolved_at == T0 + 11


def test_alert_resolves_when_ends_at_passes_without_a_resend() -> None:
    eng = engine(count_rule(gte=2), resolve_timeout=300)
    run(eng, [[alert("A", t=0, service="s"), alert("B", t=0, service="s", ends_at=100)]])
    assert eng.tick(T0 + 99).events == []
    fx = eng.tick(T0 + 100)
    assert fx.counts.expired == 1
    assert [e.reason for e in fx.events] == ["alerts_resolved"]
    # A has no endsAt: it resolves resolve_timeout after its last arrival.
    fx = eng.tick(T0 + 300)
    assert [(e.event, e.reason) for e in fx.events] == [("resolved", "all alerts resolved")]


def test_resend_pushes_the_resolve_timeout_back() -> None:
    eng = engine(count_rule(gte=1), resolve_timeout=300)
    run(eng, [[alert("A", t=0, service="s")]])
    eng.process([alert("A", t=200, service="s")], T0 + 200)
    assert [e.event for e in eng.tick(T0 + 300).events] == ["updated"]  # the re-send; not resolved
    assert [e.event for e in eng.tick(T0 + 500).events] == ["resolved"]


def test_quiet_period_resolves_an_incident_whose_alerts_never_resolve() -> None:
    eng = engine(count_rule(gte=1, quiet=600), resolve_timeout=10_000)
    run(eng, [[alert("A", t=0, service="s")]])
    assert eng.tick(T0 + 599).events == []
    events = eng.tick(T0 + 600).events
    assert [(e.event, e.reason) for e in events] == [("resolved", "quiet for 10m")]


def test_after_resolve_a_new_burst_opens_a_new_incident() -> None:
    eng = engine(count_rule(gte=2))
    first = run(eng, [[alert("A", t=0, service="s"), alert("B", t=1, service="s")]])
    run(
        eng,
        [
            [
                alert("A", t=5, status="resolved", service="s"),
                alert("B", t=5, status="resolved", service="s"),
            ]
        ],
    )
    again = run(eng, [[alert("A", t=100, service="s"), alert("B", t=101, service="s")]])
    assert [e.event for e in again] == ["opened"]
    assert again[0].incident.key != first[0].incident.key


def test_alert_far_behind_the_watermark_is_late_and_counted() -> None:
    eng = engine(count_rule(gte=2), allowed_lateness=60)
    run(eng, [[alert("A", t=1000, service="s")]])
    fx = eng.process([alert("B", t=900, service="s")], T0 + 1000)
    assert fx.counts.late == 1
    assert fx.counts.late_by_rule == {"burst": 1}
    assert fx.events == []


def test_out_of_order_alert_within_lateness_still_counts() -> None:
    eng = engine(count_rule(gte=3), allowed_lateness=600)
    run(eng, [[alert("A", t=100, service="s")], [alert("B", t=110, service="s")]])
    events = run(eng, [[alert("C", t=60, service="s")]])
    assert [e.event for e in events] == ["opened"]


def test_future_event_time_is_clamped_to_its_arrival() -> None:
    import msgspec

    eng = engine(count_rule(gte=2), allowed_lateness=60)
    ahead = msgspec.structs.replace(alert("A", t=86_400, service="s"), received_at=T0)
    eng.process([ahead], T0)
    assert eng.state.watermark == T0
    fx = eng.process([alert("B", t=1, service="s")], T0 + 1)
    assert fx.counts.late == 0


def test_match_limits_which_alerts_count() -> None:
    eng = engine(count_rule(gte=2, match=['severity="critical"']))
    events = run(
        eng,
        [
            [
                alert("A", t=0, service="s", severity="warning"),
                alert("B", t=1, service="s", severity="critical"),
            ]
        ],
    )
    assert events == []
    events = run(eng, [[alert("C", t=2, service="s", severity="critical")]])
    assert [e.event for e in events] == ["opened"]


def test_storm_lists_exemplars_and_counts_the_rest() -> None:
    eng = engine(count_rule(gte=1, group_by=()), max_alerts_per_incident=10)
    events = run(eng, [[alert(f"A{i}", t=0, instance=str(i)) for i in range(50)]])
    inc = eng.incident(events[0].incident.key)
    assert inc is not None
    assert inc.alert_count == 50
    assert len(inc.alerts) == 10
    assert inc.truncated_alerts == 40
    assert any(e.event == "storm" and "listing the first 10" in e.detail for e in inc.timeline)


def test_incident_keys_are_deterministic() -> None:
    batches = [[alert("A", t=0, service="s"), alert("B", t=1, service="s")]]
    k1 = run(engine(count_rule(gte=2)), batches)[0].incident.key
    k2 = run(engine(count_rule(gte=2)), batches)[0].incident.key
    assert k1 == k2


def test_reload_keeps_windows_of_unchanged_rules_and_resets_changed_ones() -> None:
    from rules import RuleSet

    keep, change = count_rule("keep", gte=2), count_rule("change", gte=2)
    eng = engine(keep, change)
    run(eng, [[alert("A", t=0, service="s")]])
    eng.reload(RuleSet(rules=(keep, count_rule("change", gte=2, timespan=120))))
    events = run(eng, [[alert("B", t=1, service="s")]])
    assert [e.incident.rule for e in events] == ["keep"]


def test_snapshot_and_restore_continue_where_they_stopped() -> None:
    from correlate import Engine
    from rules import RuleSet

    rule = count_rule(gte=3)
    eng = engine(rule)
    run(eng, [[alert("A", t=0, service="s"), alert("B", t=1, service="s")]])
    restored = Engine.restore(RuleSet(rules=(rule,)), eng.snapshot(), EngineConfig())
    a = run(eng, [[alert("C", t=2, service="s")]])
    b = run(restored, [[alert("C", t=2, service="s")]])
    assert [(e.event, e.incident.key, e.incident.alert_count) for e in a] == [
        (e.event, e.incident.key, e.incident.alert_count) for e in b
    ]
    assert len(a) == 1


def test_updates_are_coalesced_and_spaced_by_update_interval() -> None:
    eng = engine(count_rule(gte=1), update_interval=10)
    a = alert("A", t=0, service="s")
    assert [e.event for e in eng.process([a], T0).events] == ["opened"]
    eng.process([a], T0 + 1)
    eng.process([alert("B", t=2, service="s")], T0 + 2)
    assert eng.tick(T0 + 5).events == []  # within 10s of the opened event
    events = eng.tick(T0 + 10).events
    assert [(e.event, e.reason, e.sequence) for e in events] == [
        ("updated", "duplicates,alerts_added", 2)
    ]
    assert eng.tick(T0 + 30).events == []  # nothing changed since


def test_opened_and_resolved_are_sent_at_once() -> None:
    eng = engine(count_rule(gte=1), update_interval=3600)
    assert [e.event for e in eng.process([alert("A", t=0, service="s")], T0).events] == ["opened"]
    fx = eng.process([alert("A", t=1, status="resolved", service="s")], T0 + 1)
    assert [e.event for e in fx.events] == ["resolved"]


def test_windows_per_rule_are_capped_and_the_overflow_counted() -> None:
    eng = engine(count_rule(gte=2, group_by=("instance",)), max_groups_per_rule=3)
    fx = eng.process([alert("A", t=0, instance=str(i)) for i in range(5)], T0)
    assert fx.counts.capped_by_rule == {"burst": 2}
    assert eng.windows_by_rule() == {"burst": 3}
    # A group that already has a window still counts; a new one still does not.
    kept = next(iter(eng.state.rules["burst"].groups))
    dropped = next(str(i) for i in range(5) if str(i) not in eng.state.rules["burst"].groups)
    events = run(eng, [[alert("B", t=1, instance=kept), alert("B", t=1, instance=dropped)]])
    assert [e.incident.group for e in events if e.event == "opened"] == [{"instance": kept}]


def test_a_resend_with_a_later_starts_at_keeps_the_earliest_as_alertmanager_merges() -> None:
    import msgspec

    eng = engine(count_rule(gte=1))
    first = alert("A", t=0, service="s")
    opened = run(eng, [[first]])
    # Prometheus restarted: the same alert comes back with a new startsAt while firing.
    later = msgspec.structs.replace(alert("A", t=120, service="s"), received_at=T0 + 120)
    assert run(eng, [[later]])[0].reason == "duplicates"
    view = eng.incident(opened[0].incident.key)
    assert view is not None and view.alerts[0].starts_at == T0
    assert view.alerts[0].duplicates == 1


def test_a_resolved_alert_is_forgotten_once_no_window_can_list_it_and_not_before() -> None:
    # A 1 h window (never reached) may list an alert for lateness + 1 h after its event
    # time; after that and `retention`, a resolved alert is dropped from memory.
    eng = engine(count_rule(gte=1000, timespan=3600), retention=900, allowed_lateness=600)
    gone = alert("Gone", t=0, service="a")
    eng.process([gone], T0)
    eng.process([alert("Gone", t=0, service="a", status="resolved", ends_at=T0 + 30)], T0 + 30)
    held_until = T0 + 600 + 3600  # the watermark must pass this before it may go
    seen_after = []
    for t in range(60, 3 * 3600, 60):  # other alerts move the watermark on
        eng.process([alert(f"Other{t}", t=t, service="b")], T0 + t)
        if gone.fingerprint not in eng.state.tracked:
            seen_after.append(T0 + t)
    assert seen_after, "the resolved alert was never forgotten"
    assert seen_after[0] > held_until
    assert seen_after[0] <= held_until + 900 + 2 * 60  # within a retention and a sweep
