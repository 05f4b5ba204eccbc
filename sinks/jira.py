"""`jira`: one Jira issue per incident (REST API v2 bodies, wiki-markup descriptions).

Jira has no idempotency key, so the sink makes its own: every issue it opens carries
the label `stormwatch-<incident key>`. Before creating, it looks for an open issue with
that label (`search/jql` on Cloud, `search` on Data Center), and it remembers the
incident -> issue mapping it learns. Updates become comments; `resolved` applies the
transition named `resolve_transition` (names are localised, so it is configurable).

Known limit: Jira Cloud's `search/jql` is eventually consistent, so a process that
restarts within seconds of creating an issue, and redelivers that `opened` event, could
miss it in the search; within one process the remembered mapping prevents it.
"""

from __future__ import annotations

import base64
from typing import Any, Literal
from urllib.parse import quote

import msgspec

from sinks.base import Receipt
from sinks.http import HttpClient, read_secret
from sinks.retry import RetryPolicy
from stormwatch.errors import PermanentSinkError
from stormwatch.wire import Duration, IncidentEvent

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
    priorities: dict[str, str] = {}
    """Severity -> Jira priority name; default P1 Highest, P2 High, P3 Medium, P4 Low."""
    timeout: Duration = Duration(15)
    retry: RetryPolicy = RetryPolicy()

    def secret(self) -> str:
        return read_secret(self.token, self.token_file, sink=self.name, name="token")


def incident_label(key: str) -> str:
    return f"stormwatch-{key}"


def build_jira_issue(event: IncidentEvent, cfg: JiraSinkConfig) -> dict[str, Any]:
    inc = event.incident
    rows = "\n".join(
        "|" + "|".join(f"{k}={v}" for k, v in a.labels.items()) + "|" for a in inc.alerts[:30]
    )
    description = (
        f"{inc.summary or inc.title}\n\n*Rule:* {inc.rule}  *Category:* {inc.category}  "
        f"*Alerts:* {inc.alert_count}\n\n{rows}"
    )
    return {
        "fields": {
            "project": {"key": cfg.project},
            "summary": f"[{inc.severity}] {inc.title}"[:250],
            "issuetype": {"name": cfg.issue_type},
            "description": description[:30000],
            "labels": ["stormwatch", incident_label(inc.key)],
            "priority": {"name": cfg.priorities.get(inc.severity, _PRIORITY[inc.severity])},
        }
    }


class JiraSink:
    def __init__(self, config: JiraSinkConfig) -> None:
        self.name = config.name
        self.config = config
        token = base64.b64encode(f"{config.user}:{config.secret()}".encode()).decode()
        self._http = HttpClient(
            config.name,
            config.timeout,
            {"Authorization": f"Basic {token}", "Accept": "application/json"},
        )
        self._issues: dict[str, str] = {}
        """incident key -> issue key, for incidents still open."""

    async def _call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        _, answer = await self._http.request_json(
            method, self.config.url.rstrip("/") + path, body, **kw
        )
        return answer

    async def _find(self, key: str) -> str | None:
        if key in self._issues:
            return self._issues[key]
        jql = f'project = "{self.config.project}" AND labels = "{incident_label(key)}" AND statusCategory != Done'
        path = "/rest/api/3/search/jql" if self.config.api == "cloud" else "/rest/api/2/search"
        found = await self._call(
            "GET", path, params={"jql": jql, "fields": "key", "maxResults": "1"}
        )
        issues = found.get("issues") or []
        if issues:
            self._issues[key] = str(issues[0]["key"])
            return self._issues[key]
        return None

    async def deliver(self, event: IncidentEvent) -> Receipt:
        key = event.incident.key
        if event.event == "updated" and event.reason == "duplicates":
            return Receipt(sink=self.name, detail="skipped update")
        issue = await self._find(key)
        if event.event == "opened":
            if issue is not None:
                return Receipt(sink=self.name, remote_id=issue, detail="already open")
            created = await self._call(
                "POST", "/rest/api/2/issue", build_jira_issue(event, self.config)
            )
            self._issues[key] = str(created["key"])
            return Receipt(sink=self.name, status=201, remote_id=self._issues[key])
        if issue is None:
            return Receipt(sink=self.name, detail="no open issue")
        ref = quote(issue, safe="")
        if event.event == "updated":
            note = f"Updated ({event.reason}): {event.incident.alert_count} alerts, severity {event.incident.severity}"
            await self._call("POST", f"/rest/api/2/issue/{ref}/comment", {"body": note})
            return Receipt(sink=self.name, remote_id=issue)
        transitions = await self._call("GET", f"/rest/api/2/issue/{ref}/transitions")
        wanted = self.config.resolve_transition.casefold()
        match = next(
            (
                t
                for t in transitions.get("transitions", [])
                if str(t.get("name", "")).casefold() == wanted
            ),
            None,
        )
        if match is None:
            names = ", ".join(str(t.get("name")) for t in transitions.get("transitions", []))
            msg = f"{self.name}: no transition {self.config.resolve_transition!r} on {issue} (has: {names})"
            raise PermanentSinkError(msg, sink=self.name)
        await self._call(
            "POST",
            f"/rest/api/2/issue/{ref}/comment",
            {"body": f"Resolved by stormwatch: {event.reason}"},
        )
        await self._call(
            "POST", f"/rest/api/2/issue/{ref}/transitions", {"transition": {"id": match["id"]}}
        )
        self._issues.pop(key, None)
        return Receipt(sink=self.name, remote_id=issue)

    async def close(self) -> None:
        await self._http.close()
