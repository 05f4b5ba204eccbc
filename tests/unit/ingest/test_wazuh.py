"""Wazuh alerts: severity bands, the labels a rule can group by, identity, wrappers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.normalize.wazuh import normalize_wazuh, wazuh_severity
from stormwatch.errors import PayloadError

PAYLOADS = Path(__file__).resolve().parents[2] / "payloads" / "wazuh"
NOW = 1_786_250_000.0  # 2026-08-09, shortly after the sample alerts


def load(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        (0, "info"),
        (4, "info"),
        (5, "warning"),
        (7, "warning"),
        (8, "high"),
        (10, "high"),
        (11, "high"),
        (12, "critical"),
        (15, "critical"),
        (16, "critical"),
    ],
)
def test_rule_level_bands(level: int, severity: str) -> None:
    assert wazuh_severity(level) == severity
    body = json.dumps({"rule": {"id": "1", "level": level}}).encode()
    (a,) = normalize_wazuh(body, NOW)
    assert a.severity == severity and a.labels["severity"] == severity
    assert a.labels["rule_level"] == str(level)


def test_a_missing_level_is_zero_and_info() -> None:
    (a,) = normalize_wazuh(b'{"rule": {"id": "1"}}', NOW)
    assert a.severity == "info" and a.labels["rule_level"] == "0"


def test_sshd_alert_labels_and_identity() -> None:
    raw = json.loads(load("alert.json"))
    (a,) = normalize_wazuh(json.dumps(raw).encode(), NOW)
    assert a.source == "wazuh" and a.status == "firing"
    assert a.severity == "warning"  # level 5
    labels = a.labels
    assert labels["alertname"] == "sshd: Attempt to login using a non-existent user"
    assert (labels["rule_id"], labels["agent_id"], labels["agent"]) == (
        "5710",
        "002",
        "ubuntu22-desktop",
    )
    assert labels["agent_ip"] == "192.168.64.30"
    assert (labels["srcip"], labels["srcuser"]) == ("198.51.100.7", "postgres")
    assert labels["decoder"] == "sshd" and labels["location"] == "/var/log/auth.log"
    assert a.annotations["mitre"] == "T1110.001,T1021.004"
    assert a.annotations["mitre_tactic"] == "Credential Access,Lateral Movement"
    assert a.annotations["wazuh_alert_id"] == "1786248466.704409"
    assert a.raw is not None and json.loads(bytes(a.raw))["id"] == "1786248466.704409"
    # The same detection again (new Wazuh id, later time) is a repeat of the same alert...
    raw["id"], raw["timestamp"] = "1786248999.1", "2026-08-09T04:09:00.000+0000"
    (b,) = normalize_wazuh(json.dumps(raw).encode(), NOW)
    assert b.fingerprint == a.fingerprint
    # ...another user from the same address is another alert.
    raw["data"]["srcuser"] = "oracle"
    (c,) = normalize_wazuh(json.dumps(raw).encode(), NOW)
    assert c.fingerprint != a.fingerprint


def test_dstuser_is_a_label() -> None:
    body = b'{"rule": {"id": "5902", "level": 8}, "agent": {"id": "1"}, "data": {"dstuser": "eve"}}'
    (a,) = normalize_wazuh(body, NOW)
    assert a.labels["dstuser"] == "eve" and a.severity == "high"


def test_syscheck_fields_are_labels_and_the_path_is_identity() -> None:
    (a,) = normalize_wazuh(load("syscheck.json"), NOW)
    assert a.labels["syscheck_path"] == "/etc/passwd"
    assert a.labels["syscheck_event"] == "modified"
    assert a.labels["syscheck_changed_attributes"] == "size,mtime,md5,sha1,sha256"
    assert a.labels["syscheck_inode_after"] == "1311042"
    assert "syscheck_diff" not in a.labels  # free text: an annotation
    assert "backdoor" in a.annotations["syscheck_diff"]
    other = json.loads(load("syscheck.json"))
    other["syscheck"]["path"] = "/etc/shadow"
    (b,) = normalize_wazuh(json.dumps(other).encode(), NOW)
    assert b.fingerprint != a.fingerprint  # two files changed: two alerts


def test_nested_data_fields_join_with_underscores_and_never_overwrite_ours() -> None:
    (a,) = normalize_wazuh(load("windows.json"), NOW)
    assert a.severity == "critical"
    assert a.labels["win_system_eventID"] == "1"
    assert a.labels["win_eventdata_user"] == "CORP\\svc-backup"
    assert a.labels["agent_labels_site"] == "fra"
    body = b'{"rule": {"id": "9", "level": 3}, "data": {"severity": "x", "alertname": "y", "rule_id": "z"}}'
    (b,) = normalize_wazuh(body, NOW)
    assert (b.labels["severity"], b.labels["alertname"], b.labels["rule_id"]) == (
        "info",
        "wazuh rule 9",
        "9",
    )


def test_shuffle_envelope_is_unwrapped() -> None:
    (a,) = normalize_wazuh(load("shuffle.json"), NOW)
    assert a.labels["rule_id"] == "5712" and a.severity == "high"  # level 10
    assert a.labels["srcuser"] == "admin"
    assert json.loads(bytes(a.raw or b"{}"))["rule"]["id"] == "5712"  # the alert, not the envelope


def test_indexer_search_response_gives_every_hit() -> None:
    alerts = normalize_wazuh(load("indexer_search.json"), NOW)
    assert [a.labels["srcip"] for a in alerts] == ["198.51.100.7", "203.0.113.44"]
    (one,) = normalize_wazuh(
        json.dumps({"_index": "x", "_source": json.loads(load("alert.json"))}).encode(), NOW
    )
    assert one.labels["rule_id"] == "5710"


def test_json_lines_and_arrays() -> None:
    line = load("alert.json").replace(b"\n", b"")
    assert len(normalize_wazuh(line + b"\n" + line + b"\n", NOW)) == 2
    assert len(normalize_wazuh(b"[" + line + b"," + line + b"]", NOW)) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"title": "no rule here"}', "$.rule"),
        (b'{"a": {"rule": {"id": "1"}}, "b": {"rule": {"id": "2"}}}', "$.rule"),  # ambiguous
        (b'[{"rule": {"id": "1"}}, {"rule": {"level": 3}}]', "$[1].rule"),
        (b'{"rule": {"id": "1", "level": "high"}}', "$.rule.level"),
        (b'{"rule": {"id": "1"}, "timestamp": "2126-01-01T00:00:00.000+0000"}', "$.timestamp"),
    ],
)
def test_errors_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as info:
        normalize_wazuh(body, NOW)
    assert info.value.field.startswith(field), info.value.field
