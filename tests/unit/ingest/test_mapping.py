"""Configured JSON mappings, and the shipped ones for Datadog, Zabbix and Grafana OnCall."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from ingest.normalize import NORMALIZERS
from ingest.normalize.mapping import MappingConfig, MappingNormalizer, load_mappings
from stormwatch.errors import ConfigError, PayloadError

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted(str(p) for p in (ROOT / "deploy" / "mappings").glob("*.yaml"))
PAYLOADS = ROOT / "tests" / "payloads"
NOW = datetime(2026, 8, 20, 10, 20, tzinfo=UTC).timestamp()


def mapping(spec: dict[str, object], name: str = "tool") -> MappingNormalizer:
    return load_mappings({name: spec}, [], set(NORMALIZERS))[name]


@pytest.fixture(scope="module")
def shipped() -> dict[str, MappingNormalizer]:
    return load_mappings({}, SHIPPED, set(NORMALIZERS))


def test_the_shipped_mappings_load(shipped: dict[str, MappingNormalizer]) -> None:
    assert {"datadog", "zabbix", "oncall"} <= set(shipped)


def test_datadog_monitor_triggers_and_recovers(shipped: dict[str, MappingNormalizer]) -> None:
    dd = shipped["datadog"]
    (fired,) = dd((PAYLOADS / "datadog/monitor_triggered.json").read_bytes(), NOW)
    assert fired.source == "datadog" and fired.status == "firing"
    assert fired.labels == {
        "alertname": "CPU usage above 90% on web-01",
        "monitor_id": "18472931",
        "host": "web-01",
        "priority": "P2",
        "scope": "host:web-01",
        "org": "Example Corp",
    }
    assert fired.severity == "high"  # alert_type error
    assert fired.starts_at == 1787220000.0  # $DATE is epoch milliseconds
    assert fired.generator_url.startswith("https://app.datadoghq.com/event/")
    assert "above 90%" in fired.annotations["summary"]
    (recovered,) = dd((PAYLOADS / "datadog/monitor_recovered.json").read_bytes(), NOW)
    assert recovered.status == "resolved"
    assert recovered.labels["alertname"] == fired.labels["alertname"]
    assert recovered.fingerprint == fired.fingerprint  # $ALERT_CYCLE_KEY


def test_zabbix_problem_and_recovery(shipped: dict[str, MappingNormalizer]) -> None:
    zb = shipped["zabbix"]
    (problem,) = zb((PAYLOADS / "zabbix/problem.json").read_bytes(), NOW)
    assert problem.status == "firing" and problem.severity == "high"
    assert problem.labels["alertname"] == "High CPU utilization (over 90% for 5m)"
    assert (problem.labels["host"], problem.labels["severity"]) == ("db-01", "High")
    assert problem.starts_at == NOW  # no time mapped: the arrival
    (ok,) = zb((PAYLOADS / "zabbix/recovery.json").read_bytes(), NOW + 60)
    assert ok.status == "resolved" and ok.fingerprint == problem.fingerprint
    disaster = json.loads((PAYLOADS / "zabbix/problem.json").read_text())
    disaster["event_severity"] = "disaster"  # maps compare case-insensitively
    (d,) = zb(json.dumps(disaster).encode(), NOW)
    assert d.severity == "critical"


def test_grafana_oncall_formatted_webhook(shipped: dict[str, MappingNormalizer]) -> None:
    oc = shipped["oncall"]
    body = json.loads((PAYLOADS / "grafana_oncall/formatted_webhook.json").read_text())
    (a,) = oc(json.dumps(body).encode(), NOW)
    assert a.labels == {"alertname": "The whole system is down"} and a.status == "firing"
    (b,) = oc(json.dumps({**body, "state": "ok"}).encode(), NOW)
    assert b.status == "resolved" and b.fingerprint == a.fingerprint


def test_items_paths_times_and_identity() -> None:
    m = mapping(
        {
            "items": "data.alerts",
            "labels": {"alertname": "check.name", "host": "target['host.name']", "n": "vals[1]"},
            "static_labels": {"team": "platform"},
            "annotations": {"detail": "detail"},
            "status": {"path": "state"},
            "starts_at": "t",
            "ends_at": "end",
            "identity": ["alertname", "host"],
        }
    )
    body = {
        "data": {
            "alerts": [
                {
                    "check": {"name": "disk"},
                    "target": {"host.name": "h1"},
                    "vals": [1, 2],
                    "t": 1787220000,
                    "detail": {"free": "1%"},
                },
                {
                    "check": {"name": "disk"},
                    "target": {"host.name": "h1"},
                    "vals": [1, 3],
                    "state": "resolved",
                    "t": "2026-08-20T10:00:00Z",
                    "end": "2026-08-20T10:10:00+00:00",
                },
            ]
        }
    }
    a, b = m(json.dumps(body).encode(), NOW)
    assert a.labels == {"team": "platform", "alertname": "disk", "host": "h1", "n": "2"}
    assert a.annotations == {"detail": '{"free":"1%"}'}
    assert (a.status, b.status) == ("firing", "resolved")
    assert b.ends_at == datetime(2026, 8, 20, 10, 10, tzinfo=UTC).timestamp()
    assert a.fingerprint == b.fingerprint  # identity: alertname and host only
    assert a.severity == "warning"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"x": 1}', "$"),  # no mapped label in the item
        (b'{"name": "a", "t": "soon"}', "$.t"),
        (b'{"name": "a", "t": -5}', "$.t"),
        (b'[{"name": "a"}, 7]', "$[1]"),
        (b"[{", ""),
    ],
)
def test_payload_errors_name_the_field(body: bytes, field: str) -> None:
    m = mapping({"labels": {"alertname": "name"}, "starts_at": "t"})
    with pytest.raises(PayloadError) as info:
        m(body, NOW)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"labels": {}}, "at least one label"),
        ({"labels": {"a": "x..y"}}, "invalid path"),
        ({"labels": {"a": {"path": "x", "regex": "("}}}, "invalid regex"),
        ({"labels": {"a": {"path": "x", "regex": "x"}}}, "needs a group"),
        (
            {"labels": {"a": "x"}, "status": {"path": "s", "map": {"up": "ok"}}},
            "firing or resolved",
        ),
        ({"labels": {"a": "x"}, "severity": {"path": "s", "map": {"1": "page"}}}, "critical, high"),
        ({"labels": {"a": "x"}, "identity": ["b"]}, "identity"),
        ({"labels": {"a": "x"}, "starts_at": {"path": "t", "format": "unix"}}, "format"),
        ({"labels": {"a": "x"}, "colour": "blue"}, "colour"),
    ],
)
def test_config_errors(spec: dict[str, object], problem: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=problem):
        msgspec.convert(spec, MappingConfig)


def test_mapping_files_errors_carry_file_and_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tool:\n  labels: {alertname: name}\n  status: {path: s, map: {x: maybe}}\n")
    with pytest.raises(ConfigError) as info:
        load_mappings({}, [str(bad)], set(NORMALIZERS))
    assert info.value.path == str(bad) and info.value.field == "$.tool"
    assert "status: map to firing or resolved" in info.value.message
    with pytest.raises(ConfigError) as info:
        load_mappings({"x": {"labels": {"a": "b"}, "items": "a..b"}}, [], set(NORMALIZERS))
    assert info.value.field == "$.ingest.mappings.x" and "invalid path" in info.value.message
    clash = tmp_path / "clash.yaml"
    clash.write_text("wazuh:\n  labels: {alertname: name}\n")
    with pytest.raises(ConfigError, match="built-in"):
        load_mappings({}, [str(clash)], set(NORMALIZERS))
    with pytest.raises(ConfigError, match="cannot read"):
        load_mappings({}, [str(tmp_path / "missing.yaml")], set(NORMALIZERS))
