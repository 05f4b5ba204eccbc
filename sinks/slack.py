"""`slack`: one Slack message per incident, kept current (Web API, a bot token).

The incident is posted once (`chat.postMessage`) and edited as it changes
(`chat.update`: severity, alert count, acknowledgement, resolution); its resolution
and acknowledgement are also replied in the message's thread (`thread_replies`), so
people following the thread are notified. Each message carries Slack message metadata
naming the incident (`event_type: stormwatch_incident`). Before posting, the sink writes
`creating` to its remote record; after a lost answer it looks for the message in the
channel's history (`conversations.history` with `include_all_metadata`) before posting
again, and the message `ts` is written as soon as it is known, so a lost answer or a
kill -9 never posts twice. Replies are looked for the same way
(`conversations.replies`).

Slack answers HTTP 200 with `{"ok": false, "error": ...}` for most failures:
`ratelimited` (also HTTP 429 with Retry-After), `internal_error`, `fatal_error`,
`service_unavailable` and `request_timeout` are retried; `channel_not_found`,
`not_in_channel`, `invalid_auth`, `invalid_blocks`, `msg_too_long` and the like are
permanent. `channel` must be the channel's ID (C…): history lookups need it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from sinks.base import Receipt, SinkContext
from sinks.http import HttpClient, read_secret
from sinks.remote import RemoteRef
from sinks.retry import BreakerPolicy, RetryPolicy
from stormwatch.errors import PermanentSinkError, RetryableSinkError
from stormwatch.wire import Duration, IncidentEvent

__all__ = ["SlackSink", "SlackSinkConfig", "build_slack_message"]

API_URL = "https://slack.com/api"
EVENT_TYPE = "stormwatch_incident"
_MARK = {
    "P1": ":red_circle:",
    "P2": ":large_orange_circle:",
    "P3": ":large_yellow_circle:",
    "P4": ":white_circle:",
}
_RETRYABLE = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class SlackSinkConfig(
    msgspec.Struct,
    tag="slack",
    tag_field="type",
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
):
    name: str
    channel: str
    """The channel's ID (C…), where the bot is a member."""
    token: str | None = None
    token_file: str | None = None
    """A bot token (xoxb-…) with `chat:write` and `channels:history`."""
    api_url: str = API_URL
    incident_url: str | None = None
    """A link for the message; `{key}` is replaced (default: the daemon's `external_url`)."""
    thread_replies: bool = True
    """Reply in the incident's thread when it is acknowledged and when it resolves."""
    timeout: Duration = Duration(10)
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()

    def secret(self) -> str:
        return read_secret(self.token, self.token_file, sink=self.name, name="token")


def build_slack_message(event: IncidentEvent, link: str = "") -> dict[str, Any]:
    """The incident's message as it should read now (pure)."""
    inc = event.incident
    if inc.status == "resolved":
        mark, state = ":white_check_mark:", "resolved"
    else:
        mark = _MARK[inc.severity]
        state = f"acknowledged by {inc.acknowledged_by}" if inc.acknowledged_at else "open"
    title = f"{mark} [{inc.severity}] {inc.title} — {state}"
    lines = [f"*{inc.alert_count} alerts* · rule `{inc.rule}` · {inc.category}"]
    if inc.summary:
        lines.append(inc.summary)
    if link:
        lines.append(f"<{link}|{inc.key}>")
    return {
        "text": title,  # what notifications show
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "\n".join(lines)[:2900]}]},
        ],
    }


def _digest(message: dict[str, Any]) -> str:
    return hashlib.blake2b(msgspec.json.encode(message), digest_size=8).hexdigest()


def _metadata(key: str, what: str) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"incident_key": key, "what": what}}


