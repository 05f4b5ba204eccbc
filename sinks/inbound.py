"""Acknowledgements coming back from the vendors: verify the request, find the incident.

One function per vendor, pure (bytes and headers in, `Ack`s out), for
`POST /api/v1/sinks/{name}/webhook`:

| sink       | what the vendor sends                          | authenticated by                     |
|------------|------------------------------------------------|--------------------------------------|
| pagerduty  | v3 webhook, `incident.acknowledged`; the        | `X-PagerDuty-Signature`: `v1=` HMAC- |
|            | incident's `incident_key` is our `dedup_key`    | SHA256 of the raw body (any of them) |
| opsgenie   | outgoing webhook, `action: Acknowledge`; the    | `Authorization: Bearer <token>`      |
|            | alert's `alias` is the incident key             | (a custom header of the integration) |
| jira       | issue webhook, `jira:issue_updated` moving the  | `?token=` in the webhook URL         |
|            | status out of "To Do"; the `stormwatch-<key>`   |                                      |
|            | label names the incident                        |                                      |
| servicenow | an outbound REST message from a business rule:  | `Authorization: Bearer <token>`      |
|            | `{"correlation_id", "state", "sys_updated_by"}` |                                      |
|            | when `state` leaves 1 (New)                     |                                      |

Anything else a vendor sends (a resolve, a note) is ignored: stormwatch resolves an
incident when its alerts do.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import msgspec

from sinks.jira import incident_label
from stormwatch.errors import PayloadError, StormwatchError

__all__ = [
    "Ack",
    "Unauthorized",
    "check_token",
    "jira_acks",
    "opsgenie_acks",
    "pagerduty_acks",
    "servicenow_acks",
]

_LABEL_PREFIX = incident_label("")


class Ack(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    by: str


class Unauthorized(StormwatchError):
    """The request does not carry the sink's secret: HTTP 401, nothing is done."""


def _json(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as err:
        raise PayloadError(f"not JSON: {err}", source="webhook", reason="invalid_json") from err


def _obj(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError("expected an object", source="webhook", field=field)
    return value


def _maybe(value: Any) -> dict[str, Any]:
    """An optional object: {} when absent or not an object."""
    return value if isinstance(value, dict) else {}


def check_token(secret: str, authorization: str | None, query_token: str | None) -> None:
    """A shared token, as `Authorization: Bearer <token>` or `?token=`."""
    given = ""
    if authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    elif query_token:
        given = query_token
    if not given or not hmac.compare_digest(given.encode(), secret.encode()):
        raise Unauthorized("missing or wrong token")


def pagerduty_acks(body: bytes, signature: str | None, secret: str) -> list[Ack]:
    expected = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = [s.strip() for s in (signature or "").split(",")]
    if not any(hmac.compare_digest(expected, s) for s in given if s.startswith("v1=")):
        raise Unauthorized("X-PagerDuty-Signature does not match the webhook secret")
    event = _obj(_obj(_json(body), "$").get("event"), "$.event")
    if event.get("event_type") != "incident.acknowledged":
        return []
    data = _obj(event.get("data"), "$.event.data")
    key = data.get("incident_key")
    if not isinstance(key, str) or not key:
        return []
    agent = _maybe(event.get("agent"))
    return [Ack(key=key, by=str(agent.get("summary") or "PagerDuty"))]


def opsgenie_acks(body: bytes) -> list[Ack]:
    payload = _obj(_json(body), "$")
    if payload.get("action") != "Acknowledge":
        return []
    alert = _obj(payload.get("alert"), "$.alert")
    key = alert.get("alias")
    if not isinstance(key, str) or not key:
        return []
    return [Ack(key=key, by=str(alert.get("username") or "Opsgenie"))]


def jira_acks(body: bytes) -> list[Ack]:
    payload = _obj(_json(body), "$")
    if payload.get("webhookEvent") != "jira:issue_updated":
        return []
    items = _maybe(payload.get("changelog")).get("items") or []
    if not any(isinstance(i, dict) and i.get("field") == "status" for i in items):
        return []
    fields = _obj(_obj(payload.get("issue"), "$.issue").get("fields"), "$.issue.fields")
    category = _maybe(_maybe(fields.get("status")).get("statusCategory")).get("key")
    if category == "new":  # moved back to "To Do", or between two "To Do" statuses
        return []
    by = str(_maybe(payload.get("user")).get("displayName") or "Jira")
    return [
        Ack(key=label.removeprefix(_LABEL_PREFIX), by=by)
        for label in fields.get("labels") or []
        if isinstance(label, str) and label.startswith(_LABEL_PREFIX)
    ]


def servicenow_acks(body: bytes) -> list[Ack]:
    payload = _obj(_json(body), "$")
    record = _maybe(payload.get("result")) or payload
    key, state = record.get("correlation_id"), str(record.get("state", ""))
    if not isinstance(key, str) or not key or state in ("", "1"):
        return []
    return [Ack(key=key, by=str(record.get("sys_updated_by") or "ServiceNow"))]
