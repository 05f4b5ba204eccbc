"""Splunk: the webhook alert action, and Splunk ES notable events (`POST /webhook/splunk`).

The webhook alert action (the bundled `alert_webhook`) posts `search_name`, `sid`,
`app`, `owner`, `results_link` and `result`, the first result row, with `_time` as a
string epoch and multi-value fields as lists. A notable event (Splunk ES) arrives as
such a row (the action on a correlation search) or on its own, one object or an array.

| field | becomes |
| --- | --- |
| `search_name` (webhook); `rule_name`, else `rule_title`, else `search_name` (notable) | `alertname` |
| every field of `result`, except Splunk's own (`_*`, `date_*`, `punct`, `timestartpos`, `timeendpos`, `linecount`, `splunk_server*`) and empty ones; lists joined with `,` | a label of the same name (at most 64) |
| `_raw`, `sid`, `app`, `owner`, `search_name` | annotations; `results_link` is the generator URL |
| `_time` (epoch or RFC 3339) | the event time |
| `urgency` (notables), else a `severity` field | `Alert.severity`, through the table |
| `status_label` Resolved or Closed (`status` 4 or 5) | resolved |

A notable's identity is its `event_id`, stable while it is worked on, so closing it
resolves the open one. Any other row's identity is its label set, as for Alertmanager:
the same search finding the same row again is a re-send.
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
from ingest.normalize.severity import normalize_severity
from stormwatch.errors import PayloadError
from stormwatch.wire import Alert

__all__ = ["normalize_splunk"]

SOURCE = "splunk"
_any = msgspec.json.Decoder()
_encode = msgspec.json.Encoder().encode
_SPLUNK_FIELDS = {
    "punct",
    "timestartpos",
    "timeendpos",
    "linecount",
    "splunk_server",
    "splunk_server_group",
}
_TEXT_FIELDS = frozenset(("_raw", "rule_description", "drilldown_search", "status_label"))
"""Free text, kept as annotations, never as labels."""
_NOTABLE_KEYS = ("rule_name", "urgency", "security_domain")
_RESOLVED = {"resolved", "closed"}
_MAX_LABELS = 64


def _own(name: str) -> bool:
    """Splunk's bookkeeping fields, which change per event and identify nothing."""
    return name.startswith(("_", "date_", "tag::")) or name in _SPLUNK_FIELDS


def _time(value: Any, at: str) -> float | None:
    return parse_time(value, source=SOURCE, field=at)


def _rows(body: Any) -> list[tuple[dict[str, Any], str, dict[str, Any]]]:
    """(row, its $.path, the webhook envelope around it) for every row in the body."""
    if isinstance(body, dict) and "result" in body:
        if not isinstance(body["result"], dict):
            raise PayloadError("result must be an object", source=SOURCE, field="$.result")
        return [(body["result"], "$.result", body)]
    items = body if isinstance(body, list) else [body]
    out = []
    for n, item in enumerate(items):
        at = f"$[{n}]" if isinstance(body, list) else "$"
        if not isinstance(item, dict):
            raise PayloadError(
                "expected a webhook payload or a notable event", source=SOURCE, field=at
            )
        if "result" in item and isinstance(item["result"], dict):
            out.append((item["result"], f"{at}.result", item))
        else:
            out.append((item, at, {}))
    return out


def _alert(row: dict[str, Any], at: str, envelope: dict[str, Any], received_at: float) -> Alert:
    notable = any(k in row for k in _NOTABLE_KEYS) or "@@notable@@" in label_value(
        row.get("event_id")
    )
    name = (
        label_value(row.get("rule_name"))
        or label_value(row.get("rule_title"))
        or label_value(envelope.get("search_name"))
        if notable
        else label_value(envelope.get("search_name"))
    ) or label_value(row.get("search_name"))
    if not name:
        msg = "no search_name (or a notable's rule_name): nothing to call the alert"
        raise PayloadError(
            msg, source=SOURCE, field="$.search_name" if envelope else f"{at}.rule_name"
        )
    labels = {"alertname": name}
    for key, value in row.items():
        if len(labels) > _MAX_LABELS:
            break
        text = label_value(value)
        if text and not _own(key) and key not in labels and key not in _TEXT_FIELDS | {"event_id"}:
            labels[key] = text
    status_label = label_value(row.get("status_label")).lower()
    resolved = status_label in _RESOLVED or (
        notable and not status_label and label_value(row.get("status")) in ("4", "5")
    )
    for key in ("status", "status_label", "owner"):  # a notable's workflow, not its identity
        if notable:
            labels.pop(key, None)
    when = _time(row.get("_time"), f"{at}._time")
    starts_at, ends_at = event_times(
        when,
        max(received_at, when or received_at) if resolved else None,
        received_at,
        source=SOURCE,
        at=at,
        starts="_time",
        ends="_time",
    )
    annotations = {
        k: label_value(envelope.get(k))
        for k in ("sid", "app", "owner", "search_name")
        if envelope.get(k)
    }
    for key in sorted(_TEXT_FIELDS):
        if label_value(row.get(key)):
            annotations[key.lstrip("_")] = label_value(row.get(key))
    event_id = label_value(row.get("event_id")) if notable else ""
    return Alert(
        source=SOURCE,
        fingerprint=vendor_fingerprint("event_id", event_id, labels),
        status="resolved" if resolved else "firing",
        labels=labels,
        severity=normalize_severity(row.get("urgency") if notable else row.get("severity")),
        annotations=annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        received_at=received_at,
        generator_url=label_value(envelope.get("results_link")),
        raw=msgspec.Raw(_encode(row)),
    )


def normalize_splunk(body: bytes, received_at: float) -> list[Alert]:
    """A Splunk webhook payload or notable event(s) -> alerts. Raises PayloadError."""
    return [_alert(row, at, env, received_at) for row, at, env in _rows(decode(_any, body, SOURCE))]
