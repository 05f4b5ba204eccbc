"""`jira`: one Jira issue per incident (REST API v2 bodies, wiki-markup descriptions).

Jira has no idempotency key, so the sink makes its own: every issue it opens carries
the label `stormwatch-<incident key>`, and the sink's remote record (sinks/remote.py)
holds incident -> issue. Before a create it writes `creating`; a retry or a restarted
process that finds `creating` looks the label up (`search/jql`, with `reconcileIssues`
listing the issues this process created lately, Atlassian's read-after-write pattern)
and, as Jira Cloud's search is eventually consistent, keeps looking for
`search_consistency` before it concludes the create never happened and makes one.

The issue follows the incident: a severity or title change updates its summary and
priority; what changed becomes a comment, ending in a marker the sink looks for before
posting again (a lost answer never comments twice); an acknowledgement in stormwatch
is a comment (and `ack_transition`, if set); `resolved` applies `resolve_transition`
(names are localised). An issue already in a done status counts as resolved, whoever
closed it, so a lost transition answer or a person's close is not an error.
Acknowledgements made in Jira (a move out of the "To Do" category) reach stormwatch
through Jira's issue webhook (POST /api/v1/sinks/{name}/webhook?token=...).
"""

from __future__ import annotations

import base64
import time
from collections import deque
from typing import Any, Literal
from urllib.parse import quote

import msgspec

from sinks.base import Receipt, SinkContext
from sinks.http import HttpClient, optional_secret, read_secret
from sinks.incident_text import alert_rows, marker, note_text, title_line
from sinks.remote import RemoteRef
from sinks.retry import BreakerPolicy, RetryPolicy
from stormwatch.errors import PermanentSinkError, RetryableSinkError, SinkError
from stormwatch.wire import Duration, Incident, IncidentEvent

__all__ = ["JiraSink", "JiraSinkConfig", "build_jira_issue", "incident_label"]

_PRIORITY = {"P1": "Highest", "P2": "High", "P3": "Medium", "P4": "Low"}


class JiraSinkConfig(
    msgspec.Struct,
    tag="jira",
    tag_field="type",
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
):
    name: str
    url: str
    """https://example.atlassian.net"""
    project: str
    issue_type: str = "Bug"
    api: Literal["cloud", "datacenter"] = "cloud"
    user: str
    token: str | None = None
    token_file: str | None = None
    resolve_transition: str = "Done"
    ack_transition: str | None = None
    """A transition to apply when the incident is acknowledged in stormwatch."""
    priorities: dict[str, str] = {}
    """Severity -> Jira priority name; default P1 Highest, P2 High, P3 Medium, P4 Low."""
    incident_url: str | None = None
    """Link back to us, `{key}` replaced (default: the daemon's `external_url`)."""
    search_consistency: Duration = Duration(120)
    """How long a create whose answer was lost is looked for before it is made again."""
    webhook_token: str | None = None
    webhook_token_file: str | None = None
    """Expected as `?token=` on Jira's issue webhook (its URL is all Jira lets you set)."""
    timeout: Duration = Duration(15)
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()

    def webhook_key(self) -> str | None:
        """The secret its webhook must carry, if it takes one."""
        return optional_secret(
            self.webhook_token, self.webhook_token_file, sink=self.name, name="webhook_token"
        )

    def secret(self) -> str:
        return read_secret(self.token, self.token_file, sink=self.name, name="token")


def incident_label(key: str) -> str:
    return f"stormwatch-{key}"


def _fields(inc: Incident, cfg: JiraSinkConfig) -> dict[str, Any]:
    """What the sink keeps equal to the incident: summary and priority."""
    return {
        "summary": title_line(inc)[:250],
        "priority": {"name": cfg.priorities.get(inc.severity, _PRIORITY[inc.severity])},
    }


def build_jira_issue(event: IncidentEvent, cfg: JiraSinkConfig, link: str = "") -> dict[str, Any]:
    inc = event.incident
    rows = "\n".join("|" + row.replace(", ", "|") + "|" for row in alert_rows(inc))
    description = (
        f"{inc.summary or inc.title}\n\n*Rule:* {inc.rule}  *Category:* {inc.category}  "
        f"*Alerts:* {inc.alert_count}\n\n{rows}"
    )
    if link:
        description += f"\n\n[stormwatch incident|{link}]"
    return {
        "fields": {
            "project": {"key": cfg.project},
            "issuetype": {"name": cfg.issue_type},
            "description": description[:30000],
            "labels": ["stormwatch", incident_label(inc.key)],
            **_fields(inc, cfg),
        }
    }


