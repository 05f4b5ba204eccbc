"""Wazuh manager alerts (`alerts.json` lines or the integration payload, 4.x).

What arrives: one alert object, a JSON array of them, JSON lines, an alert wrapped by an
integration (Wazuh's Shuffle integration puts it under `all_fields`; others under a key
of their own), or alerts as the Wazuh indexer returns them (`{_source: alert}`, a
`_search` response's `hits.hits[]._source`).

Labels are every field a rule could group by: `alertname` (the rule's description),
`rule_id`, `rule_level`, `severity`, the agent (`agent_id`, `agent` = its name,
`agent_ip`, any other `agent_*`), every `data` field under its own name (`srcip`,
`srcuser`, `dstuser`; nested names joined with `_`: `win_eventdata_targetUserName`),
every `syscheck` field as `syscheck_*` (`syscheck_path`, `syscheck_event`), `decoder`
and `location`. A field never overwrites one of ours.

Severity is `rule.level` in bands: 0-4 info, 5-7 warning, 8-11 high, 12 and up critical
(a missing level is 0). The fingerprint is never Wazuh's per-alert `id` (unique per
alert, it would defeat dedup) but the detection: rule, agent, `srcip`, and `srcuser`,
`dstuser` and `syscheck_path` where present, so a repeat of the same detection is a
duplicate. The alert is kept whole in `Alert.raw` for evidence.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from ingest.fingerprint import fingerprint_labels
from ingest.normalize._common import check_times, decode, label_value
from ingest.normalize.severity import AlertSeverity
from stormwatch.errors import PayloadError, split_validation_message
from stormwatch.wire import Alert

__all__ = ["normalize_wazuh", "wazuh_severity"]

SOURCE = "wazuh"
_MAX_FIELD_LABELS = 64
"""Labels taken from `agent`, `data` and `syscheck` together; a Windows event carries a
few dozen, anything past this is noise (the alert stays whole in `raw`)."""
_IDENTITY = ("rule_id", "agent_id", "srcip", "srcuser", "dstuser", "syscheck_path")
_TEXT_FIELDS = {"diff", "full_log"}
"""Long free text: kept as annotations, never as labels."""


class _Mitre(msgspec.Struct, gc=False):
    id: list[str] = []
    tactic: list[str] = []
    technique: list[str] = []


class _Rule(msgspec.Struct, gc=False):
    id: str | int
    level: int = 0
    description: str = ""
    groups: list[str] = []
    mitre: _Mitre | None = None
    firedtimes: int | None = None


class _Named(msgspec.Struct, frozen=True, gc=False):
    name: str = ""


class WazuhAlert(msgspec.Struct, gc=False):
    rule: _Rule
    timestamp: str = ""
    id: str = ""
    agent: dict[str, Any] = {}
    data: dict[str, Any] = {}
    syscheck: dict[str, Any] = {}
    decoder: _Named = _Named()
    full_log: str = ""
    location: str = ""


_any = msgspec.json.Decoder()
_encode = msgspec.json.Encoder().encode


def wazuh_severity(level: int) -> AlertSeverity:
    """`rule.level` (0-16) in bands: 0-4 info, 5-7 warning, 8-11 high, 12+ critical."""
    if level >= 12:
        return "critical"
    if level >= 8:
        return "high"
    if level >= 5:
        return "warning"
    return "info"


def _timestamp(text: str, default: float) -> float:
    if not text:
        return default
    try:
        # Wazuh writes +0000 rather than +00:00.
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    except ValueError:
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            return default


def _documents(body: bytes) -> list[Any]:
    """The decoded top-level values: one document, an array's items, or JSON lines."""
    stripped = body.strip()
    if not stripped:
        raise PayloadError("empty body", source=SOURCE, reason="invalid_payload")
    lines = stripped.splitlines()
    if len(lines) > 1 and all(line.lstrip().startswith(b"{") for line in lines if line.strip()):
        try:
            return [decode(_any, line, SOURCE) for line in lines if line.strip()]
        except PayloadError:
            pass  # one pretty-printed object, not JSON lines
    doc = decode(_any, stripped, SOURCE)
    return doc if isinstance(doc, list) else [doc]


def _is_alert(node: Any) -> bool:
    return isinstance(node, dict) and isinstance(node.get("rule"), dict)


