"""Jira's REST API as documented, for the calls the Jira sink makes.

- `POST /rest/api/2/issue` -> 201 `{"id", "key", "self"}`; 400 `{"errorMessages": [],
  "errors": {"field": "message"}}` for a bad body; 401 without valid basic auth.
- `PUT /rest/api/2/issue/{key}` -> 204; `GET .../issue/{key}?fields=status`.
- `POST /rest/api/3/search/jql` (`jql`, `fields`, `maxResults`, `reconcileIssues`) and
  `GET /rest/api/2/search`: like Jira Cloud's, the search is eventually consistent: an
  issue shows up only `lag` seconds after it was created, unless its id is in
  `reconcileIssues`.
- `GET|POST .../comment` (201); `GET .../transitions` lists what the issue's status
  allows (none leads from Done to Done); `POST .../transitions` -> 204, 400 for a
  transition the status does not allow.
- While `down`: the connection drops (a load balancer with no backend), or with
  `outage_drops = False`, 503 `{"errorMessages": ["Service Unavailable"]}`.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.faults import Faults

_CATEGORY = {"To Do": "new", "In Progress": "indeterminate", "Done": "done"}
# status -> {transition id: (name, target status)}
_WORKFLOW = {
    "To Do": {"11": ("Start Progress", "In Progress"), "31": ("Done", "Done")},
    "In Progress": {"21": ("Stop Progress", "To Do"), "31": ("Done", "Done")},
    "Done": {"41": ("Reopen", "To Do")},
}


@dataclass
class FakeJira:
    user: str = "bot@example.com"
    token: str = "tok"
    lag: float = 0.0
    faults: Faults = field(default_factory=Faults)
    outage_drops: bool = True
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    creates: int = 0
    url: str = ""

    def _ok(self, request: web.Request) -> bool:
        want = "Basic " + base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
        return request.headers.get("Authorization") == want

    def labelled(self, label: str) -> list[dict[str, Any]]:
        return [i for i in self.issues.values() if label in i["fields"].get("labels", [])]

    def close_by_hand(self, key: str) -> None:
        """A person resolves the issue in Jira."""
        self.issues[key]["status"] = "Done"

    async def _gate(self, request: web.Request, kind: str) -> web.StreamResponse | None:
        if self.faults.outage(kind):
            if not self.outage_drops:
                return web.json_response(
                    {"errorMessages": ["Service Unavailable"], "errors": {}}, status=503
                )
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=503)
        if not self._ok(request):
            return web.json_response(
                {"errorMessages": ["You are not authenticated."], "errors": {}}, status=401
            )
        return None

    def _issue(self, request: web.Request) -> dict[str, Any] | None:
        return self.issues.get(request.match_info["key"])

    async def create(self, request: web.Request) -> web.StreamResponse:
        if (r := await self._gate(request, "create")) is not None:
            return r
        fields = (await request.json()).get("fields", {})
        errors = {
            f: f"{f} is required." for f in ("project", "summary", "issuetype") if not fields.get(f)
        }
        if errors:
            return web.json_response({"errorMessages": [], "errors": errors}, status=400)
        self.creates += 1
        key = f"{fields['project']['key']}-{self.creates}"
        self.issues[key] = {
            "id": str(10000 + self.creates),
            "key": key,
            "fields": fields,
            "status": "To Do",
            "comments": [],
            "indexed_at": time.monotonic() + self.lag,
        }
        body = {
            "id": str(10000 + self.creates),
            "key": key,
            "self": f"{self.url}/rest/api/2/issue/{key}",
        }
        return await self.faults.answer(request, "create", web.json_response(body, status=201))

    def _search(self, jql: str, reconcile: set[str], limit: int) -> list[dict[str, Any]]:
        label = (re.search(r'labels = "([^"]+)"', jql) or [None, None])[1]
        open_only = "statusCategory != Done" in jql
        now, hits = time.monotonic(), []
        for key, issue in self.issues.items():
            if issue["indexed_at"] > now and issue["id"] not in reconcile:
                continue  # not in the search index yet
            if label in issue["fields"].get("labels", []) and not (
                open_only and issue["status"] == "Done"
            ):
                hits.append({"id": issue["id"], "key": key, "fields": self._status(issue)})
        return hits[:limit]

    async def search_cloud(self, request: web.Request) -> web.StreamResponse:
        if (r := await self._gate(request, "search")) is not None:
            return r
        body = await request.json()
        reconcile = {str(i) for i in body.get("reconcileIssues") or []}
        hits = self._search(body.get("jql", ""), reconcile, int(body.get("maxResults", 50)))
        return web.json_response({"issues": hits, "isLast": True})

    async def search_dc(self, request: web.Request) -> web.StreamResponse:
        if (r := await self._gate(request, "search")) is not None:
            return r
        hits = self._search(
            request.query.get("jql", ""), set(), int(request.query.get("maxResults", "50"))
        )
        return web.json_response({"issues": hits, "total": len(hits)})

    def _status(self, issue: dict[str, Any]) -> dict[str, Any]:
        name = issue["status"]
        return {"status": {"name": name, "statusCategory": {"key": _CATEGORY[name]}}}

    async def issue(self, request: web.Request) -> web.StreamResponse:
        kind = "update" if request.method == "PUT" else "get"
        if (r := await self._gate(request, kind)) is not None:
            return r
        issue = self._issue(request)
        if issue is None:
            return web.json_response(
                {"errorMessages": ["Issue does not exist"], "errors": {}}, status=404
            )
        if request.method == "GET":
            return web.json_response(
                {"id": issue["id"], "key": issue["key"], "fields": self._status(issue)}
            )
        issue["fields"].update((await request.json()).get("fields", {}))
        return await self.faults.answer(request, kind, web.Response(status=204))

    async def comment(self, request: web.Request) -> web.StreamResponse:
        kind = "comment" if request.method == "POST" else "comments"
        if (r := await self._gate(request, kind)) is not None:
            return r
        issue = self._issue(request)
        if issue is None:
            return web.json_response(
                {"errorMessages": ["Issue does not exist"], "errors": {}}, status=404
            )
        if request.method == "GET":
            listed = (
                list(reversed(issue["comments"]))
                if request.query.get("orderBy") == "-created"
                else issue["comments"]
            )
            return web.json_response({"comments": listed, "total": len(listed)})
        body = (await request.json())["body"]
        issue["comments"].append({"id": str(len(issue["comments"]) + 1), "body": body})
        return await self.faults.answer(
            request, kind, web.json_response({"id": "1", "body": body}, status=201)
        )

    async def transitions(self, request: web.Request) -> web.StreamResponse:
        kind = "transition" if request.method == "POST" else "transitions"
        if (r := await self._gate(request, kind)) is not None:
            return r
        issue = self._issue(request)
        if issue is None:
            return web.json_response(
                {"errorMessages": ["Issue does not exist"], "errors": {}}, status=404
            )
        allowed = _WORKFLOW[issue["status"]]
        if request.method == "GET":
            return web.json_response(
                {"transitions": [{"id": i, "name": n} for i, (n, _) in allowed.items()]}
            )
        tid = (await request.json())["transition"]["id"]
        if tid not in allowed:
            return web.json_response(
                {
                    "errorMessages": [f"Transition id '{tid}' is not valid for this issue."],
                    "errors": {},
                },
                status=400,
            )
        issue["status"] = allowed[tid][1]
        return await self.faults.answer(request, kind, web.Response(status=204))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/rest/api/2/issue", self.create)
        app.router.add_post("/rest/api/3/search/jql", self.search_cloud)
        app.router.add_get("/rest/api/2/search", self.search_dc)
        app.router.add_route("*", "/rest/api/2/issue/{key}", self.issue)
        app.router.add_route("*", "/rest/api/2/issue/{key}/comment", self.comment)
        app.router.add_route("*", "/rest/api/2/issue/{key}/transitions", self.transitions)
        return app
