"""The routing tree: first matching child wins, `continue` goes on, no match falls back."""

from __future__ import annotations

import msgspec
import pytest

from stormwatch.errors import ConfigError
from stormwatch.routing import Route, Router
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
