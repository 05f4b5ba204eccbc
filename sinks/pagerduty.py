"""`pagerduty`: PagerDuty Events API v2, one PagerDuty alert per incident.

`dedup_key` is the incident key, so PagerDuty folds an incident's events into one
alert: `opened` and `updated` send `trigger` (a re-trigger refreshes the open alert:
a P4 that escalates to P1 shows P1), an acknowledgement in stormwatch sends
`acknowledge`, `resolved` sends `resolve`. PagerDuty answers 202 when it took an event,
400 for an invalid one (not retried), 429 and 5xx to retry with the same `dedup_key`.

Twins: a `trigger` after a `resolve` would open a second PagerDuty alert under the same
key. The sink writes `resolving` to its remote record before it sends a resolve, and
never triggers an incident in that state, so a lost resolve answer, a kill -9 or a
replayed `opened` cannot reopen it. A `resolved` for an incident PagerDuty never had
(its whole life fell inside an outage) triggers it first, then resolves it: the
incident is on record, and nothing stays open.

`component`, `group` and `class` come from the incident's labels (its group, then the
labels all its alerts share), named by `component_label`, `group_label` and
`class_label`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from sinks.base import Receipt, SinkContext
from sinks.http import HttpClient, optional_secret, read_secret
from sinks.incident_text import shared_labels, summary_line
from sinks.retry import BreakerPolicy, RetryPolicy
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
    """Link back to us; `{key}` is replaced by the incident key (default: the daemon's
    `external_url` incident page)."""
    component_label: str = "service"
    group_label: str = "cluster"
    class_label: str = "alertname"
    """Which labels fill `component`, `group` and `class` (the rule's name when absent)."""
    send_updates: bool = True
    """Re-trigger on `updated` (PagerDuty refreshes the open alert's details)."""
    webhook_secret: str | None = None
    webhook_secret_file: str | None = None
    """The signing secret of a v3 webhook subscription: acknowledgements made in
    PagerDuty then reach stormwatch (POST /api/v1/sinks/{name}/webhook)."""
    timeout: Duration = Duration(10)
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()

    def webhook_key(self) -> str | None:
        """The secret its webhook must carry, if it takes one."""
        return optional_secret(
            self.webhook_secret, self.webhook_secret_file, sink=self.name, name="webhook_secret"
        )

    def key(self) -> str:
        """The routing key; exactly one of routing_key and routing_key_file must be set."""
        return read_secret(
            self.routing_key, self.routing_key_file, sink=self.name, name="routing_key"
        )

    def __repr__(self) -> str:  # the key is a secret
        return f"PagerDutySinkConfig(name={self.name!r}, routing_key=<secret>)"


def build_pagerduty_event(
    event: IncidentEvent, routing_key: str, cfg: PagerDutySinkConfig, link: str = ""
) -> dict[str, Any]:
    """The Events API v2 body for one incident event (pure: tests compare it whole)."""
    inc = event.incident
    if event.event == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": inc.key}
    return _trigger(inc, routing_key, cfg, link)


def _trigger(
    inc: Incident, routing_key: str, cfg: PagerDutySinkConfig, link: str
) -> dict[str, Any]:
    labels = shared_labels(inc)
    summary = summary_line(inc)
    links = [
        {"href": url, "text": "Runbook"}
        for url in dict.fromkeys(a.annotations.get("runbook_url", "") for a in inc.alerts)
        if url
    ][:5]
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": inc.key,
        "payload": {
            "summary": summary
            if len(summary) <= _SUMMARY_MAX
            else summary[: _SUMMARY_MAX - 1] + "…",
            "source": labels.get("service") or labels.get("instance") or inc.rule,
            "severity": _SEVERITY[inc.severity],
            "timestamp": iso8601(inc.first_seen),
            "component": labels.get(cfg.component_label, ""),
            "group": labels.get(cfg.group_label, ""),
            "class": labels.get(cfg.class_label) or inc.rule,
            "custom_details": {
                "incident_key": inc.key,
                "rule": inc.rule,
                "category": inc.category,
                "priority": inc.priority,
                "alert_count": inc.alert_count,
                "group": inc.group,
                "alerts": [a.labels for a in inc.alerts[:20]],
            },
        },
        "client": cfg.client,
    }
    if link:
        body["client_url"] = link
        links.insert(0, {"href": link, "text": "stormwatch incident"})
    if links:
        body["links"] = links
    return body


class PagerDutySink:
    def __init__(self, config: PagerDutySinkConfig, ctx: SinkContext | None = None) -> None:
        self.name = config.name
        self.config = config
        self.ctx = ctx or SinkContext()
        self.refs = self.ctx.refs
        self._key = config.key()
        self._http = HttpClient(config.name, config.timeout)

    async def _send(self, body: dict[str, Any]) -> int:
        status, answer = await self._http.request_json("POST", self.config.url, body)
        if isinstance(answer, dict) and answer.get("status") not in (None, "success"):
            raise PermanentSinkError(f"{self.name}: {answer}", sink=self.name, status=status)
        return status

    async def deliver(self, event: IncidentEvent) -> Receipt:
        inc = event.incident
        key = inc.key
        ref = await self.refs.get(key)
        if ref.state in ("resolving", "resolved") and event.event != "resolved":
            return Receipt(sink=self.name, remote_id=key, detail="already resolved")
        status = 0
        body = _trigger(inc, self._key, self.config, self.ctx.link(self.config.client_url, key))
        shown = {"summary": body["payload"]["summary"], "severity": inc.severity}
        quiet = event.event == "updated" and (
            not self.config.send_updates or event.reason == "duplicates"
        )
        # Triggered when PagerDuty does not have it (a resolve alone would be dropped),
        # or to show what changed; never once a resolve may have gone (a twin).
        if ref.state in ("", "open") and (ref.state == "" or not (quiet or ref.sent == shown)):
            status = await self._send(body)
            ref = await self.refs.mark(key, ref, state="open", sent=shown)
        if inc.acknowledged_at is not None and not ref.acknowledged and event.event != "resolved":
            ack = {"routing_key": self._key, "event_action": "acknowledge", "dedup_key": key}
            status = await self._send(ack)
            ref = await self.refs.mark(key, ref, acknowledged=True)
        if event.event == "resolved":
            if ref.state != "resolving":
                ref = await self.refs.mark(key, ref, state="resolving")
            status = await self._send(build_pagerduty_event(event, self._key, self.config))
            await self.refs.mark(key, ref, state="resolved")
        return Receipt(sink=self.name, status=status or None, remote_id=key)

    async def close(self) -> None:
        await self._http.close()
