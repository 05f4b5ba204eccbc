"""Splunk's webhook alert action and Splunk ES notable events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.normalize.splunk import normalize_splunk
from stormwatch.errors import PayloadError

PAYLOADS = Path(__file__).resolve().parents[2] / "payloads" / "splunk"
NOW = datetime(2026, 8, 20, 10, 6, tzinfo=UTC).timestamp()


def load(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def test_webhook_search_result_row() -> None:
    (a,) = normalize_splunk(load("webhook.json"), NOW)
    assert a.source == "splunk" and a.status == "firing"
    assert a.labels == {
        "alertname": "Excessive SSH failures",
        "user": "root",
        "src": "198.51.100.7",
        "dest": "web-01,web-02",  # a multi-value field
        "count": "27",
    }
    assert a.starts_at == 1787219940.0  # _time, a string epoch
    assert a.generator_url.startswith("https://splunk.example.com:8000/app/search/search?q=")
    assert a.annotations["sid"].startswith("scheduler__admin__search__")
    assert a.severity == "warning"  # no severity in the row


def test_raw_event_rows_drop_splunks_own_fields() -> None:
    (a,) = normalize_splunk(load("webhook_raw_event.json"), NOW)
    assert a.labels == {
        "alertname": "sudo",
        "source": "/var/log/auth.log",
        "host": "web-01",
        "index": "main",
        "process": "sudo",
        "sourcetype": "syslog",
    }
    assert a.annotations["raw"].startswith("Aug 20 10:01:32 web-01 sudo:")
    again = json.loads(load("webhook_raw_event.json"))
    again["sid"], again["result"]["_serial"], again["result"]["date_second"] = "other", "9", "40"
    (b,) = normalize_splunk(json.dumps(again).encode(), NOW)
    assert b.fingerprint == a.fingerprint  # the same event again: a re-send


def test_notable_event_from_a_correlation_search() -> None:
    (a,) = normalize_splunk(load("notable_webhook.json"), NOW)
    assert a.labels["alertname"] == "Brute Force Access Behavior Detected"
    assert a.severity == "high"  # urgency, not the severity field (medium)
    assert (a.labels["urgency"], a.labels["severity"]) == ("high", "medium")  # as sent
    assert (a.labels["security_domain"], a.labels["src"], a.labels["dest"], a.labels["user"]) == (
        "access",
        "198.51.100.7",
        "web-01",
        "root",
    )
    assert a.labels["annotations.mitre_attack"] == "T1110"
    assert "rule_description" not in a.labels and "27 times" in a.annotations["rule_description"]
    assert "status" not in a.labels and a.status == "firing"
    assert a.starts_at == 1787220240.0


def test_closing_a_notable_resolves_it() -> None:
    doc = json.loads(load("notable_webhook.json"))
    (opened,) = normalize_splunk(json.dumps(doc).encode(), NOW)
    doc["result"].update(status="5", status_label="Closed", owner="alice")
    (closed,) = normalize_splunk(json.dumps(doc).encode(), NOW)
    assert closed.status == "resolved" and closed.fingerprint == opened.fingerprint


def test_bare_notable_events() -> None:
    closed, open_ = normalize_splunk(load("notables.json"), NOW)
    assert closed.labels["alertname"] == "Excessive Failed Logins" and closed.status == "resolved"
    assert closed.severity == "warning"  # urgency medium
    assert open_.severity == "critical" and open_.status == "firing"
    assert open_.starts_at == datetime(2026, 8, 20, 10, 4, 30, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"result": {"a": "b"}}', "$.search_name"),
        (b'{"search_name": "s", "result": "x"}', "$.result"),
        (b'{"search_name": "s", "result": {"_time": "yesterday"}}', "$.result._time"),
        (b'{"search_name": "s", "result": {"_time": "-5"}}', "$.result._time"),
        (b"[3]", "$[0]"),
    ],
)
def test_errors_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as info:
        normalize_splunk(body, NOW)
    assert info.value.field == field
