"""Each normaliser on its vendor's documented payload, and on every error path."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.fingerprint import fingerprint_labels
from ingest.normalize import NORMALIZERS
from ingest.normalize.alertmanager import normalize_alertmanager_v2, normalize_alertmanager_webhook
from stormwatch.errors import PayloadError

PAYLOADS = Path(__file__).resolve().parents[2] / "payloads"
NOW = datetime(2026, 8, 20, 10, 10, tzinfo=UTC).timestamp()


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({}, "cbf29ce484222325"),
        ({"foo": "bar"}, "3fff2c2d7595e046"),
        ({"foo": "bar", "baz": "qux"}, "e4d83091cd448e77"),
    ],
)
def test_fingerprint_equals_alertmanagers(labels: dict[str, str], expected: str) -> None:
    """Vectors from prometheus/common's own tests."""
    assert fingerprint_labels(labels) == expected


def test_fingerprint_ignores_label_order_but_not_values() -> None:
    assert fingerprint_labels({"a": "1", "b": "2"}) == fingerprint_labels({"b": "2", "a": "1"})
    assert fingerprint_labels({"a": "1", "b": "2"}) != fingerprint_labels({"a": "2", "b": "1"})
    assert fingerprint_labels({"ab": "c"}) != fingerprint_labels({"a": "bc"})


def test_alertmanager_v2_reads_every_field() -> None:
    body = (PAYLOADS / "alertmanager/api_v2.json").read_bytes()
    first, second = normalize_alertmanager_v2(body, NOW)
    assert first.source == "alertmanager"
    assert first.labels["service"] == "checkout"
    assert first.annotations["runbook_url"].startswith("https://runbooks")
    assert first.starts_at == ts("2026-08-20T10:00:00Z")
    assert first.ends_at == ts("2026-08-20T10:15:00Z")
    assert first.status == "firing"  # endsAt is after now
    assert first.generator_url.startswith("http://prometheus")
    assert first.fingerprint == fingerprint_labels(first.labels)
    # No startsAt: now. No endsAt: firing, the engine applies its resolve timeout.
    assert second.starts_at == NOW
    assert second.ends_at is None
    assert second.status == "firing"


def test_alertmanager_v2_endsat_in_the_past_means_resolved() -> None:
    body = b'[{"labels": {"alertname": "x"}, "startsAt": "2026-08-20T09:00:00Z", "endsAt": "2026-08-20T10:00:00Z"}]'
    (a,) = normalize_alertmanager_v2(body, NOW)
    assert a.status == "resolved"


def test_alertmanager_webhook_keeps_each_alerts_status() -> None:
    body = (PAYLOADS / "alertmanager/webhook_v4.json").read_bytes()
    firing, resolved = normalize_alertmanager_webhook(body, NOW)
    assert firing.status == "firing" and firing.ends_at is None  # Go zero time = unset
    assert resolved.status == "resolved" and resolved.ends_at == ts("2026-08-20T10:05:00Z")
    assert firing.labels["instance"] == "10.0.0.7:9090"


def test_alertmanager_webhook_without_newer_fields_still_parses() -> None:
    body = json.dumps(
        {
            "version": "4",
            "status": "firing",
            "alerts": [{"status": "firing", "labels": {"alertname": "a"}}],
        }
    )
    (a,) = normalize_alertmanager_webhook(body.encode(), NOW)
    assert a.labels == {"alertname": "a"}


def test_grafana_contact_point() -> None:
    (a,) = NORMALIZERS["grafana"]((PAYLOADS / "grafana/webhook_v1.json").read_bytes(), NOW)
    assert a.source == "grafana"
    assert a.labels["alertname"] == "High memory usage"
    assert a.status == "firing" and a.ends_at is None
    assert a.starts_at == ts("2021-10-12T09:51:03.157076+02:00")


def test_generic_accepts_epoch_and_rfc3339() -> None:
    alerts = NORMALIZERS["generic"](
        b'[{"labels": {"a": "b"}, "starts_at": 1000, "status": "resolved"},'
        b' {"labels": {"a": "c"}, "startsAt": "2026-08-20T10:00:00Z"}]',
        NOW,
    )
    assert [(x.starts_at, x.status) for x in alerts] == [
        (1000.0, "resolved"),
        (ts("2026-08-20T10:00:00Z"), "firing"),
    ]


def test_a_time_of_the_wrong_type_is_asked_for_as_rfc_3339() -> None:
    with pytest.raises(PayloadError) as info:
        normalize_alertmanager_v2(b'[{"labels": {"a": "b"}, "endsAt": 1234}]', NOW)
    assert info.value.field == "$[0].endsAt"
    assert info.value.message == "Expected an RFC 3339 time or null, got `int`"


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        (b"[{", "invalid_json", ""),
        (b"{}", "invalid_payload", "$"),
        (b'[{"annotations": {}}]', "invalid_payload", "$[0]"),
        (b'[{"labels": {"alertname": 5}}]', "invalid_payload", "$[0].labels.alertname"),
        (b'[{"labels": {}}]', "invalid_payload", "$[0].labels"),
        (b'[{"labels": {"": "x"}}]', "invalid_payload", '$[0].labels[""]'),
        (
            b'[{"labels": {"a": "b"}}, {"labels": {"a": "b"}, "startsAt": "yesterday"}]',
            "invalid_payload",
            "$[1].startsAt",
        ),
        (
            b'[{"labels": {"a": "b"}, "startsAt": "2026-08-20T10:00:00Z", "endsAt": "soon"}]',
            "invalid_payload",
            "$[0].endsAt",
        ),
        (b'[{"labels": {"a": "b"}, "endsAt": 5}]', "invalid_payload", "$[0].endsAt"),
    ],
)
def test_alertmanager_v2_errors_name_the_field(body: bytes, reason: str, field: str) -> None:
    with pytest.raises(PayloadError) as info:
        normalize_alertmanager_v2(body, NOW)
    assert info.value.reason == reason
    assert info.value.field.startswith(field)
    assert info.value.message
