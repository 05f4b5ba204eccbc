"""The normalised severity: one table, set by every normaliser, used by rules."""

from __future__ import annotations

import json

import msgspec
import pytest

from correlate import Engine, EngineConfig
from ingest.normalize import NORMALIZERS
from ingest.normalize.alertmanager import normalize_alertmanager_v2
from ingest.normalize.severity import normalize_severity
from rules import RuleSet
from rules.schema import ClassifyCase, ClassifyWhen, Condition, EventCount, IncidentSpec, Rule
from stormwatch.wire import Duration
from tests.support import T0, alert


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("critical", "critical"),
        ("CRITICAL", "critical"),
        ("page", "critical"),
        ("P1", "critical"),
        ("Disaster", "critical"),
        ("high", "high"),
        ("error", "high"),
        ("major", "high"),
        ("warning", "warning"),
        ("medium", "warning"),
        ("minor", "warning"),
        ("low", "warning"),
        ("Average", "warning"),
        ("info", "info"),
        ("informational", "info"),
        ("none", "info"),
        ("Not classified", "info"),
        (" notice ", "info"),
        (None, "warning"),
        ("", "warning"),
        ("bananas", "warning"),
        ("3", "warning"),
        (True, "warning"),
    ],
)
def test_the_table(value: object, expected: str) -> None:
    assert normalize_severity(value) == expected


def test_label_based_sources_read_the_severity_label_and_keep_it_as_sent() -> None:
    body = json.dumps([{"labels": {"alertname": "a", "severity": "Error"}}]).encode()
    (a,) = normalize_alertmanager_v2(body, T0)
    assert a.severity == "high"
    assert a.labels == {"alertname": "a", "severity": "Error"}  # untouched
    hook = {
        "version": "4",
        "alerts": [{"status": "firing", "labels": {"alertname": "b", "severity": "page"}}],
    }
    (b,) = NORMALIZERS["alertmanager"](json.dumps(hook).encode(), T0)
    assert b.severity == "critical"
    (c,) = NORMALIZERS["grafana"](
        json.dumps({"alerts": [{"labels": {"alertname": "c"}}]}).encode(), T0
    )
    assert c.severity == "warning"  # none given
    (d,) = NORMALIZERS["generic"](b'{"labels": {"alertname": "d", "severity": "info"}}', T0)
    assert d.severity == "info"


def test_the_field_survives_the_state_encoding() -> None:
    a = msgspec.structs.replace(alert("x"), severity="critical")
    assert msgspec.json.decode(msgspec.json.encode(a), type=type(a)).severity == "critical"


def _rule(**kw: object) -> Rule:
    return Rule(
        name="sev",
        correlation=EventCount(
            group_by=["service"], timespan=Duration(60), condition=Condition(gte=2)
        ),
        incident=IncidentSpec(title="{service}", severity="P3"),
        **kw,  # type: ignore[arg-type]
    )


def _engine(rule: Rule) -> Engine:
    return Engine(RuleSet(rules=(rule,)), EngineConfig(update_interval=Duration(0)))


def test_rule_level_alert_severity_filter_fits_every_source() -> None:
    eng = _engine(_rule(alert_severity=["critical", "high"]))
    batch = [
        msgspec.structs.replace(alert("A", t=0, service="s"), severity="critical"),
        msgspec.structs.replace(alert("B", t=1, service="s", source="wazuh"), severity="warning"),
        msgspec.structs.replace(alert("C", t=2, service="s", source="syslog"), severity="info"),
    ]
    assert eng.process(batch, T0 + 2).events == []  # one counted of three
    more = [
        msgspec.structs.replace(alert("D", t=3, service="s", source="elastic"), severity="high")
    ]
    (opened,) = eng.process(more, T0 + 3).events
    assert sorted(a.labels["alertname"] for a in opened.incident.alerts) == ["A", "D"]


def test_classify_reads_the_normalised_field_not_the_label() -> None:
    rule = _rule(
        classify=[ClassifyCase(when=ClassifyWhen(alert_severity=["critical"]), severity="P1")]
    )
    eng = _engine(rule)
    # The label says "page", the field says critical: the field decides.
    batch = [
        msgspec.structs.replace(alert("A", t=0, service="s", severity="page"), severity="critical"),
        alert("B", t=1, service="s"),
    ]
    (opened,) = eng.process(batch, T0 + 1).events
    assert opened.incident.severity == "P1"
    assert {a.severity for a in opened.incident.alerts} == {"critical", "warning"}


def test_unknown_alert_severity_in_a_rule_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="alert_severity"):
        msgspec.convert({"name": "x", "alert_severity": ["page"]}, Rule)
