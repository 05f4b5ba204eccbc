"""Opsgenie's Alert API as documented: GenieKey auth, 202 + requestId, work done later.

Every write (create, close, acknowledge, note, priority, message) answers 202
`{"result": "Request will be processed", "took", "requestId"}` and is carried out
`lag` seconds later (at the next request after that: nothing here runs by itself).
`GET /v2/alerts/requests/{id}` answers 404 "Request not found. It might not be
processed, yet." until then, and then `{"data": {"success", "isSuccess", "status",
"action", "alertId", "alias"}}`. A create with the alias of an open alert only counts
(`count`); after a close, the same alias opens a new alert (`alerts[alias]` keeps
every one, so a twin shows). Errors: 401 without a valid GenieKey, 422 for a bad body,
and while `down`, 503 `{"message": "Service Unavailable"}`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.faults import Faults


@dataclass
class FakeOpsgenie:
    api_key: str = "k-123"
    lag: float = 0.05
    script: list[int] = field(default_factory=list)
    """Statuses answered first, in order (429, 503...)."""
    faults: Faults = field(default_factory=Faults)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    alerts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """alias -> every alert opened under it: {status, count, notes, priority, message, acknowledged}."""
    _queue: list[tuple[float, str, str, str, Any]] = field(default_factory=list)
    _done: dict[str, dict[str, Any]] = field(default_factory=dict)
    url: str = ""

    def alert(self, alias: str) -> dict[str, Any] | None:
        found = self.alerts.get(alias)
        return found[-1] if found else None

    @property
    def created(self) -> int:
        return sum(len(v) for v in self.alerts.values())

    def settle(self) -> None:
        """Carry out every accepted request now."""
        self._process(float("inf"))

    def _process(self, now: float) -> None:
        while self._queue and self._queue[0][0] <= now:
            _, rid, action, alias, body = self._queue.pop(0)
            self._done[rid] = self._apply(action, alias, body)

    def _apply(self, action: str, alias: str, body: Any) -> dict[str, Any]:
        a = self.alert(alias)
        ok, status = True, "Request processed"
        if action == "create":
            if a is None or a["status"] == "closed":
                a = {
                    "status": "open",
                    "count": 1,
                    "notes": [],
                    "acknowledged": False,
                    "priority": body.get("priority", "P3"),
                    "message": body["message"],
                }
                self.alerts.setdefault(alias, []).append(a)
                status = "Created alert"
            else:
                a["count"] += 1
                status = "Alert is already open, count incremented"
        elif a is None:
            ok, status = False, "Alert does not exist"
        elif action == "close":
            a["status"] = "closed"
        elif action == "acknowledge":
            a["acknowledged"] = True
        elif action == "notes":
            a["notes"].append(body.get("note", ""))
        elif action in ("priority", "message"):
            a[action] = body[action]
        return {
            "success": ok,
            "isSuccess": ok,
            "status": status,
            "action": action.title(),
            "alertId": alias,
            "alias": alias,
            "processedAt": time.time(),
        }

    def _reply(self, status: int, **extra: Any) -> web.Response:
        body = {"took": 0.01, "requestId": str(uuid.uuid4()), **extra}
        return web.json_response(body, status=status)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self._process(time.monotonic())
        body = await request.json() if request.can_read_body else None
        alias = request.match_info.get("alias")
        action = request.match_info.get("action", "create" if request.method == "POST" else "list")
        kind = "notes_list" if request.method == "GET" else action
        if self.faults.outage(kind):
            return self._reply(503, message="Service Unavailable")
        self.requests.append((request.method, request.path_qs, body))
        if request.headers.get("Authorization") != f"GenieKey {self.api_key}":
            return self._reply(401, message="Could not authenticate")
        if self.script:
            status = self.script.pop(0)
            return self._reply(
                status, message="You are making too many requests!" if status == 429 else "error"
            )
        if alias is not None and request.query.get("identifierType") != "alias":
            return self._reply(400, message="identifierType must be alias here")
        if request.method == "GET":
            a = self.alert(alias or "")
            if a is None:
                return self._reply(404, message="Alert with id [{alias}] does not exist")
            notes = [
                {"note": n, "owner": "stormwatch", "createdAt": "2026-08-20T10:00:00Z"}
                for n in a["notes"]
            ]
            return self._reply(200, data=notes)
        if action == "create":
            if not isinstance(body, dict) or not body.get("message") or len(body["message"]) > 130:
                return self._reply(
                    422, message="Request body is not processable", errors={"message": "invalid"}
                )
            alias = str(body.get("alias", ""))
        rid = str(uuid.uuid4())
        self._queue.append((time.monotonic() + self.lag, rid, action, alias or "", body or {}))
        answer = web.json_response(
            {"result": "Request will be processed", "took": 0.01, "requestId": rid}, status=202
        )
        return await self.faults.answer(request, kind, answer)

    async def request_status(self, request: web.Request) -> web.Response:
        self._process(time.monotonic())
        if self.faults.outage("request"):
            return self._reply(503, message="Service Unavailable")
        done = self._done.get(request.match_info["rid"])
        if done is None:
            return self._reply(404, message="Request not found. It might not be processed, yet.")
        return self._reply(200, data=done)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v2/alerts", self.handle)
        app.router.add_get("/v2/alerts/requests/{rid}", self.request_status)
        app.router.add_post("/v2/alerts/{alias}/{action:close|acknowledge|notes}", self.handle)
        app.router.add_get("/v2/alerts/{alias}/notes", self.handle)
        app.router.add_put("/v2/alerts/{alias}/{action:priority|message}", self.handle)
        return app
