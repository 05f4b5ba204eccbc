"""Elastic Security detection alerts (`POST /webhook/elastic`).

What arrives: one alert document (the `_source` of `.alerts-security.alerts-<space>`,
whose `kibana.alert.*` keys are flattened and ECS fields nested, or any mix); a Kibana
webhook action's body with the alerts under `alerts` (the common template puts
`{{context.alerts}}` there, with `rule_id`, `rule_name` and `rule_url` beside it); a
`_search` response, each hit's `_source` or `fields`; or a JSON array of documents.

| label        | from                                                                  |
| ------------ | --------------------------------------------------------------------- |
| `alertname`  | `kibana.alert.rule.name` (else the action's `rule_name`)               |
| `rule_id`    | `kibana.alert.rule.rule_id`, else `kibana.alert.rule.uuid`, else `rule_id` |
| `severity`   | `kibana.alert.severity` as sent (low, medium, high, critical)          |
| `risk_score` | `kibana.alert.risk_score`                                              |
| `host`, `user`, `srcip`, `dstip` | `host.name`, `user.name`, `source.ip`, `destination.ip` |
| `agent_id`, `agent` | `agent.id`, `agent.name`                                       |
| `tactic`, `technique` | MITRE names and ids from `kibana.alert.rule.threat` (sub-techniques too) |

`Alert.severity` is `kibana.alert.severity` through the table (low and medium are
warning). The event time is `kibana.alert.original_time` (the source event), else
`@timestamp`. `kibana.alert.workflow_status` `closed` or `acknowledged` (or
`kibana.alert.status` `recovered`) is resolved, at `workflow_status_updated_at`. The
fingerprint is Elastic's own alert id (`kibana.alert.uuid`, else the hit's `_id`),
stable while the alert changes status, so a closed alert resolves the open one.
Elastic 7's `signal.*` fields are read where the `kibana.alert.*` ones are missing.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ingest.normalize._common import (
    decode,
    event_times,
    label_value,
    parse_time,
    vendor_fingerprint,
)
from ingest.normalize.paths import lookup, parse_path
from ingest.normalize.severity import normalize_severity
from stormwatch.errors import PayloadError
from stormwatch.wire import Alert

__all__ = ["normalize_elastic"]

SOURCE = "elastic"
_any = msgspec.json.Decoder()
_encode = msgspec.json.Encoder().encode


def _paths(*texts: str) -> tuple[tuple[str | int, ...], ...]:
    return tuple(parse_path(t) for t in texts)


_FIELDS = {
    "alertname": _paths("kibana.alert.rule.name", "signal.rule.name"),
    "rule_id": _paths("kibana.alert.rule.rule_id", "kibana.alert.rule.uuid", "signal.rule.rule_id"),
    "severity": _paths("kibana.alert.severity", "signal.rule.severity"),
    "risk_score": _paths("kibana.alert.risk_score", "signal.rule.risk_score"),
    "host": _paths("host.name"),
    "user": _paths("user.name"),
    "srcip": _paths("source.ip"),
    "dstip": _paths("destination.ip"),
    "agent_id": _paths("agent.id"),
    "agent": _paths("agent.name"),
}
_UUID = _paths("kibana.alert.uuid", "signal.id")
_WORKFLOW = _paths("kibana.alert.workflow_status", "signal.status")
_STATUS = _paths("kibana.alert.status")
_ORIGINAL_TIME = _paths("kibana.alert.original_time", "signal.original_time", "@timestamp")
_UPDATED = _paths("kibana.alert.workflow_status_updated_at")
_REASON = _paths("kibana.alert.reason", "signal.reason")
_URL = _paths("kibana.alert.url")
_THREAT = _paths("kibana.alert.rule.threat", "signal.rule.threat")
_FLAT_TACTIC = _paths("kibana.alert.rule.threat.tactic.name")
_FLAT_TECHNIQUE = _paths(
    "kibana.alert.rule.threat.technique.id", "kibana.alert.rule.threat.technique.subtechnique.id"
)
_RESOLVED_WORKFLOW = {"closed", "acknowledged"}


def _first(doc: Any, paths: tuple[tuple[str | int, ...], ...]) -> Any:
    for path in paths:
        value = lookup(doc, path)
        if value is not None and value != [] and value != "":
            return value
    return None


def _mitre(doc: Any) -> tuple[list[str], list[str]]:
    """(tactic names, technique and sub-technique ids) of the rule's threat entries."""
    tactics: list[str] = []
    techniques: list[str] = []
    threat = _first(doc, _THREAT)
    for entry in threat if isinstance(threat, list) else []:
        if not isinstance(entry, dict):
            continue
        tactic = entry.get("tactic")
        if isinstance(tactic, dict) and tactic.get("name"):
            tactics.append(str(tactic["name"]))
        for tech in entry.get("technique") or []:
            if isinstance(tech, dict) and tech.get("id"):
                techniques.append(str(tech["id"]))
                for sub in tech.get("subtechnique") or []:
                    if isinstance(sub, dict) and sub.get("id"):
                        techniques.append(str(sub["id"]))
    if not tactics:
        tactics = [t for t in label_value(_first(doc, _FLAT_TACTIC)).split(",") if t]
    if not techniques:
        for path in _FLAT_TECHNIQUE:
            techniques += [t for t in label_value(lookup(doc, path)).split(",") if t]
    return list(dict.fromkeys(tactics)), list(dict.fromkeys(techniques))


