"""UTF-8 label names (Prometheus 3, Alertmanager 0.27+): in, matched, grouped, titled."""

from __future__ import annotations

import json

import pytest

from correlate import Engine, EngineConfig
from correlate.suppress import Silence
from ingest.fingerprint import fingerprint_labels
from ingest.normalize.alertmanager import normalize_alertmanager_v2
from rules import MatcherError, RuleSet, fill_placeholders, parse_matcher, parse_matchers
from rules.schema import Condition, EventCount, IncidentSpec, Rule
from stormwatch.errors import PayloadError
from stormwatch.wire import Duration
from tests.support import T0, alert


def _fnv1a_64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def _alertmanager_fingerprint(labels: dict[str, str]) -> str:
    """model.LabelSet.Fingerprint, written out: pairs sorted by name, 0xFF after each."""
    out = b""
    for name in sorted(labels):
        out += name.encode() + b"\xff" + labels[name].encode() + b"\xff"
    return f"{_fnv1a_64(out):016x}"


@pytest.mark.parametrize(
    "labels",
    [
        {"service.name": "checkout", "k8s.namespace.name": "shop"},
        {"alertname": "Ärger", "dienst ✓": "zahlung", "😀": "x"},
        {"a": "b"},
    ],
)
def test_utf8_names_are_accepted_and_fingerprinted_as_alertmanager_does(
    labels: dict[str, str],
) -> None:
    (a,) = normalize_alertmanager_v2(json.dumps([{"labels": labels}]).encode(), T0)
    assert a.labels == labels
    assert a.fingerprint == _alertmanager_fingerprint(labels) == fingerprint_labels(labels)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'[{"labels": {"": "x"}}]', "invalid_payload"),
        (b'[{"labels": {"\xff\xfe": "x"}}]', "invalid_json"),  # not UTF-8
        (b'[{"labels": {"a": "\xc3"}}]', "invalid_json"),
    ],
)
def test_empty_names_and_invalid_utf8_stay_400(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        normalize_alertmanager_v2(body, T0)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ('"service.name"="checkout"', "service.name", "=", "checkout"),
        ("service.name=checkout", "service.name", "=", "checkout"),
        ('"k8s.namespace.name"=~"prod-.*"', "k8s.namespace.name", "=~", "prod-.*"),
        ('"with \\"quote\\""!="a"', 'with "quote"', "!=", "a"),
        ('"dienst ✓" !~ "x|y"', "dienst ✓", "!~", "x|y"),
        ('severity="critical"', "severity", "=", "critical"),
    ],
)
def test_matchers_take_alertmanagers_quoting(text: str, name: str, op: str, value: str) -> None:
    m = parse_matcher(text)
    assert (m.name, m.op, m.value) == (name, op, value)
    assert parse_matcher(str(m)) == m  # printed the way it parses back


def test_matcher_printing_quotes_only_non_classic_names() -> None:
    assert str(parse_matcher("service.name=checkout")) == '"service.name"="checkout"'
    assert str(parse_matcher("team=db")) == 'team="db"'


def test_selector_with_quoted_names_and_commas_in_values() -> None:
    ms = parse_matchers(['{"service.name"="a,b", env=~"prod|stage"}'])
    assert [(m.name, m.value) for m in ms] == [("service.name", "a,b"), ("env", "prod|stage")]
    assert ms[0].matches({"service.name": "a,b"}) and not ms[0].matches({"service_name": "a,b"})


@pytest.mark.parametrize("text", ['""="x"', '"unterminated="x"', "a b=c", "=x"])
def test_bad_matchers_are_refused(text: str) -> None:
    with pytest.raises(MatcherError):
        parse_matcher(text)


def test_placeholders() -> None:
    values = {"service.name": "checkout", "count": "3", "a b": "x"}
    assert fill_placeholders("{service.name}: {count}", values) == "checkout: 3"
    assert fill_placeholders('{"service.name"} / {"a b"}', values) == "checkout / x"
    assert fill_placeholders("{missing} {{literal}} {count", values) == "{missing} {literal} {count"


def test_rules_match_group_silence_and_title_on_utf8_names() -> None:
    rule = Rule(
        name="otel-burst",
        match=['"service.name"=~"check.*"'],
        correlation=EventCount(
            group_by=["service.name"], timespan=Duration(60), condition=Condition(gte=2)
        ),
        incident=IncidentSpec(title="{service.name}: {count} alerts", severity="P2"),
    )
    eng = Engine(RuleSet(rules=(rule,)), EngineConfig(update_interval=Duration(0)))
    eng.add_silence(
        Silence(
            id="s1",
            matchers=['"k8s.namespace.name"="staging"'],
            starts_at=T0 - 1,
            ends_at=T0 + 3600,
        ),
        T0 - 1,
    )
    labels = {"service.name": "checkout"}
    batch = [
        alert("A", t=0, **labels),
        alert("B", t=1, **{**labels, "k8s.namespace.name": "staging"}),  # silenced
        alert("C", t=2, service_name="checkout"),  # another label: no match
    ]
    assert eng.process(batch, T0 + 2).events == []
    (opened,) = eng.process([alert("D", t=3, **labels)], T0 + 3).events
    assert opened.incident.group == {"service.name": "checkout"}
    assert opened.incident.title == "checkout: 2 alerts"
