"""ServiceNow's Table API for `incident`, as documented.

Basic auth; `POST /api/now/table/incident` -> 201 `{"result": record}`; `GET` with an
encoded `sysparm_query` (`field=value` terms joined by `^`, `ORDERBYfield`) is a
database read, consistent at once; `GET|PATCH .../incident/{sys_id}`; a PATCH with
`work_notes` appends a journal entry, which `GET /api/now/table/sys_journal_field`
(`element_id=…^element=work_notes^valueLIKE…`) finds. `priority` is computed from
impact and urgency by the default lookup (1/1 -> 1 Critical … 3/3 -> 5), as the
instance does; a client cannot set it. Errors are `{"error": {"message", "detail"},
"status": "failure"}`; resolving (state 6) without `close_code` and `close_notes` is
400. While `down`: 503 with that body.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.faults import Faults


def _terms(query: str) -> dict[str, str]:
    out = {}
    for term in query.split("^"):
        if term.startswith("ORDERBY"):
            continue
        for op in ("LIKE", "="):
            if op in term:
                name, _, value = term.partition(op)
                out[name + ("~" if op == "LIKE" else "")] = value
                break
    return out


@dataclass
class FakeServiceNow:
    user: str = "stormwatch"
    password: str = "s3cret"
    faults: Faults = field(default_factory=Faults)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    """sys_id -> record."""
    journal: list[dict[str, str]] = field(default_factory=list)
    creates: int = 0
    script: list[int] = field(default_factory=list)
    url: str = ""
    _numbers: Any = field(default_factory=lambda: itertools.count(10001))

    def by_key(self, key: str) -> list[dict[str, Any]]:
        return [r for r in self.records.values() if r.get("correlation_id") == key]

    def notes(self, sys_id: str) -> list[str]:
        return [j["value"] for j in self.journal if j["element_id"] == sys_id]

    def _failure(self, status: int, message: str) -> web.Response:
        return web.json_response(
            {"error": {"message": message, "detail": None}, "status": "failure"}, status=status
        )

    def _authorised(self, request: web.Request) -> bool:
        want = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return request.headers.get("Authorization") == want

    async def _gate(self, request: web.Request, kind: str) -> web.Response | None:
        if self.faults.outage(kind):
            return self._failure(503, "Service Unavailable")
        if not self._authorised(request):
            return self._failure(401, "User Not Authenticated")
        if self.script:
            status = self.script.pop(0)
            return self._failure(status, "Too many requests" if status == 429 else "Server error")
        return None

    def _view(self, record: dict[str, Any], fields: str) -> dict[str, Any]:
        if not fields:
            return record
        return {f: record.get(f, "") for f in fields.split(",")}

    async def table(self, request: web.Request) -> web.StreamResponse:
        sys_id = request.match_info.get("sys_id")
        kind = {"POST": "create", "PATCH": "update"}.get(
            request.method, "get" if sys_id else "lookup"
        )
        if (r := await self._gate(request, kind)) is not None:
            return r
        fields = request.query.get("sysparm_fields", "")
        if request.method == "GET" and sys_id is None:
            terms = _terms(request.query.get("sysparm_query", ""))
            hits = [
                self._view(r, fields)
                for r in sorted(self.records.values(), key=lambda r: r["sys_created_on"])
                if r.get("correlation_id") == terms.get("correlation_id")
                and (terms.get("active") != "true" or r["state"] not in ("6", "7", "8"))
            ]
            return web.json_response(
                {"result": hits[: int(request.query.get("sysparm_limit", "100"))]}
            )
        if request.method == "GET":
            found = self.records.get(sys_id or "")
            if found is None:
                return self._failure(404, "No Record found")
            return web.json_response({"result": self._view(found, fields)})
        body = await request.json()
        if request.method == "POST":
            if not body.get("short_description"):
                return self._failure(400, "Mandatory field short_description missing")
            self.creates += 1
            new_id = f"{self.creates:032x}"
            record = {
                **body,
                "sys_id": new_id,
                "number": f"INC{next(self._numbers)}",
                "state": "1",
                "sys_created_on": self.creates,
            }
            notes = record.pop("work_notes", None)
            self.records[new_id] = record
            if notes:
                self.journal.append({"element_id": new_id, "element": "work_notes", "value": notes})
            self._prioritise(record)
            return await self.faults.answer(
                request, kind, web.json_response({"result": record}, status=201)
            )
        record = self.records.get(sys_id or "")
        if record is None:
            return self._failure(404, "No Record found")
        if body.get("state") == "6" and not (body.get("close_code") and body.get("close_notes")):
            return self._failure(400, "close_code and close_notes are mandatory to resolve")
        notes = body.pop("work_notes", None)
        if notes:
            self.journal.append(
                {"element_id": record["sys_id"], "element": "work_notes", "value": notes}
            )
        body.pop("priority", None)  # computed, read-only
        record.update(body)
        self._prioritise(record)
        return await self.faults.answer(request, kind, web.json_response({"result": record}))

    @staticmethod
    def _prioritise(record: dict[str, Any]) -> None:
        record["priority"] = str(int(record.get("impact", 3)) + int(record.get("urgency", 3)) - 1)

    async def journal_field(self, request: web.Request) -> web.StreamResponse:
        if (r := await self._gate(request, "journal")) is not None:
            return r
        terms = _terms(request.query.get("sysparm_query", ""))
        hits = [
            j
            for j in self.journal
            if j["element_id"] == terms.get("element_id")
            and j["element"] == terms.get("element", j["element"])
            and terms.get("value~", "") in j["value"]
        ]
        return web.json_response({"result": hits[: int(request.query.get("sysparm_limit", "100"))]})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("GET", "/api/now/table/incident", self.table)
        app.router.add_route("POST", "/api/now/table/incident", self.table)
        app.router.add_route("GET", "/api/now/table/incident/{sys_id}", self.table)
        app.router.add_route("PATCH", "/api/now/table/incident/{sys_id}", self.table)
        app.router.add_get("/api/now/table/sys_journal_field", self.journal_field)
        return app
