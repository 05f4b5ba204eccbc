"""ServiceNow's Table API for `incident`, as documented: basic auth, 201 + result on
create, `sysparm_query` lookups, PATCH updates, `{"error": {...}, "status": "failure"}`."""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeServiceNow:
    user: str = "stormwatch"
    password: str = "s3cret"
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    """sys_id -> record."""
    creates: int = 0
    script: list[int] = field(default_factory=list)
    url: str = ""
    _numbers: Any = field(default_factory=lambda: itertools.count(10001))

    def _failure(self, status: int, message: str) -> web.Response:
        return web.json_response(
            {"error": {"message": message, "detail": None}, "status": "failure"}, status=status
        )

    def _authorised(self, request: web.Request) -> bool:
        want = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return request.headers.get("Authorization") == want

    async def table(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._failure(401, "User Not Authenticated")
        if self.script:
            status = self.script.pop(0)
            return self._failure(status, "Too many requests" if status == 429 else "Server error")
        sys_id = request.match_info.get("sys_id")
        if request.method == "GET":
            terms = dict(
                t.split("=", 1)
                for t in request.query.get("sysparm_query", "").split("^")
                if "=" in t
            )
            hits = [
                {"sys_id": r["sys_id"], "number": r["number"], "state": r["state"]}
                for r in self.records.values()
                if r.get("correlation_id") == terms.get("correlation_id")
                and (terms.get("active") != "true" or r["state"] not in ("6", "7", "8"))
            ]
            return web.json_response(
                {"result": hits[: int(request.query.get("sysparm_limit", "100"))]}
            )
        body = await request.json()
        if request.method == "POST":
            if not body.get("short_description"):
                return self._failure(400, "Mandatory field short_description missing")
            new_id = f"{len(self.records) + 1:032x}"
            record = {**body, "sys_id": new_id, "number": f"INC{next(self._numbers)}", "state": "1"}
            self.records[new_id] = record
            self.creates += 1
            return web.json_response({"result": record}, status=201)
        record = self.records.get(sys_id or "")
        if record is None:
            return self._failure(404, "No Record found")
        if body.get("state") == "6" and not (body.get("close_code") and body.get("close_notes")):
            return self._failure(400, "close_code and close_notes are mandatory to resolve")
        notes = record.setdefault("work_notes_log", [])
        if "work_notes" in body:
            notes.append(body.pop("work_notes"))
        record.update(body)
        return web.json_response({"result": record})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("GET", "/api/now/table/incident", self.table)
        app.router.add_route("POST", "/api/now/table/incident", self.table)
        app.router.add_route("PATCH", "/api/now/table/incident/{sys_id}", self.table)
        return app
