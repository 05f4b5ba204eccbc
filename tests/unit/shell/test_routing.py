"""The routing tree: first matching child wins, `continue` goes on, no match falls back."""

from __future__ import annotations

import msgspec
import pytest

from stormwatch.errors import ConfigError
from stormwatch.routing import Dispatcher, Route, Router
from stormwatch.wire import IncidentEvent
from tests.support_sinks import incident_event

TREE = msgspec.yaml.decode(
    b"""
sink: [jsonl]
routes:
  - match: ['severity="P1"']
    sink: [pager]
    continue: true
  - match: ['service="checkout"', 'event!="updated"']
    sink: [chat]
  - match: ['category="security"']
    sink: [soc]
""",
    type=Route,
)
SINKS = ["jsonl", "pager", "chat", "soc"]


def event(
    kind: str = "opened",
    severity: str = "P2",
    category: str = "availability",
    service: str = "checkout",
):  # type: ignore[no-untyped-def]
    e = incident_event(kind, 1)
    e.incident.severity = severity  # type: ignore[assignment]
    e.incident.category = category
    e.incident.group = {"service": service}
    return e


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, ["chat"]),  # first match wins, no continue
        ({"kind": "updated"}, ["jsonl"]),  # chat excludes updates; nothing else: the root
        ({"severity": "P1"}, ["pager", "chat"]),  # continue: the next sibling too
        ({"service": "cart"}, ["jsonl"]),
        ({"service": "cart", "category": "security"}, ["soc"]),
        ({"service": "cart", "severity": "P1", "category": "security"}, ["pager", "soc"]),
    ],
)
def test_tree(args: dict[str, str], expected: list[str]) -> None:
    assert Router(TREE, SINKS).sinks_for(event(**args)) == expected


def test_without_a_route_every_sink_gets_everything() -> None:
    assert Router(None, SINKS).sinks_for(event()) == SINKS


def test_unknown_sinks_and_bad_matchers_name_the_field() -> None:
    with pytest.raises(ConfigError) as info:
        Router(Route(sink=["jsonl"], routes=[Route(sink=["nope"])]), SINKS)
    assert info.value.field == "$.route.routes[0].sink" and "nope" in info.value.message
    with pytest.raises(ConfigError) as info:
        Router(Route(routes=[Route(match=['x=~"("'], sink=["jsonl"])]), SINKS)
    assert info.value.field == "$.route.routes[0].match"


def dispatcher(tree: Route) -> Dispatcher:
    return Dispatcher(Router(tree, ["jsonl", "pager"]), full_view=lambda key: None)


P1_TREE = msgspec.yaml.decode(
    b"sink: [jsonl]\nroutes:\n  - {match: ['severity=\"P1\"'], sink: [pager], continue: true}\n"
    b"  - {match: ['rule=~\".+\"'], sink: [jsonl]}\n",
    type=Route,
)


def kinds(routed: dict[str, list[IncidentEvent]]) -> dict[str, list[tuple[str, int]]]:
    return {k: [(e.event, e.sequence) for e in v] for k, v in routed.items()}


def test_a_sink_an_incident_escalates_into_gets_it_opened_first() -> None:
    d = dispatcher(P1_TREE)
    assert kinds(d.route([incident_event("opened", 1, severity="P4")])) == {
        "jsonl": [("opened", 1)],
        "pager": [],
    }
    routed = d.route(
        [incident_event("updated", 2, severity="P1"), incident_event("updated", 3, severity="P1")]
    )
    assert kinds(routed) == {
        "jsonl": [("updated", 2), ("updated", 3)],
        "pager": [("opened", 2), ("updated", 3)],
    }
    assert routed["pager"][0].reason.startswith("route matched")


def test_a_sink_that_has_an_incident_gets_its_acknowledgement_and_resolution() -> None:
    d = dispatcher(P1_TREE)
    d.route([incident_event("opened", 1, severity="P1")])
    calmer = d.route([incident_event("updated", 2, severity="P2")])
    assert kinds(calmer)["pager"] == []  # plain updates follow the tree
    acked = d.route([incident_event("updated", 3, severity="P2", acknowledged_by="ada")])
    assert kinds(acked)["pager"] == [("updated", 3)]
    closed = d.route([incident_event("resolved", 4, severity="P2")])
    assert kinds(closed) == {"jsonl": [("resolved", 4)], "pager": [("resolved", 4)]}
    assert d.following("inc-abc") == set()  # forgotten once resolved


def test_seeding_from_open_incidents_keeps_following_after_a_restart() -> None:
    d = dispatcher(P1_TREE)
    d.seed([incident_event("opened", 1, severity="P1").incident])
    assert kinds(d.route([incident_event("updated", 2, severity="P1")]))["pager"] == [
        ("updated", 2)
    ]
    assert kinds(d.route([incident_event("resolved", 3, severity="P3")]))["pager"] == [
        ("resolved", 3)
    ]


def test_a_compact_update_routes_on_the_labels_its_alerts_share() -> None:
    tree = msgspec.yaml.decode(
        b"sink: [jsonl]\nroutes:\n  - {match: ['alertname=\"A0\"'], sink: [pager]}\n", type=Route
    )
    d = dispatcher(tree)
    assert kinds(d.route([incident_event("opened", 1)]))["pager"] == [("opened", 1)]
    compact = incident_event("updated", 2, alerts=1, compact=True)
    assert compact.incident.alerts == [] and compact.incident.labels["alertname"] == "A0"
    assert kinds(d.route([compact]))["pager"] == [("updated", 2)]
    # Two more alerts that do not share alertname=A0: the incident no longer matches the
    # route, so its updates stop there; its resolution still reaches the sink that has it.
    wider = incident_event("updated", 3, alerts=3, compact=True)
    assert "alertname" not in wider.incident.labels
    assert kinds(d.route([wider]))["pager"] == []
    assert kinds(d.route([incident_event("resolved", 4, alerts=3)]))["pager"] == [("resolved", 4)]
