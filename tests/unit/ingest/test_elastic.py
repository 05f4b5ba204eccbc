"""Elastic Security detection alerts: documents, webhook actions, search responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.normalize.elastic import normalize_elastic
from stormwatch.errors import PayloadError

PAYLOADS = Path(__file__).resolve().parents[2] / "payloads" / "elastic"
NOW = datetime(2026, 8, 20, 10, 5, tzinfo=UTC).timestamp()


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def load(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def test_one_alert_document() -> None:
    (a,) = normalize_elastic(load("alert.json"), NOW)
    assert a.source == "elastic" and a.status == "firing"
    assert a.labels == {
        "alertname": "Potential SSH Brute Force Detected",
        "rule_id": "1c27fa22-7727-4dd3-81c0-de6da5555feb",
        "severity": "medium",
        "risk_score": "47",
        "host": "web-01",
        "user": "root",
        "srcip": "198.51.100.7",
        "agent_id": "f1d2c3b4-a5e6-4789-9abc-def012345678",
        "agent": "web-01",
        "tactic": "Credential Access",
        "technique": "T1110,T1110.001",
    }
    assert a.severity == "warning"  # medium, through the table
    assert a.starts_at == ts("2026-08-20T10:00:58.000Z")  # the source event, not the alert
    assert a.generator_url.startswith("https://kibana.example.com/app/security/alerts/redirect/")
    assert a.annotations["reason"].startswith("authentication event with source")
    assert a.raw is not None and json.loads(bytes(a.raw))["kibana.alert.depth"] == 1


def test_a_closed_alert_resolves_the_open_one() -> None:
    doc = json.loads(load("alert.json"))
    (opened,) = normalize_elastic(json.dumps(doc).encode(), NOW)
    doc["kibana.alert.workflow_status"] = "closed"
    doc["kibana.alert.workflow_status_updated_at"] = "2026-08-20T10:04:00.000Z"
    (closed,) = normalize_elastic(json.dumps(doc).encode(), NOW)
    assert closed.status == "resolved" and closed.ends_at == ts("2026-08-20T10:04:00.000Z")
    assert closed.fingerprint == opened.fingerprint  # Elastic's alert id, not the labels
    doc["kibana.alert.workflow_status"] = "acknowledged"
    (acked,) = normalize_elastic(json.dumps(doc).encode(), NOW)
    assert acked.status == "resolved"


def test_search_response_every_hit_flat_or_nested() -> None:
    first, second = normalize_elastic(load("search.json"), NOW)
    assert first.labels["alertname"] == "Suspicious PowerShell Engine ImageLoad"
    assert first.severity == "high" and first.status == "firing"
    assert (first.labels["tactic"], first.labels["technique"]) == ("Execution", "T1059,T1059.001")
    # Dotted ECS keys at the top level read as the nested ones do.
    assert (second.labels["host"], second.labels["user"], second.labels["srcip"]) == (
        "web-02",
        "admin",
        "203.0.113.44",
    )
    assert second.status == "resolved"
    # No kibana.alert.uuid in the document: the hit's _id is the identity.
    hits = json.loads(load("search.json"))["hits"]["hits"]
    hits[1]["_source"]["kibana.alert.severity"] = "critical"  # a change, not a new alert
    (_, again) = normalize_elastic(json.dumps({"hits": {"hits": hits}}).encode(), NOW)
    assert again.fingerprint == second.fingerprint and again.severity == "critical"


def test_fields_api_hits() -> None:
    body = {
        "hits": {
            "hits": [
                {
                    "_id": "abc",
                    "fields": {
                        "kibana.alert.rule.name": ["Rare Process"],
                        "kibana.alert.severity": ["critical"],
                        "kibana.alert.original_time": ["2026-08-20T10:00:00.000Z"],
                        "host.name": ["db-1"],
                        "kibana.alert.rule.threat.tactic.name": ["Execution", "Persistence"],
                        "kibana.alert.rule.threat.technique.id": ["T1053"],
                    },
                }
            ]
        }
    }
    (a,) = normalize_elastic(json.dumps(body).encode(), NOW)
    assert a.labels["alertname"] == "Rare Process" and a.labels["host"] == "db-1"
    assert a.labels["tactic"] == "Execution,Persistence" and a.labels["technique"] == "T1053"
    assert a.severity == "critical"


def test_webhook_action_with_rule_beside_the_alerts() -> None:
    first, second = normalize_elastic(load("webhook_action.json"), NOW)
    assert first.labels["rule_id"] == "1c27fa22-7727-4dd3-81c0-de6da5555feb"
    assert second.labels["alertname"] == "Potential SSH Brute Force Detected"  # from rule_name
    assert second.labels["rule_id"] == "0a5c9f26-3b1e-11f1-8a5f-6d1c2c9b1a11"  # from rule_id
    assert second.generator_url.endswith("/rules/id/0a5c9f26-3b1e-11f1-8a5f-6d1c2c9b1a11")
    assert (first.status, second.status) == ("firing", "resolved")  # acknowledged
    assert first.fingerprint != second.fingerprint


def test_an_empty_search_is_no_alerts() -> None:
    assert normalize_elastic(b'{"hits": {"total": {"value": 0}, "hits": []}}', NOW) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"host": {"name": "x"}}', "$.kibana.alert.rule.name"),
        (b'{"alerts": [{"kibana.alert.rule.name": "r"}, 5]}', "$.alerts[1]"),
        (
            b'{"kibana.alert.rule.name": "r", "kibana.alert.original_time": "yesterday"}',
            "$.kibana.alert.original_time",
        ),
        (
            b'{"kibana.alert.rule.name": "r", "@timestamp": "2199-01-01T00:00:00Z"}',
            "$.kibana.alert.original_time",
        ),
        (b'{"hits": {"hits": 3}}', "$.hits.hits"),
    ],
)
def test_errors_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as info:
        normalize_elastic(body, NOW)
    assert info.value.field == field
