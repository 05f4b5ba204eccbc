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

import aiohttp
import msgspec

from sinks.base import Receipt, classify_status, translate_client_error
from sinks.retry import RetryPolicy
from stormwatch.errors import ConfigError, SinkError
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
        if (self.api_key is None) == (self.api_key_file is None):
            msg = "exactly one of api_key and api_key_file must be configured"
            raise ConfigError(msg, field=f"sinks[{self.name}].api_key")
        if self.api_key is not None:
            return self.api_key
        try:
            with open(self.api_key_file or "") as fh:
                return fh.read().strip()
        except OSError as err:
            msg = f"cannot read api_key_file: {err.strerror}"
            raise ConfigError(msg, field=f"sinks[{self.name}].api_key_file") from err


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
        self._key = config.key()
        self._session: aiohttp.ClientSession | None = None

    async def deliver(self, event: IncidentEvent) -> Receipt:
        if event.event == "updated" and (
            not self.config.send_updates or event.reason == "duplicates"
        ):
            return Receipt(sink=self.name, detail="skipped update")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout)
            )
        path, body = build_opsgenie_request(event, self.config)
        headers = {"Content-Type": "application/json", "Authorization": f"GenieKey {self._key}"}
        try:
            async with self._session.post(
                self.config.url.rstrip("/") + path, data=msgspec.json.encode(body), headers=headers
            ) as resp:
                text = await resp.text()
                classify_status(self.name, resp.status, text, resp.headers.get("Retry-After"))
        except SinkError:
            raise
        except (aiohttp.ClientError, TimeoutError) as err:
            raise translate_client_error(self.name, err) from err
        try:
            request_id = str(msgspec.json.decode(text).get("requestId", ""))
        except (msgspec.DecodeError, AttributeError):
            request_id = ""
        return Receipt(
            sink=self.name, status=resp.status, remote_id=event.incident.key, detail=request_id
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
