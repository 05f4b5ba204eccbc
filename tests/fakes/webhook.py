"""A webhook receiver you can script: it records every request and answers from a list.

Behaves as a receiver's documentation would have it: 2xx accepted, 4xx refused (with a
JSON error body), 5xx and 429 (with Retry-After) temporarily failing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=lambda: {"status": "ok"})


@dataclass
class FakeWebhook:
    """Answers from `script` in order, then `default`; `requests` holds every call."""

    script: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=Reply)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        self.requests.append(Recorded(request.method, request.path, dict(request.headers), body))
        reply = self.script.pop(0) if self.script else self.default
        if reply.status >= 400 and "error" not in reply.body:
            reply = Reply(
                reply.status, reply.headers, {"error": f"HTTP {reply.status}", **reply.body}
            )
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)


@asynccontextmanager
async def serve_fake(fake: FakeWebhook) -> AsyncIterator[FakeWebhook]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("/hook"))
    try:
        yield fake
    finally:
        await server.close()
