"""`slack`: an incoming webhook message per incident opened (and resolved).

Incoming webhooks cannot edit a message, so an incident is one message when it opens
and one when it resolves; updates are off by default (`send_updates`). Slack answers
200 `ok`, 400 `invalid_payload`, 403 `action_prohibited`, 404 `channel_not_found`,
410 `channel_is_archived` (all permanent), 429 with Retry-After, 5xx.
"""

from __future__ import annotations

from typing import Any

import msgspec

from sinks.base import Receipt
from sinks.http import HttpClient
from sinks.retry import RetryPolicy
from stormwatch.wire import Duration, IncidentEvent

__all__ = ["SlackSink", "SlackSinkConfig", "build_slack_message"]

_MARK = {
    "P1": ":red_circle:",
    "P2": ":large_orange_circle:",
    "P3": ":large_yellow_circle:",
    "P4": ":white_circle:",
}


class SlackSinkConfig(
    msgspec.Struct,
    tag="slack",
    tag_field="type",
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
):
    name: str
    webhook_url: str
    """The incoming-webhook URL; it is the secret (redacted by `config check`)."""
    incident_url: str | None = None
    """A link for the message; `{key}` is replaced by the incident key."""
    send_updates: bool = False
    timeout: Duration = Duration(10)
    retry: RetryPolicy = RetryPolicy()


def build_slack_message(event: IncidentEvent, cfg: SlackSinkConfig) -> dict[str, Any]:
    inc = event.incident
    mark = ":white_check_mark:" if event.event == "resolved" else _MARK[inc.severity]
    verb = {"opened": "opened", "updated": "updated", "resolved": "resolved"}[event.event]
    title = f"{mark} [{inc.severity}] {inc.title} — {verb}"
    lines = [f"*{inc.alert_count} alerts* · rule `{inc.rule}` · {inc.category}"]
    if inc.summary:
        lines.append(inc.summary)
    if event.event == "resolved" and event.reason:
        lines.append(f"Resolved: {event.reason}")
    if cfg.incident_url:
        lines.append(f"<{cfg.incident_url.replace('{key}', inc.key)}|{inc.key}>")
    return {
        "text": title,  # what notifications show
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "\n".join(lines)[:2900]}]},
        ],
    }


class SlackSink:
    def __init__(self, config: SlackSinkConfig) -> None:
        self.name = config.name
        self.config = config
        self._http = HttpClient(config.name, config.timeout)

    async def deliver(self, event: IncidentEvent) -> Receipt:
        if event.event == "updated" and not self.config.send_updates:
            return Receipt(sink=self.name, detail="skipped update")
        status, _ = await self._http.request(
            "POST", self.config.webhook_url, build_slack_message(event, self.config)
        )
        return Receipt(sink=self.name, status=status, remote_id=event.incident.key)

    async def close(self) -> None:
        await self._http.close()
