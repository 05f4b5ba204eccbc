"""`opsgenie`: Opsgenie's Alert API, one Opsgenie alert per incident.

`alias` is the incident key: `opened` creates the alert (Opsgenie folds a create with
the alias of an open alert into it), `updated` adds a note to it, `resolved` closes it
(`POST /v2/alerts/{alias}/close?identifierType=alias`). Every call answers 202 with a
`requestId`: Opsgenie processes it asynchronously. Errors: 400/422 (permanent), 401/403
(permanent: the key), 429 and 5xx (retried).

Not done: polling `GET /v2/alerts/requests/{requestId}` to confirm each request; a
request Opsgenie accepts (202) and later fails is not seen.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from sinks.base import Receipt
from sinks.http import HttpClient, read_secret
from sinks.retry import RetryPolicy
from stormwatch.wire import Duration, IncidentEvent

__all__ = ["OpsgenieSink", "OpsgenieSinkConfig", "build_opsgenie_request"]

API_URL = "https://api.opsgenie.com"


class OpsgenieSinkConfig(
    msgspec.Struct,
    tag="opsgenie",
    tag_field="type",
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
):
    name: str
    api_key: str | None = None
    api_key_file: str | None = None
    url: str = API_URL
    """`https://api.eu.opsgenie.com` for the EU instance."""
    responders: list[dict[str, str]] = []
    send_updates: bool = True
    timeout: Duration = Duration(10)
    retry: RetryPolicy = RetryPolicy()

    def key(self) -> str:
        return read_secret(self.api_key, self.api_key_file, sink=self.name, name="api_key")


def build_opsgenie_request(
    event: IncidentEvent, cfg: OpsgenieSinkConfig
) -> tuple[str, dict[str, Any]]:
    """(path, body) for one incident event (pure: tests compare it whole)."""
    inc = event.incident
    alias = quote(inc.key, safe="")
    if event.event == "resolved":
        return f"/v2/alerts/{alias}/close?identifierType=alias", {
            "source": "stormwatch",
            "note": f"Resolved: {event.reason}"[:25000],
        }
    if event.event == "updated":
        return f"/v2/alerts/{alias}/notes?identifierType=alias", {
            "source": "stormwatch",
            "note": f"Updated ({event.reason}): {inc.alert_count} alerts, severity {inc.severity}"[
                :25000
            ],
        }
    tags = [inc.rule, inc.category, *[f"{k}:{v}" for k, v in inc.group.items()]]
    body: dict[str, Any] = {
        "message": f"[{inc.severity}] {inc.title}"[:130],
        "alias": inc.key[:512],
        "description": (inc.summary or inc.title)[:15000],
        "tags": [t[:50] for t in tags][:20],
        "details": {
            "incident_key": inc.key,
            "rule": inc.rule,
            "alert_count": str(inc.alert_count),
            "priority": str(inc.priority),
        },
        "entity": inc.group.get("service", inc.rule)[:512],
        "source": "stormwatch",
        "priority": inc.severity,  # P1..P4 map onto Opsgenie's P1..P5 as they are
    }
    if cfg.responders:
        body["responders"] = cfg.responders
    return "/v2/alerts", body


class OpsgenieSink:
    def __init__(self, config: OpsgenieSinkConfig) -> None:
        self.name = config.name
        self.config = config
        self._http = HttpClient(
            config.name, config.timeout, {"Authorization": f"GenieKey {config.key()}"}
        )

    async def deliver(self, event: IncidentEvent) -> Receipt:
        if event.event == "updated" and (
            not self.config.send_updates or event.reason == "duplicates"
        ):
            return Receipt(sink=self.name, detail="skipped update")
        path, body = build_opsgenie_request(event, self.config)
        status, answer = await self._http.request_json(
            "POST", self.config.url.rstrip("/") + path, body
        )
        request_id = str(answer.get("requestId", "")) if isinstance(answer, dict) else ""
        return Receipt(
            sink=self.name, status=status, remote_id=event.incident.key, detail=request_id
        )

    async def close(self) -> None:
        await self._http.close()
