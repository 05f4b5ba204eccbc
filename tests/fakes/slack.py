"""Slack's Web API, for the methods the Slack sink calls, as documented.

Bearer token auth; every answer is HTTP 200 `{"ok": true, ...}` or `{"ok": false,
"error": "..."}` (`invalid_auth`, `channel_not_found`, `message_not_found`,
`invalid_blocks`...), except rate limiting: HTTP 429 with Retry-After.
- `chat.postMessage` (`channel`, `text`, `blocks`, `thread_ts`, `metadata`) -> `{"ok",
  "channel", "ts", "message"}`; `chat.update` (`channel`, `ts`, ...);
- `conversations.history` (`channel`, `oldest`, `limit`, `include_all_metadata`) and
  `conversations.replies` (`channel`, `ts`): newest first; message `metadata` only
  with `include_all_metadata=true`.
While `down`: `{"ok": false, "error": "service_unavailable"}`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.faults import Faults


@dataclass
class FakeSlack:
    token: str = "xoxb-test"
    channels: tuple[str, ...] = ("C0123456789",)
    faults: Faults = field(default_factory=Faults)
    messages: list[dict[str, Any]] = field(default_factory=list)
    """Every message posted, threads included: {channel, ts, text, thread_ts, metadata, edits}."""
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    _last: int = 0
    url: str = ""

    def top(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if not m.get("thread_ts")]

    def replies(self, ts: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("thread_ts") == ts]

    def _fail(self, error: str) -> web.Response:
        return web.json_response({"ok": False, "error": error})

    async def _gate(self, request: web.Request, kind: str) -> web.Response | None:
        if self.faults.outage(kind):
            return self._fail("service_unavailable")
        if self.script:
            status, headers = self.script.pop(0)
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=status, headers=headers
            )
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._fail("invalid_auth")
        return None

    def _ts_next(self) -> str:
        """Slack's ts: the posting time in microseconds, unique per channel."""
        self._last = max(int(time.time() * 1_000_000), self._last + 1)
        return f"{self._last // 1_000_000}.{self._last % 1_000_000:06d}"

    async def post(self, request: web.Request) -> web.StreamResponse:
        if (r := await self._gate(request, "post")) is not None:
            return r
        body = await request.json()
        if body.get("channel") not in self.channels:
            return self._fail("channel_not_found")
        if not body.get("text") and not body.get("blocks"):
            return self._fail("no_text")
        thread = body.get("thread_ts")
        if thread and not any(m["ts"] == thread for m in self.messages):
            return self._fail("thread_not_found")
        msg = {
            "channel": body["channel"],
            "ts": self._ts_next(),
            "text": body.get("text", ""),
            "blocks": body.get("blocks"),
            "thread_ts": thread,
            "metadata": body.get("metadata"),
            "edits": 0,
        }
        self.messages.append(msg)
        answer = web.json_response(
            {"ok": True, "channel": msg["channel"], "ts": msg["ts"], "message": msg}
        )
        return await self.faults.answer(request, "reply" if thread else "post", answer)

    async def update(self, request: web.Request) -> web.StreamResponse:
        if (r := await self._gate(request, "update")) is not None:
            return r
        body = await request.json()
        msg = next(
            (
                m
                for m in self.messages
                if m["ts"] == body.get("ts") and m["channel"] == body.get("channel")
            ),
            None,
        )
        if msg is None:
            return self._fail("message_not_found")
        msg.update(
            text=body.get("text", msg["text"]),
            blocks=body.get("blocks", msg["blocks"]),
            edits=msg["edits"] + 1,
        )
        answer = web.json_response(
            {"ok": True, "channel": msg["channel"], "ts": msg["ts"], "text": msg["text"]}
        )
        return await self.faults.answer(request, "update", answer)

    def _listed(self, messages: list[dict[str, Any]], query: Any) -> web.Response:
        oldest = float(query.get("oldest", "0"))
        full = query.get("include_all_metadata") == "true"
        out = []
        for m in reversed(messages):
            if float(m["ts"]) < oldest:
                continue
            shown = {"type": "message", "ts": m["ts"], "text": m["text"]}
            if m.get("thread_ts"):
                shown["thread_ts"] = m["thread_ts"]
            if full and m.get("metadata"):
                shown["metadata"] = m["metadata"]
            out.append(shown)
        limit = int(query.get("limit", "100"))
        return web.json_response(
            {"ok": True, "messages": out[:limit], "has_more": len(out) > limit}
        )

    async def history(self, request: web.Request) -> web.StreamResponse:
        if (r := await self._gate(request, "history")) is not None:
            return r
        channel = request.query.get("channel")
        if channel not in self.channels:
            return self._fail("channel_not_found")
        return self._listed([m for m in self.top() if m["channel"] == channel], request.query)

    async def replies_of(self, request: web.Request) -> web.StreamResponse:
        if (r := await self._gate(request, "replies")) is not None:
            return r
        ts = request.query.get("ts", "")
        parent = [m for m in self.messages if m["ts"] == ts]
        if not parent:
            return self._fail("thread_not_found")
        return self._listed([*parent, *self.replies(ts)], request.query)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/chat.postMessage", self.post)
        app.router.add_post("/api/chat.update", self.update)
        app.router.add_get("/api/conversations.history", self.history)
        app.router.add_get("/api/conversations.replies", self.replies_of)
        return app