def _time(value: Any, at: str) -> float | None:
    return parse_time(value, source=SOURCE, field=at, unit="rfc3339")


def _documents(body: Any) -> tuple[list[tuple[Any, str, str]], dict[str, Any]]:
    """(document, its $.path, the hit's _id) for every alert in the body, and what a
    webhook action put beside them."""
    if isinstance(body, dict) and isinstance(body.get("hits"), dict):
        hits = body["hits"].get("hits")
        if not isinstance(hits, list):
            raise PayloadError("hits.hits is not a list", source=SOURCE, field="$.hits.hits")
        out = []
        for n, hit in enumerate(hits):
            if not isinstance(hit, dict):
                continue
            key = "_source" if isinstance(hit.get("_source"), dict) else "fields"
            out.append((hit.get(key), f"$.hits.hits[{n}].{key}", str(hit.get("_id") or "")))
        return out, {}
    if isinstance(body, dict) and isinstance(lookup(body, ("context", "alerts")), list):
        beside = {**body, **body["context"]}
        return [
            (a, f"$.context.alerts[{n}]", "") for n, a in enumerate(body["context"]["alerts"])
        ], beside
    if isinstance(body, dict) and isinstance(body.get("alerts"), list):
        return [(a, f"$.alerts[{n}]", "") for n, a in enumerate(body["alerts"])], body
    if isinstance(body, list):
        return [
            (d.get("_source"), f"$[{n}]._source", str(d.get("_id") or ""))
            if isinstance(d, dict) and isinstance(d.get("_source"), dict)
            else (d, f"$[{n}]", "")
            for n, d in enumerate(body)
        ], {}
    if isinstance(body, dict) and isinstance(body.get("_source"), dict):
        return [(body["_source"], "$._source", str(body.get("_id") or ""))], {}
    return [(body, "$", "")], {}


def _beside(beside: dict[str, Any], name: str) -> Any:
    rule = beside.get("rule")
    nested = rule.get(name) if isinstance(rule, dict) else None
    return beside.get(f"rule_{name}") or nested


def _alert(doc: Any, at: str, hit_id: str, beside: dict[str, Any], received_at: float) -> Alert:
    if not isinstance(doc, dict):
        raise PayloadError("an alert must be a JSON object", source=SOURCE, field=at)
    labels: dict[str, str] = {}
    for label, paths in _FIELDS.items():
        value = label_value(_first(doc, paths))
        if value:
            labels[label] = value
    labels.setdefault("alertname", label_value(_beside(beside, "name")) or "")
    if not labels["alertname"]:
        msg = "no rule name: kibana.alert.rule.name is missing"
        raise PayloadError(msg, source=SOURCE, field=f"{at}.kibana.alert.rule.name")
    if "rule_id" not in labels and label_value(_beside(beside, "id")):
        labels["rule_id"] = label_value(_beside(beside, "id")) or ""
    tactics, techniques = _mitre(doc)
    if tactics:
        labels["tactic"] = ",".join(tactics)
    if techniques:
        labels["technique"] = ",".join(techniques)
    workflow = (label_value(_first(doc, _WORKFLOW)) or "open").lower()
    recovered = (label_value(_first(doc, _STATUS)) or "").lower() == "recovered"
    resolved = workflow in _RESOLVED_WORKFLOW or recovered
    starts_at, ends_at = event_times(
        _time(_first(doc, _ORIGINAL_TIME), f"{at}.kibana.alert.original_time"),
        (
            _time(_first(doc, _UPDATED), f"{at}.kibana.alert.workflow_status_updated_at")
            or received_at
        )
        if resolved
        else None,
        received_at,
        source=SOURCE,
        at=at,
        starts="kibana.alert.original_time",
        ends="kibana.alert.workflow_status_updated_at",
    )
    uuid = label_value(_first(doc, _UUID)) or hit_id
    annotations = {"workflow_status": workflow}
    for key, paths in (("reason", _REASON), ("alert_uuid", _UUID)):
        value = label_value(_first(doc, paths))
        if value:
            annotations[key] = value
    url = label_value(_first(doc, _URL)) or label_value(_beside(beside, "url")) or ""
    return Alert(
        source=SOURCE,
        fingerprint=vendor_fingerprint("kibana.alert.uuid", uuid, labels),
        status="resolved" if resolved else "firing",
        labels=labels,
        severity=normalize_severity(labels.get("severity")),
        annotations=annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        received_at=received_at,
        generator_url=url,
        raw=msgspec.Raw(_encode(doc)),
    )


def normalize_elastic(body: bytes, received_at: float) -> list[Alert]:
    """Elastic Security alert(s) -> alerts (none for an empty search). Raises PayloadError."""
    documents, beside = _documents(decode(_any, body, SOURCE))
    return [_alert(doc, at, hit, beside, received_at) for doc, at, hit in documents]
