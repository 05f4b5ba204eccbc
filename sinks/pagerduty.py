"""`pagerduty`: PagerDuty Events API v2, one PagerDuty alert per incident.

`dedup_key` is the incident key, so PagerDuty itself folds an incident's events into
one alert: `opened` and `updated` send `trigger` (an update refreshes the open alert),
`resolved` sends `resolve`. PagerDuty answers 202 when it accepted an event, 400 for an
invalid one (not retried), 429 and 5xx to retry with the same `dedup_key`. A trigger
after a resolve would open a new PagerDuty alert, but our keys are never reused: a new
incident gets a new key.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from sinks.base import Receipt
from sinks.http import HttpClient, read_secret
from sinks.retry import RetryPolicy
from stormwatch.errors import PermanentSinkError
from stormwatch.wire import Duration, Incident, IncidentEvent, iso8601

__all__ = ["PagerDutySink", "PagerDutySinkConfig", "build_pagerduty_event"]

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_SEVERITY = {"P1": "critical", "P2": "error", "P3": "warning", "P4": "info"}
_SUMMARY_MAX = 1024


class PagerDutySinkConfig(
    msgspec.Struct,
    tag="pagerduty",
    tag_field="type",
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
):
    name: str
    routing_key: str | None = None
    routing_key_file: str | None = None
    """A file holding the 32-character integration key (a mounted secret)."""
    url: str = EVENTS_URL
    client: str = "stormwatch"
    client_url: str | None = None
    """Link back to us; `{key}` is replaced by the incident key."""
    send_updates: bool = True
    """Re-trigger on `updated` (PagerDuty refreshes the open alert's details)."""
    timeout: Duration = Duration(10)
    retry: RetryPolicy = RetryPolicy()

    def key(self) -> str:
        """The routing key; exactly one of routing_key and routing_key_file must be set."""
        return read_secret(
            self.routing_key, self.routing_key_file, sink=self.name, name="routing_key"
        )

    def __repr__(self) -> str:  # the key is a secret
        return f"PagerDutySinkConfig(name={self.name!r}, routing_key=<secret>)"


def _summary(inc: Incident) -> str:
    text = f"[{inc.severity}] {inc.title} ({inc.alert_count} alerts)"
    return text if len(text) <= _SUMMARY_MAX else text[: _SUMMARY_MAX - 1] + "…"


def build_pagerduty_event(
    event: IncidentEvent, routing_key: str, cfg: PagerDutySinkConfig
) -> dict[str, Any]:
    """The Events API v2 body for one incident event (pure: tests compare it whole)."""
    inc = event.incident
    action: Literal["trigger", "resolve"] = "resolve" if event.event == "resolved" else "trigger"
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": inc.key,
    }
    if action == "resolve":
        return body
    first = inc.alerts[0].labels if inc.alerts else {}
    links = [
        {"href": url, "text": "Runbook"}
        for url in dict.fromkeys(a.annotations.get("runbook_url", "") for a in inc.alerts)
        if url
    ][:5]
    body["payload"] = {
        "summary": _summary(inc),
        "source": inc.group.get("service") or first.get("instance") or inc.rule,
        "severity": _SEVERITY[inc.severity],
        "timestamp": iso8601(inc.first_seen),
        "component": inc.group.get("service", ""),
        "group": inc.group.get("cluster", ""),
        "class": inc.rule,
        "custom_details": {
            "incident_key": inc.key,
            "rule": inc.rule,
            "category": inc.category,
            "priority": inc.priority,
            "alert_count": inc.alert_count,
            "group": inc.group,
            "alerts": [a.labels for a in inc.alerts[:20]],
        },
    }
    body["client"] = cfg.client
    if cfg.client_url:
        body["client_url"] = cfg.client_url.replace("{key}", inc.key)
    if links:
        body["links"] = links
    return body


class PagerDutySink:
    def __init__(self, config: PagerDutySinkConfig) -> None:
        self.name = config.name
        self.config = config
        self._key = config.key()
        self._http = HttpClient(config.name, config.timeout)

    async def deliver(self, event: IncidentEvent) -> Receipt:
        if event.event == "updated" and (
            not self.config.send_updates or event.reason == "duplicates"
        ):
            return Receipt(sink=self.name, detail="skipped update")
        body = build_pagerduty_event(event, self._key, self.config)
        status, answer = await self._http.request_json("POST", self.config.url, body)
        if isinstance(answer, dict) and answer.get("status") not in (None, "success"):
            raise PermanentSinkError(f"{self.name}: {answer}", sink=self.name, status=status)
        return Receipt(sink=self.name, status=status, remote_id=event.incident.key)

    async def close(self) -> None:
        await self._http.close()