class JiraSink:
    def __init__(self, config: JiraSinkConfig, ctx: SinkContext | None = None) -> None:
        self.name = config.name
        self.config = config
        self.ctx = ctx or SinkContext()
        self.refs = self.ctx.refs
        token = base64.b64encode(f"{config.user}:{config.secret()}".encode()).decode()
        self._http = HttpClient(
            config.name,
            config.timeout,
            {"Authorization": f"Basic {token}", "Accept": "application/json"},
        )
        self._recent: deque[int] = deque(maxlen=50)
        """Ids of issues this process created: `reconcileIssues` (Jira takes up to 50)."""

    async def _call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        _, answer = await self._http.request_json(
            method, self.config.url.rstrip("/") + path, body, **kw
        )
        return answer

    async def _search(self, key: str) -> str | None:
        """The issue labelled for the incident, open or not."""
        jql = f'project = "{self.config.project}" AND labels = "{incident_label(key)}"'
        if self.config.api == "cloud":
            body: dict[str, Any] = {"jql": jql, "fields": ["status"], "maxResults": 1}
            if self._recent:
                body["reconcileIssues"] = list(self._recent)
            found = await self._call("POST", "/rest/api/3/search/jql", body)
        else:
            params = {"jql": jql, "fields": "status", "maxResults": "1"}
            found = await self._call("GET", "/rest/api/2/search", params=params)
        issues = found.get("issues") or []
        return str(issues[0]["key"]) if issues else None

    async def _issue(self, event: IncidentEvent, ref: RemoteRef) -> RemoteRef:
        """The incident's issue: remembered, found, or created (exactly once)."""
        key = event.incident.key
        found = await self._search(key)
        if found is not None:
            return await self.refs.mark(key, ref, state="open", remote_id=found)
        if ref.state == "creating":
            waited = time.time() - ref.since
            if waited < self.config.search_consistency:
                msg = f"{self.name}: a create of {key} may not show in Jira's search yet"
                left = self.config.search_consistency - waited
                raise RetryableSinkError(msg, sink=self.name, retry_after_s=min(left, 10.0))
        ref = await self.refs.mark(key, ref, state="creating")
        link = self.ctx.link(self.config.incident_url, key)
        try:
            created = await self._call(
                "POST", "/rest/api/2/issue", build_jira_issue(event, self.config, link)
            )
        except SinkError as err:
            if err.status is not None:  # Jira answered: it created nothing, no need to look
                await self.refs.mark(key, ref, state="")
            raise
        if str(created.get("id", "")).isdigit():
            self._recent.append(int(created["id"]))
        sent = {"fields": msgspec.json.encode(_fields(event.incident, self.config)).decode()}
        return await self.refs.mark(
            key, ref, state="open", remote_id=str(created["key"]), sent=sent
        )

    async def _comment(
        self, key: str, ref: RemoteRef, issue: str, seq: int, text: str, what: str = "", **done: Any
    ) -> RemoteRef:
        """A comment, once: after a lost answer its marker is looked for first; `done` is
        written with the comment's completion."""
        tag = marker(key, seq, what)
        op = f"comment:{seq}:{what}"
        ref_issue = quote(issue, safe="")
        if ref.pending == op:
            page = await self._call(
                "GET",
                f"/rest/api/2/issue/{ref_issue}/comment",
                params={"orderBy": "-created", "maxResults": "50"},
            )
            if any(tag in str(c.get("body", "")) for c in page.get("comments") or []):
                return await self.refs.mark(key, ref, **done) if done else ref
        ref = await self.refs.mark(key, ref, pending=op)
        body = text if tag in text else f"{text}\n{tag}"
        await self._call("POST", f"/rest/api/2/issue/{ref_issue}/comment", {"body": body})
        # `pending` stays: should this event come again (a crash before the drain
        # records it), the comment is looked for, not posted twice.
        return await self.refs.mark(key, ref, **done) if done else ref

    async def _transition(self, issue: str, name: str, *, done_counts: bool) -> bool:
        """Apply a transition by name; with `done_counts`, an issue already in a done
        status needs none. False when the issue has no such transition."""
        ref_issue = quote(issue, safe="")
        if done_counts:
            current = await self._call(
                "GET", f"/rest/api/2/issue/{ref_issue}", params={"fields": "status"}
            )
            category = ((current.get("fields") or {}).get("status") or {}).get(
                "statusCategory"
            ) or {}
            if category.get("key") == "done":
                return True
        transitions = (await self._call("GET", f"/rest/api/2/issue/{ref_issue}/transitions")).get(
            "transitions", []
        )
        match = next(
            (t for t in transitions if str(t.get("name", "")).casefold() == name.casefold()), None
        )
        if match is None:
            if done_counts:
                names = ", ".join(str(t.get("name")) for t in transitions)
                msg = f"{self.name}: no transition {name!r} on {issue} (has: {names})"
                raise PermanentSinkError(msg, sink=self.name)
            return False
        await self._call(
            "POST",
            f"/rest/api/2/issue/{ref_issue}/transitions",
            {"transition": {"id": match["id"]}},
        )
        return True

    async def deliver(self, event: IncidentEvent) -> Receipt:
        inc, key = event.incident, event.incident.key
        ref = await self.refs.get(key)
        if ref.state == "resolved":
            return Receipt(sink=self.name, remote_id=ref.remote_id, detail="already resolved")
        fresh = ref.state in ("", "creating")
        if fresh:
            ref = await self._issue(event, ref)
        issue = ref.remote_id
        fields = _fields(inc, self.config)
        encoded = msgspec.json.encode(fields).decode()
        if ref.sent.get("fields") != encoded:
            await self._call(
                "PUT", f"/rest/api/2/issue/{quote(issue, safe='')}", {"fields": fields}
            )
            ref = await self.refs.mark(key, ref, sent={**ref.sent, "fields": encoded})
        if event.event == "updated" and event.reason != "duplicates" and not fresh:
            ref = await self._comment(key, ref, issue, event.sequence, note_text(event))
        if inc.acknowledged_at is not None and not ref.acknowledged:
            if self.config.ack_transition:
                await self._transition(issue, self.config.ack_transition, done_counts=False)
            text = f"Acknowledged in stormwatch by {inc.acknowledged_by or 'someone'}"
            ref = await self._comment(
                key, ref, issue, event.sequence, text, "ack", acknowledged=True
            )
        if event.event == "resolved":
            if ref.state != "resolving":
                text = f"Resolved by stormwatch: {event.reason}"
                ref = await self._comment(
                    key, ref, issue, event.sequence, text, "resolved", state="resolving"
                )
            await self._transition(issue, self.config.resolve_transition, done_counts=True)
            await self.refs.mark(key, ref, state="resolved")
        return Receipt(sink=self.name, remote_id=issue)

    async def close(self) -> None:
        await self._http.close()
