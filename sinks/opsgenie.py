"""`opsgenie`: Opsgenie's Alert API, one Opsgenie alert per incident.

`alias` is the incident key: a create with the alias of an open alert only bumps its
count, so a create repeated after a lost answer makes no twin. Every call answers 202
with a `requestId` and Opsgenie does the work later; the sink polls
`GET /v2/alerts/requests/{requestId}` (404 until processed) and only counts a call done
when it reports success, so an accepted-but-failed request is retried, not lost. A
request whose outcome did not show within `request_timeout` is remembered
(`pending`) and polled first on the next attempt.

The alert follows the incident: a severity or title change updates its `priority` and
`message` (`PUT .../priority`, `.../message`); added and resolved alerts become notes
(each with a marker, looked for before posting again); an acknowledgement in
stormwatch acknowledges it; `resolved` closes it. Opsgenie's own acknowledgements reach
stormwatch through its webhook integration (POST /api/v1/sinks/{name}/webhook, with
`webhook_token`). Errors: 400/422 (permanent), 401/403 (permanent: the key), 429 and
5xx (retried).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import msgspec

from sinks.base import Receipt, SinkContext
from sinks.http import HttpClient, optional_secret, read_secret
from sinks.incident_text import marker, note_text, title_line
from sinks.remote import RemoteRef
from sinks.retry import BreakerPolicy, RetryPolicy
from stormwatch.errors import PermanentSinkError, RetryableSinkError
from stormwatch.wire import Duration, IncidentEvent

__all__ = ["OpsgenieSink", "OpsgenieSinkConfig", "build_opsgenie_alert"]

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
    incident_url: str | None = None
    """Link back to us, `{key}` replaced (default: the daemon's `external_url`)."""
    send_updates: bool = True
    request_timeout: Duration = Duration(10)
    """How long to wait for Opsgenie to process a request before retrying later."""
    request_poll_interval: Duration = Duration(0.2)
    webhook_token: str | None = None
    webhook_token_file: str | None = None
    """Expected on Opsgenie's outgoing webhook (header `Authorization: Bearer <token>`)."""
    timeout: Duration = Duration(10)
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()

    def webhook_key(self) -> str | None:
        """The secret its webhook must carry, if it takes one."""
        return optional_secret(
            self.webhook_token, self.webhook_token_file, sink=self.name, name="webhook_token"
        )

    def key(self) -> str:
        return read_secret(self.api_key, self.api_key_file, sink=self.name, name="api_key")


def build_opsgenie_alert(
    event: IncidentEvent, cfg: OpsgenieSinkConfig, link: str = ""
) -> dict[str, Any]:
    """The create body (pure: tests compare it whole)."""
    inc = event.incident
    tags = [inc.rule, inc.category, *[f"{k}:{v}" for k, v in inc.group.items()]]
    description = inc.summary or inc.title
    if link:
        description += f"\n\n{link}"
    details = {
        "incident_key": inc.key,
        "rule": inc.rule,
        "alert_count": str(inc.alert_count),
        "priority": str(inc.priority),
    }
    if link:
        details["stormwatch"] = link
    body: dict[str, Any] = {
        "message": title_line(inc)[:130],
        "alias": inc.key[:512],
        "description": description[:15000],
        "tags": [t[:50] for t in tags][:20],
        "details": details,
        "entity": inc.group.get("service", inc.rule)[:512],
        "source": "stormwatch",
        "priority": inc.severity,  # P1..P4 map onto Opsgenie's P1..P5 as they are
    }
    if cfg.responders:
        body["responders"] = cfg.responders
    return body


class OpsgenieSink:
    def __init__(self, config: OpsgenieSinkConfig, ctx: SinkContext | None = None) -> None:
        self.name = config.name
        self.config = config
        self.ctx = ctx or SinkContext()
        self.refs = self.ctx.refs
        self._base = config.url.rstrip("/")
        self._http = HttpClient(
            config.name, config.timeout, {"Authorization": f"GenieKey {config.key()}"}
        )

    async def _outcome(self, request_id: str) -> dict[str, Any]:
        """Poll until Opsgenie has processed the request; its `data` then."""
        deadline = time.monotonic() + self.config.request_timeout
        while True:
            try:
                _, body = await self._http.request_json(
                    "GET", f"{self._base}/v2/alerts/requests/{quote(request_id, safe='')}"
                )
                return dict(body.get("data") or {})
            except PermanentSinkError as err:
                if err.status != 404:  # 404: "Request not found", not processed yet
                    raise
            if time.monotonic() >= deadline:
                msg = f"{self.name}: request {request_id} not processed by Opsgenie yet"
                raise RetryableSinkError(msg, sink=self.name)
            await asyncio.sleep(self.config.request_poll_interval)

    async def _call(
        self, key: str, ref: RemoteRef, op: str, method: str, path: str, body: dict[str, Any]
    ) -> tuple[RemoteRef, dict[str, Any]]:
        """Send one request and wait for its outcome; while the outcome is unknown the
        ref names it (`op:requestId`), and the next attempt polls it instead of sending
        the request again."""
        if ref.pending.startswith(op + ":"):
            data = await self._outcome(ref.pending.split(":", 2)[-1])
            ref = await self.refs.mark(key, ref, pending="")
            if data.get("isSuccess"):
                return ref, data
        _, answer = await self._http.request_json(method, self._base + path, body)
        request_id = str(answer.get("requestId", "")) if isinstance(answer, dict) else ""
        if not request_id:
            return ref, {}
        ref = await self.refs.mark(key, ref, pending=f"{op}:{request_id}")
        data = await self._outcome(request_id)
        return await self.refs.mark(key, ref, pending=""), data

    def _path(self, key: str, action: str) -> str:
        return f"/v2/alerts/{quote(key, safe='')}/{action}?identifierType=alias"

    async def _create(self, event: IncidentEvent, ref: RemoteRef) -> RemoteRef:
        key = event.incident.key
        body = build_opsgenie_alert(
            event, self.config, self.ctx.link(self.config.incident_url, key)
        )
        if ref.state != "creating":
            ref = await self.refs.mark(key, ref, state="creating")
        ref, data = await self._call(key, ref, "create", "POST", "/v2/alerts", body)
        if data and not data.get("isSuccess"):
            msg = f"{self.name}: create of {key} failed: {data.get('status')}"
            raise PermanentSinkError(msg, sink=self.name)
        sent = {"priority": body["priority"], "message": body["message"]}
        return await self.refs.mark(key, ref, state="open", remote_id=key, sent=sent)

    async def _note(self, event: IncidentEvent, ref: RemoteRef) -> RemoteRef:
        """A note, once: a retry after an unseen answer polls the request it knows of,
        or, without one, looks for the note's marker before posting again."""
        key, op = event.incident.key, f"note{event.sequence}"
        if ref.pending == op:
            if await self._has_note(key, marker(key, event.sequence)):
                return ref
            waited = time.time() - ref.since
            if waited < self.config.request_timeout:
                # Accepted but not processed yet, perhaps: look again before posting.
                msg = f"{self.name}: a note on {key} may still be in Opsgenie's queue"
                left = self.config.request_timeout - waited
                raise RetryableSinkError(msg, sink=self.name, retry_after_s=left)
        if not ref.pending.startswith(op + ":"):
            ref = await self.refs.mark(key, ref, pending=op)
        note = {"source": "stormwatch", "note": note_text(event)[:25000]}
        ref, _ = await self._call(key, ref, op, "POST", self._path(key, "notes"), note)
        # Named again, so a redelivery looks for the note instead of posting it.
        return await self.refs.mark(key, ref, pending=op)

    async def _has_note(self, key: str, tag: str) -> bool:
        _, body = await self._http.request_json("GET", self._base + self._path(key, "notes"))
        return any(tag in str(n.get("note", "")) for n in body.get("data") or [])

    async def deliver(self, event: IncidentEvent) -> Receipt:
        inc, key = event.incident, event.incident.key
        ref = await self.refs.get(key)
        if ref.state == "resolved":
            return Receipt(sink=self.name, remote_id=key, detail="already closed")
        if ref.state in ("", "creating"):
            ref = await self._create(event, ref)
        elif ref.state == "open":
            ref = await self._follow(event, ref)
        if inc.acknowledged_at is not None and not ref.acknowledged:
            ack = {"source": "stormwatch", "user": inc.acknowledged_by[:100]}
            ref, _ = await self._call(key, ref, "ack", "POST", self._path(key, "acknowledge"), ack)
            ref = await self.refs.mark(key, ref, acknowledged=True)
        if event.event == "resolved":
            if ref.state != "resolving":
                ref = await self.refs.mark(key, ref, state="resolving")
            close = {"source": "stormwatch", "note": f"Resolved: {event.reason}"[:25000]}
            ref, _ = await self._call(key, ref, "close", "POST", self._path(key, "close"), close)
            await self.refs.mark(key, ref, state="resolved")
        return Receipt(sink=self.name, status=202, remote_id=key)

    async def _follow(self, event: IncidentEvent, ref: RemoteRef) -> RemoteRef:
        """Bring an existing alert's priority and message to the incident's, and note
        what changed."""
        inc, key = event.incident, event.incident.key
        for field, value in (("priority", inc.severity), ("message", title_line(inc)[:130])):
            if ref.sent.get(field) != value:
                ref, _ = await self._call(
                    key, ref, field, "PUT", self._path(key, field), {field: value}
                )
                ref = await self.refs.mark(key, ref, sent={**ref.sent, field: value})
        if event.event == "updated" and self.config.send_updates and event.reason != "duplicates":
            ref = await self._note(event, ref)
        return ref

    async def close(self) -> None:
        await self._http.close()
