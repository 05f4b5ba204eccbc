"""Jira's REST API as documented, for the calls the Jira sink makes.

- `POST /rest/api/2/issue` -> 201 `{"id", "key", "self"}`; 400 `{"errorMessages": [],
  "errors": {"field": "message"}}` for a bad body; 401 without valid basic auth.
- `GET /rest/api/3/search/jql?jql=...` -> `{"issues": [{"id", "key"}]}`. Like Jira
  Cloud's, it is eventually consistent: an issue shows up only `lag` searches after it
  was created.
- `POST .../comment` -> 201; `GET .../transitions`; `POST .../transitions` -> 204.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeJira:
    user: str = "bot@example.com"
    token: str = "tok"
    lag: int = 0
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    creates: int = 0
    url: str = ""

    def _ok(self, request: web.Request) -> bool:
        want = "Basic " + base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
        return request.headers.get("Authorization") == want

    async def create(self, request: web.Request) -> web.Response:
        if not self._ok(request):
            return web.json_response(
                {"errorMessages": ["You are not authenticated."], "errors": {}}, status=401
            )
        fields = (await request.json()).get("fields", {})
        errors = {
            f: f"{f} is required." for f in ("project", "summary", "issuetype") if not fields.get(f)
        }
        if errors:
            return web.json_response({"errorMessages": [], "errors": errors}, status=400)
        self.creates += 1
        key = f"{fields['project']['key']}-{self.creates}"
        self.issues[key] = {
            "fields": fields,
            "status": "To Do",
            "comments": [],
            "hidden_for": self.lag,
        }
        return web.json_response(
            {
                "id": str(10000 + self.creates),
                "key": key,
                "self": f"{self.url}/rest/api/2/issue/{key}",
            },
            status=201,
        )

    async def search(self, request: web.Request) -> web.Response:
        jql = request.query.get("jql", "")
        label = (re.search(r'labels = "([^"]+)"', jql) or [None, None])[1]
        open_only = "statusCategory != Done" in jql
        hits = []
        for key, issue in self.issues.items():
            if issue["hidden_for"] > 0:
                issue["hidden_for"] -= 1
                continue
            if label in issue["fields"].get("labels", []) and not (
                open_only and issue["status"] == "Done"
            ):
                hits.append({"id": key, "key": key})
        return web.json_response({"issues": hits[: int(request.query.get("maxResults", "50"))]})

    async def comment(self, request: web.Request) -> web.Response:
        self.issues[request.match_info["key"]]["comments"].append((await request.json())["body"])
        return web.json_response({"id": "1"}, status=201)

    async def transitions(self, request: web.Request) -> web.Response:
        issue = self.issues[request.match_info["key"]]
        if request.method == "GET":
            return web.json_response(
                {"transitions": [{"id": "11", "name": "In Progress"}, {"id": "31", "name": "Done"}]}
            )
        if (await request.json())["transition"]["id"] == "31":
            issue["status"] = "Done"
        return web.Response(status=204)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/rest/api/2/issue", self.create)
        app.router.add_get("/rest/api/3/search/jql", self.search)
        app.router.add_post("/rest/api/2/issue/{key}/comment", self.comment)
        app.router.add_route("*", "/rest/api/2/issue/{key}/transitions", self.transitions)
        return app