class SlackSink:
    def __init__(self, config: SlackSinkConfig, ctx: SinkContext | None = None) -> None:
        self.name = config.name
        self.config = config
        self.ctx = ctx or SinkContext()
        self.refs = self.ctx.refs
        self._api_url = config.api_url.rstrip("/")
        self._http = HttpClient(
            config.name, config.timeout, {"Authorization": f"Bearer {config.secret()}"}
        )

    async def _api(
        self, method: str, body: dict[str, Any] | None = None, **params: str
    ) -> dict[str, Any]:
        url = f"{self._api_url}/{method}"
        if body is None:
            _, answer = await self._http.request_json("GET", url, params=params)
        else:
            _, answer = await self._http.request_json("POST", url, body)
        if not isinstance(answer, dict):
            raise RetryableSinkError(f"{self.name}: {method}: not a Slack answer", sink=self.name)
        if not answer.get("ok"):
            error = str(answer.get("error", "unknown_error"))
            cls = RetryableSinkError if error in _RETRYABLE else PermanentSinkError
            raise cls(f"{self.name}: {method}: {error}", sink=self.name, status=200)
        return answer

    async def _find(self, ref: RemoteRef, key: str, what: str, thread: str = "") -> str | None:
        """The ts of a message we may have posted (metadata names it), or None."""
        channel = ref.sent.get("channel", self.config.channel)
        oldest = f"{max(0.0, ref.since - 5):.6f}"
        if thread:
            found = await self._api(
                "conversations.replies",
                channel=channel,
                ts=thread,
                oldest=oldest,
                include_all_metadata="true",
                limit="200",
            )
        else:
            found = await self._api(
                "conversations.history",
                channel=channel,
                oldest=oldest,
                include_all_metadata="true",
                limit="200",
            )
        for m in found.get("messages") or []:
            payload = (m.get("metadata") or {}).get("event_payload") or {}
            if payload.get("incident_key") == key and payload.get("what") == what:
                return str(m["ts"])
        return None

    async def _post(
        self, event: IncidentEvent, ref: RemoteRef, message: dict[str, Any]
    ) -> RemoteRef:
        key = event.incident.key
        ts = await self._find(ref, key, "incident") if ref.state == "creating" else None
        channel = self.config.channel
        if ts is None:
            ref = await self.refs.mark(key, ref, state="creating")
            answer = await self._api(
                "chat.postMessage",
                {"channel": channel, **message, "metadata": _metadata(key, "incident")},
            )
            ts, channel = str(answer["ts"]), str(answer.get("channel", channel))
        sent = {"channel": channel, "message": _digest(message)}
        return await self.refs.mark(key, ref, state="open", remote_id=ts, sent=sent)

    async def _reply(
        self, event: IncidentEvent, ref: RemoteRef, what: str, text: str, **done: Any
    ) -> RemoteRef:
        """A thread reply, once; `done` is written with the reply's completion."""
        key, op = event.incident.key, f"reply:{what}"
        if ref.pending == op and await self._find(ref, key, what, thread=ref.remote_id):
            return await self.refs.mark(key, ref, **done) if done else ref
        ref = await self.refs.mark(key, ref, pending=op)
        await self._api(
            "chat.postMessage",
            {
                "channel": ref.sent.get("channel", self.config.channel),
                "thread_ts": ref.remote_id,
                "text": text,
                "metadata": _metadata(key, what),
            },
        )
        # `pending` stays, so a redelivery looks for the reply instead of posting it.
        return await self.refs.mark(key, ref, **done) if done else ref

    async def deliver(self, event: IncidentEvent) -> Receipt:
        inc, key = event.incident, event.incident.key
        ref = await self.refs.get(key)
        if ref.state == "resolved":
            return Receipt(sink=self.name, remote_id=ref.remote_id, detail="already resolved")
        message = build_slack_message(event, self.ctx.link(self.config.incident_url, key))
        if ref.state in ("", "creating"):
            ref = await self._post(event, ref, message)
        elif ref.sent.get("message") != _digest(message):
            try:
                await self._api(
                    "chat.update",
                    {
                        "channel": ref.sent.get("channel", self.config.channel),
                        "ts": ref.remote_id,
                        **message,
                    },
                )
            except PermanentSinkError as err:
                if "message_not_found" not in str(err):
                    raise
                # Someone deleted it: the incident gets a message again.
                ref = await self._post(event, msgspec.structs.replace(ref, state=""), message)
            ref = await self.refs.mark(key, ref, sent={**ref.sent, "message": _digest(message)})
        replies = self.config.thread_replies
        if inc.acknowledged_at is not None and not ref.acknowledged:
            text = f"Acknowledged by {inc.acknowledged_by}"
            if replies:
                ref = await self._reply(event, ref, "acknowledged", text, acknowledged=True)
            else:
                ref = await self.refs.mark(key, ref, acknowledged=True)
        if event.event == "resolved":
            if replies:
                ref = await self._reply(
                    event, ref, "resolved", f"Resolved: {event.reason}", state="resolved"
                )
            else:
                ref = await self.refs.mark(key, ref, state="resolved")
        return Receipt(sink=self.name, remote_id=ref.remote_id)

    async def close(self) -> None:
        await self._http.close()
