"""`servicenow`: one ServiceNow incident record per stormwatch incident (Table API).

The incident key goes in `correlation_id`. Before creating, the sink writes `creating`
to its remote record and looks the key up
(`GET /api/now/table/incident?sysparm_query=correlation_id=KEY`, any state: the Table
API reads the database, so it is consistent), so a create repeated after a lost answer
or a crash finds the record the first one made. The record follows the incident:
`impact` and `urgency` (ServiceNow computes the priority from them) are the ones the
incident's rule set in its `classify` case, else derived from the severity; a changed
severity or title patches them and `short_description`. What changed goes in a work
note that ends in a marker; after a lost answer the sink looks for the marker in the
record's journal (`sys_journal_field`) before writing it again. An acknowledgement in
stormwatch sets state 2 (In Progress); `resolved` sets state 6 with `close_code` and
`close_notes`, unless the record is already resolved, closed or canceled.
Acknowledgements made in ServiceNow (the record leaving state 1) reach stormwatch by an
outbound REST message (POST /api/v1/sinks/{name}/webhook, with `webhook_token`).
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from sinks.base import Receipt, SinkContext
from sinks.http import HttpClient, optional_secret, read_secret
from sinks.incident_text import alert_rows, marker, note_text, title_line
from sinks.remote import RemoteRef
from sinks.retry import BreakerPolicy, RetryPolicy
from stormwatch.wire import Duration, Incident, IncidentEvent

__all__ = ["ServiceNowSink", "ServiceNowSinkConfig", "build_servicenow_record"]

# severity -> (impact, urgency); ServiceNow's default lookup gives priority 1, 2, 3, 4.
_IMPACT_URGENCY = {"P1": (1, 1), "P2": (1, 2), "P3": (2, 2), "P4": (2, 3)}
IN_PROGRESS, RESOLVED = "2", "6"
_DONE_STATES = ("6", "7", "8")  # resolved, closed, canceled


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
    incident_url: str | None = None
    """Link back to us, `{key}` replaced (default: the daemon's `external_url`)."""
    webhook_token: str | None = None
    webhook_token_file: str | None = None
    """Expected on the outbound REST message (header `Authorization: Bearer <token>`)."""
    timeout: Duration = Duration(15)
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()

    def webhook_key(self) -> str | None:
        """The secret its webhook must carry, if it takes one."""
        return optional_secret(
            self.webhook_token, self.webhook_token_file, sink=self.name, name="webhook_token"
        )

    def secret(self) -> str:
        return read_secret(self.password, self.password_file, sink=self.name, name="password")


def _followed(inc: Incident, impact_urgency: tuple[int, int] | None) -> dict[str, str]:
    """The fields kept equal to the incident."""
    impact, urgency = impact_urgency or _IMPACT_URGENCY[inc.severity]
    return {
        "short_description": title_line(inc)[:160],
        "impact": str(impact),
        "urgency": str(urgency),
    }


def build_servicenow_record(
    event: IncidentEvent,
    cfg: ServiceNowSinkConfig,
    impact_urgency: tuple[int, int] | None = None,
    link: str = "",
) -> dict[str, Any]:
    """The fields to create a record with (pure: tests compare it whole)."""
    inc = event.incident
    alerts = "\n".join(f"- {row}" for row in alert_rows(inc))
    description = (
        f"{inc.summary or inc.title}\n\nRule: {inc.rule}\nAlerts ({inc.alert_count}):\n{alerts}"
    )
    if link:
        description += f"\n\nstormwatch: {link}"
    record: dict[str, Any] = {
        **_followed(inc, impact_urgency),
        "description": description,
        "correlation_id": inc.key,
        "correlation_display": "stormwatch",
        "category": inc.category,
    }
    if cfg.assignment_group:
        record["assignment_group"] = cfg.assignment_group
    if cfg.caller_id:
        record["caller_id"] = cfg.caller_id
    return record


class ServiceNowSink:
    def __init__(self, config: ServiceNowSinkConfig, ctx: SinkContext | None = None) -> None:
        self.name = config.name
        self.config = config
        self.ctx = ctx or SinkContext()
        self.refs = self.ctx.refs
        auth = base64.b64encode(f"{config.username}:{config.secret()}".encode()).decode()
        self._http = HttpClient(
            config.name,
            config.timeout,
            {"Authorization": f"Basic {auth}", "Accept": "application/json"},
        )

    async def _call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        _, answer = await self._http.request_json(
            method, self.config.instance_url.rstrip("/") + path, body, **kw
        )
        return answer.get("result") if isinstance(answer, dict) else None

    async def _lookup(self, key: str) -> dict[str, Any] | None:
        found = await self._call(
            "GET",
            "/api/now/table/incident",
            params={
                "sysparm_query": f"correlation_id={key}^ORDERBYsys_created_on",
                "sysparm_fields": "sys_id,number,state",
                "sysparm_limit": "1",
            },
        )
        return found[0] if found else None

    async def _record(self, event: IncidentEvent, ref: RemoteRef) -> RemoteRef:
        key = event.incident.key
        found = await self._lookup(key)
        if found is None:
            ref = await self.refs.mark(key, ref, state="creating")
            itil = self.ctx.itil(event.incident)
            link = self.ctx.link(self.config.incident_url, key)
            record = build_servicenow_record(event, self.config, itil, link)
            found = await self._call("POST", "/api/now/table/incident", record)
            sent = _followed(event.incident, itil)
        else:
            sent = {}
        return await self.refs.mark(
            key, ref, state="open", remote_id=str(found["sys_id"]), sent=sent
        )

    async def _patch(
        self,
        key: str,
        ref: RemoteRef,
        fields: dict[str, str],
        note: str = "",
        op: str = "",
        **done: Any,
    ) -> RemoteRef:
        """PATCH fields and, once, a work note (looked for in the journal after a lost
        answer); `done` is written with the PATCH's completion."""
        sys_id = ref.remote_id
        if note and ref.pending == op:
            tag = note.rsplit("\n", 1)[-1]
            seen = await self._call(
                "GET",
                "/api/now/table/sys_journal_field",
                params={
                    "sysparm_query": f"element_id={sys_id}^element=work_notes^valueLIKE{tag}",
                    "sysparm_limit": "1",
                },
            )
            if seen:
                note = ""
        if note:
            ref = await self.refs.mark(key, ref, pending=op)
            fields = {**fields, "work_notes": note}
        if fields:
            await self._call("PATCH", f"/api/now/table/incident/{sys_id}", fields)
        # `pending` stays, so a redelivery looks the note up instead of writing it again.
        return await self.refs.mark(key, ref, **done) if done else ref

    async def deliver(self, event: IncidentEvent) -> Receipt:
        inc, key = event.incident, event.incident.key
        ref = await self.refs.get(key)
        if ref.state == "resolved":
            return Receipt(sink=self.name, remote_id=ref.remote_id, detail="already resolved")
        fresh = ref.state in ("", "creating")
        if fresh:
            ref = await self._record(event, ref)
        want = _followed(inc, self.ctx.itil(inc))
        changed = {k: v for k, v in want.items() if ref.sent.get(k) != v}
        note = ""
        if event.event == "updated" and event.reason != "duplicates" and not fresh:
            note = note_text(event)
        if changed or note:
            op = f"note:{event.sequence}"
            ref = await self._patch(key, ref, changed, note, op, sent={**ref.sent, **changed})
        if inc.acknowledged_at is not None and not ref.acknowledged:
            who = inc.acknowledged_by or "someone"
            text = f"Acknowledged in stormwatch by {who}\n{marker(key, event.sequence, 'ack')}"
            op = f"ack:{event.sequence}"
            ref = await self._patch(key, ref, {"state": IN_PROGRESS}, text, op, acknowledged=True)
        if event.event == "resolved":
            current = await self._call(
                "GET",
                f"/api/now/table/incident/{ref.remote_id}",
                params={"sysparm_fields": "state"},
            )
            if str((current or {}).get("state")) not in _DONE_STATES:
                close = {
                    "state": RESOLVED,
                    "close_code": self.config.close_code,
                    "close_notes": f"Resolved by stormwatch: {event.reason}",
                }
                await self._call("PATCH", f"/api/now/table/incident/{ref.remote_id}", close)
            await self.refs.mark(key, ref, state="resolved")
        return Receipt(sink=self.name, remote_id=ref.remote_id)

    async def close(self) -> None:
        await self._http.close()
