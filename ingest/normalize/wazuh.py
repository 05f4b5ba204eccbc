"""Wazuh manager alerts (`alerts.json` lines or the integration payload, 4.x).

One alert object, a JSON array of them, or JSON lines. Labels are built from what
identifies the detection, never from Wazuh's per-alert `id` (unique per alert, it would
defeat dedup): `rule_id`, `agent_id` and `srcip` make the fingerprint, as Wazuh users
dedup by rule, agent and source address. Severity comes from `rule.level` (0-15).
The item is kept whole in `Alert.raw` for evidence.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from ingest.fingerprint import fingerprint_labels
from ingest.normalize._common import decode
from stormwatch.errors import PayloadError
from stormwatch.wire import Alert

__all__ = ["normalize_wazuh"]

SOURCE = "wazuh"


class _Mitre(msgspec.Struct, gc=False):
    id: list[str] = []
    tactic: list[str] = []


class _Rule(msgspec.Struct, gc=False):
    id: str
    level: int = 0
    description: str = ""
    groups: list[str] = []
    mitre: _Mitre | None = None


class _Agent(msgspec.Struct, frozen=True, gc=False):
    id: str = ""
    name: str = ""
    ip: str = ""


class _Data(msgspec.Struct, frozen=True, gc=False):
    srcip: str = ""
    srcuser: str = ""


class WazuhAlert(msgspec.Struct, gc=False):
    rule: _Rule
    timestamp: str = ""
    agent: _Agent = _Agent()
    data: _Data = _Data()
    full_log: str = ""
    location: str = ""


_one = msgspec.json.Decoder(WazuhAlert)
_many = msgspec.json.Decoder(list[msgspec.Raw])


def _severity(level: int) -> str:
    return "critical" if level >= 12 else "warning" if level >= 7 else "info"


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


def _items(body: bytes) -> list[bytes]:
    stripped = body.strip()
    if stripped.startswith(b"["):
        return [bytes(r) for r in decode(_many, stripped, SOURCE)]
    lines = [line for line in stripped.splitlines() if line.strip()]
    if not lines:
        raise PayloadError("empty body", source=SOURCE, reason="invalid_payload")
    return (
        lines
        if len(lines) > 1 and all(line.lstrip().startswith(b"{") for line in lines)
        else [stripped]
    )


def normalize_wazuh(body: bytes, received_at: float) -> list[Alert]:
    """Wazuh alert(s) -> alerts. Raises PayloadError."""
    out = []
    for i, raw in enumerate(_items(body)):
        try:
            item = decode(_one, raw, SOURCE)
        except PayloadError as err:
            err.field = f"$[{i}]" + err.field.removeprefix("$")
            raise
        labels = {
            "alertname": item.rule.description or f"wazuh rule {item.rule.id}",
            "rule_id": item.rule.id,
            "agent_id": item.agent.id,
            "severity": _severity(item.rule.level),
        }
        for key, value in (("agent", item.agent.name), ("srcip", item.data.srcip)):
            if value:
                labels[key] = value
        identity: dict[str, str] = {k: labels[k] for k in ("rule_id", "agent_id") if k in labels}
        identity["srcip"] = item.data.srcip
        annotations = {"level": str(item.rule.level), "groups": ",".join(item.rule.groups)}
        if item.full_log:
            annotations["full_log"] = item.full_log[:2000]
        if item.rule.mitre and item.rule.mitre.id:
            annotations["mitre"] = ",".join(item.rule.mitre.id)
        out.append(
            Alert(
                source=SOURCE,
                fingerprint=fingerprint_labels(identity),
                status="firing",
                labels=labels,
                annotations=annotations,
                starts_at=_timestamp(item.timestamp, received_at),
                received_at=received_at,
                raw=msgspec.Raw(raw),
            )
        )
    return out
