"""How the vendor fakes fail, as the vendors do, and how tests serve them.

Every fake names each request by kind (`create`, `comment`, `post`...), counts it, and
asks its `Faults` what happens to it:
- `down`: an outage; the request is answered as the vendor answers then (each fake
  says how: 503 with its error body, 429 with Retry-After, or a dropped connection),
  and nothing is done; `fail[kind] = n` does the same to the next n of one kind;
- `lose[kind] = n`: the next n requests of that kind are carried out, then the
  connection drops before the answer: the client cannot know it happened;
- `hold = {kind}`: carried out, then the answer waits until `release` is set (the test
  kills the daemon meanwhile); `held` is set when one is waiting.

`serve(app)` runs a fake in this event loop (integration tests); `Threaded` runs it on
a thread of its own, for tests that drive a `stormwatch run` subprocess.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestServer

T = TypeVar("T")


@dataclass
class Faults:
    down: bool = False
    fail: Counter[str] = field(default_factory=Counter)
    lose: Counter[str] = field(default_factory=Counter)
    hold: set[str] = field(default_factory=set)
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    calls: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    """Requests answered with an outage."""

    def outage(self, kind: str) -> bool:
        """Count the request; True when it must be answered as an outage."""
        self.calls[kind] += 1
        failing = self.down or self.fail[kind] > 0
        if failing:
            self.refused += 1
            self.fail[kind] = max(0, self.fail[kind] - 1)
        return failing

    async def answer(
        self, request: web.Request, kind: str, response: web.StreamResponse
    ) -> web.StreamResponse:
        """The answer to a request that was carried out: given, lost or held."""
        if self.lose[kind] > 0:
            self.lose[kind] -= 1
            assert request.transport is not None
            request.transport.abort()
            return response
        if kind in self.hold:
            self.hold.discard(kind)
            self.held.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        return response


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve a fake on a free loopback port; yields its base URL (no trailing slash)."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


class Threaded:
    """A fake served from its own thread and loop; `call` runs a function there, so
    the test reads the fake's state between two of its requests, never during one."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.url = ""
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(self._app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> Threaded:
        self._thread.start()
        self._ready.wait(10)
        return self

    def call(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@contextmanager
def threaded(*apps: web.Application) -> Iterator[list[Threaded]]:
    servers = [Threaded(app).start() for app in apps]
    try:
        yield servers
    finally:
        for s in servers:
            s.stop()


def json_error(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(body, status=status, headers=headers)
