"""`servicenow`: one ServiceNow incident record per stormwatch incident (Table API).

The incident key goes in `correlation_id`. Before creating, the sink looks the key up
(`GET /api/now/table/incident?sysparm_query=correlation_id=KEY^active=true`), so an
`opened` event delivered twice (a retry after a timeout, a replay after a crash) finds
the record the first one made instead of opening a second: the Table API has no
idempotency key of its own. Updates add `work_notes`; `resolved` sets `state` 6 with
`close_code` and `close_notes`. Priority is computed by ServiceNow from `impact` and
`urgency`, which are what we send.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from sinks.base import Receipt
from sinks.http import HttpClient, read_secret
from sinks.retry import RetryPolicy
from stormwatch.wire import Duration, IncidentEvent

__all__ = ["ServiceNowSink", "ServiceNowSinkConfig", "build_servicenow_record"]

# severity -> (impact, urgency); ServiceNow's default lookup gives priority 1, 2, 3, 4.
_IMPACT_URGENCY = {"P1": (1, 1), "P2": (1, 2), "P3": (2, 2), "P4": (2, 3)}
RESOLVED = "6"


class ServiceNowSinkConfig(
    msgspec.Struct,
    tag="servicenow",
    tag_field="type",
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
):
    name: str
    instance_url: str
    """e.g. https://example.service-now.com"""
    username: str
    password: str | None = None
    password_file: str | None = None
    assignment_group: str | None = None
    caller_id: str | None = None
    close_code: str = "Solved (Permanently)"
    timeout: Duration = Duration(15)
    retry: RetryPolicy = RetryPolicy()

    def secret(self) -> str:
        return read_secret(self.password, self.password_file, sink=self.name, name="password")


def build_servicenow_record(event: IncidentEvent, cfg: ServiceNowSinkConfig) -> dict[str, Any]:
    """The fields to create (opened) or patch (updated, resolved) for one event."""
    inc = event.incident
    impact, urgency = _IMPACT_URGENCY[inc.severity]
    if event.event == "resolved":
        return {
            "state": RESOLVED,
            "close_code": cfg.close_code,
            "close_notes": f"Resolved by stormwatch: {event.reason}",
        }
    if event.event == "updated":
        return {
            "impact": str(impact),
            "urgency": str(urgency),
            "work_notes": f"Updated ({event.reason}): {inc.alert_count} alerts, severity {inc.severity}",
        }
    alerts = "\n".join(
        "- " + ", ".join(f"{k}={v}" for k, v in a.labels.items()) for a in inc.alerts[:30]
    )
    record = {
        "short_description": f"[{inc.severity}] {inc.title}"[:160],
        "description": f"{inc.summary or inc.title}\n\nRule: {inc.rule}\nAlerts ({inc.alert_count}):\n{alerts}",
        "correlation_id": inc.key,
        "correlation_display": "stormwatch",
        "impact": str(impact),
        "urgency": str(urgency),
        "category": inc.category,
    }
    if cfg.assignment_group:
        record["assignment_group"] = cfg.assignment_group
    if cfg.caller_id:
        record["caller_id"] = cfg.caller_id
    return record


class ServiceNowSink:
    def __init__(self, config: ServiceNowSinkConfig) -> None:
        self.name = config.name
        self.config = config
        auth = base64.b64encode(f"{config.username}:{config.secret()}".encode()).decode()
        self._http = HttpClient(
            config.name,
            config.timeout,
            {"Authorization": f"Basic {auth}", "Accept": "application/json"},
        )
        self._sys_ids: dict[str, str] = {}
        """incident key -> sys_id, learned from creates and lookups (bounded below)."""

    async def _call(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self._http.request_json(
            method, self.config.instance_url.rstrip("/") + path, body, **kw
        )

    async def _find(self, key: str) -> str | None:
        if key in self._sys_ids:
            return self._sys_ids[key]
        _, body = await self._call(
            "GET",
            "/api/now/table/incident",
            params={
                "sysparm_query": f"correlation_id={key}^active=true",
                "sysparm_fields": "sys_id,number,state",
                "sysparm_limit": "1",
            },
        )
        found = (body.get("result") or [None])[0] if isinstance(body, dict) else None
        if found:
            self._remember(key, found["sys_id"])
            return str(found["sys_id"])
        return None

    def _remember(self, key: str, sys_id: str) -> None:
        if len(self._sys_ids) > 50_000:
            self._sys_ids.clear()  # a lookup re-learns it
        self._sys_ids[key] = sys_id

    async def deliver(self, event: IncidentEvent) -> Receipt:
        key = event.incident.key
        if event.event == "updated" and event.reason == "duplicates":
            return Receipt(sink=self.name, detail="skipped update")
        record = build_servicenow_record(event, self.config)
        sys_id = await self._find(key)
        if sys_id is None:
            if event.event != "opened":
                # Never opened here (or already closed): nothing to update or close.
                return Receipt(sink=self.name, detail="no open record")
            status, body = await self._call("POST", "/api/now/table/incident", record)
            sys_id = str(body["result"]["sys_id"])
            self._remember(key, sys_id)
            return Receipt(
                sink=self.name, status=status, remote_id=body["result"].get("number", sys_id)
            )
        if event.event == "opened":
            return Receipt(sink=self.name, remote_id=sys_id, detail="already open")
        status, _ = await self._call("PATCH", f"/api/now/table/incident/{sys_id}", record)
        if event.event == "resolved":
            self._sys_ids.pop(key, None)
        return Receipt(sink=self.name, status=status, remote_id=sys_id)

    async def close(self) -> None:
        await self._http.close()