def _unwrap(doc: Any, at: str) -> list[tuple[Any, str]]:
    """Find the alert(s) in one document: itself, an indexer hit, a search response, or
    the one object an integration wrapped it in."""
    if _is_alert(doc):
        return [(doc, at)]
    if isinstance(doc, dict):
        hits = doc.get("hits")
        if isinstance(hits, dict) and isinstance(hits.get("hits"), list):
            return [
                (h.get("_source"), f"{at}.hits.hits[{n}]._source")
                for n, h in enumerate(hits["hits"])
                if isinstance(h, dict)
            ]
        inner = [(k, v) for k, v in doc.items() if _is_alert(v)]
        if len(inner) == 1:
            key, value = inner[0]
            return [(value, f"{at}.{key}")]
    msg = "not a Wazuh alert: no `rule` object, here or in one wrapping key"
    raise PayloadError(msg, source=SOURCE, field=f"{at}.rule")


_MAX_NESTING = 6
"""How deep `data` is followed (Windows events nest 3); deeper objects are left in `raw`."""


def _flatten(
    node: dict[str, Any], prefix: str, out: dict[str, str], room: list[int], depth: int = 0
) -> None:
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if depth < _MAX_NESTING:
                _flatten(value, f"{name}_", out, room, depth + 1)
            continue
        text = label_value(value)
        if not text or name in out or key in _TEXT_FIELDS or room[0] <= 0:
            continue
        out[name] = text
        room[0] -= 1


def _labels(item: WazuhAlert, severity: str) -> dict[str, str]:
    rule = item.rule
    labels = {
        "alertname": rule.description or f"wazuh rule {rule.id}",
        "rule_id": str(rule.id),
        "rule_level": str(rule.level),
        "severity": severity,
    }
    agent = item.agent
    if isinstance(agent.get("name"), str) and agent["name"]:
        labels["agent"] = agent["name"]
    if item.decoder.name:
        labels["decoder"] = item.decoder.name
    if item.location:
        labels["location"] = item.location
    room = [_MAX_FIELD_LABELS]
    _flatten({k: v for k, v in agent.items() if k != "name"}, "agent_", labels, room)
    _flatten(item.data, "", labels, room)
    _flatten(item.syscheck, "syscheck_", labels, room)
    labels.setdefault("agent_id", "")
    return labels


def _annotations(item: WazuhAlert) -> dict[str, str]:
    rule = item.rule
    out = {"level": str(rule.level), "groups": ",".join(rule.groups)}
    if item.id:
        out["wazuh_alert_id"] = item.id
    if item.full_log:
        out["full_log"] = item.full_log[:2000]
    diff = item.syscheck.get("diff")
    if isinstance(diff, str) and diff:
        out["syscheck_diff"] = diff[:2000]
    if rule.mitre is not None:
        for key, values in (
            ("mitre", rule.mitre.id),
            ("mitre_tactic", rule.mitre.tactic),
            ("mitre_technique", rule.mitre.technique),
        ):
            if values:
                out[key] = ",".join(values)
    return out


def _convert(node: Any, at: str) -> WazuhAlert:
    try:
        return msgspec.convert(node, WazuhAlert)
    except msgspec.ValidationError as err:
        message, path = split_validation_message(str(err))
        raise PayloadError(message, source=SOURCE, field=at + path.removeprefix("$")) from err


def normalize_wazuh(body: bytes, received_at: float) -> list[Alert]:
    """Wazuh alert(s) -> alerts. Raises PayloadError."""
    out = []
    docs = _documents(body)
    for i, doc in enumerate(docs):
        for node, at in _unwrap(
            doc, f"$[{i}]" if len(docs) > 1 or body.lstrip()[:1] == b"[" else "$"
        ):
            item = _convert(node, at)
            severity = wazuh_severity(item.rule.level)
            labels = _labels(item, severity)
            starts_at = _timestamp(item.timestamp, received_at)
            check_times(
                starts_at,
                None,
                received_at,
                source=SOURCE,
                starts_field=f"{at}.timestamp",
                ends_field=f"{at}.timestamp",
            )
            identity = {k: labels[k] for k in _IDENTITY if k in labels}
            identity.setdefault("srcip", "")
            out.append(
                Alert(
                    source=SOURCE,
                    fingerprint=fingerprint_labels(identity),
                    status="firing",
                    labels=labels,
                    severity=severity,
                    annotations=_annotations(item),
                    starts_at=starts_at,
                    received_at=received_at,
                    raw=msgspec.Raw(_encode(node)),
                )
            )
    return out
