"""Opsgenie's Alert API as documented: GenieKey auth, 202 + requestId, alias dedup."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeOpsgenie:
    api_key: str = "k-123"
    script: list[int] = field(default_factory=list)
    """Statuses answered first, in order (429, 503...)."""
    requests: list[tuple[str, Any]] = field(default_factory=list)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """alias -> {"status": open|closed, "count": n, "notes": [...]}"""
    created: int = 0
    url: str = ""

    def _reply(self, status: int, **extra: Any) -> web.Response:
        body = {"took": 0.01, "requestId": str(uuid.uuid4()), **extra}
        return web.json_response(body, status=status)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.path_qs, body))
        if request.headers.get("Authorization") != f"GenieKey {self.api_key}":
            return self._reply(401, message="Could not authenticate")
        if self.script:
            status = self.script.pop(0)
            return self._reply(
                status, message="You are making too many requests!" if status == 429 else "error"
            )
        alias = request.match_info.get("alias")
        if alias is None:  # create
            if not isinstance(body, dict) or not body.get("message") or len(body["message"]) > 130:
                return self._reply(
                    422, message="Request body is not processable", errors={"message": "invalid"}
                )
            a = self.alerts.get(body["alias"])
            if a is None or a["status"] == "closed":
                self.alerts[body["alias"]] = {"status": "open", "count": 1, "notes": []}
                self.created += 1
            else:
                a["count"] += 1
            return self._reply(202, result="Request will be processed")
        if request.query.get("identifierType") != "alias":
            return self._reply(400, message="identifierType must be alias here")
        a = self.alerts.get(alias)
        if request.path.endswith("/close"):
            if a is not None:
                a["status"] = "closed"
        elif request.path.endswith("/notes") and a is not None:
            a["notes"].append(body.get("note", ""))
        return self._reply(202, result="Request will be processed")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v2/alerts", self.handle)
        app.router.add_post("/v2/alerts/{alias}/close", self.handle)
        app.router.add_post("/v2/alerts/{alias}/notes", self.handle)
        return app
