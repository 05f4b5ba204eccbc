"""A TCP proxy in front of a real server that can lose one answer: the request reaches
the server, the server acts on it, and the connection dies before the client hears
back (what a Redis that stops right after an EXEC looks like to its client)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class LosingProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.lose_after: bytes | None = None
        """When set, the first client write holding these bytes is passed on, then the
        connection is cut once `landed()` says the server acted on it."""
        self.landed: Callable[[], Awaitable[bool]] | None = None
        self.lost = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        s_reader, s_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        back = asyncio.create_task(self._pipe(s_reader, c_writer))
        try:
            while data := await c_reader.read(65536):
                s_writer.write(data)
                await s_writer.drain()
                if self.lose_after is not None and self.lose_after in data:
                    self.lose_after = None
                    back.cancel()  # the answer never reaches the client
                    assert self.landed is not None
                    for _ in range(200):
                        if await self.landed():
                            break
                        await asyncio.sleep(0.01)
                    else:
                        raise AssertionError("the server never acted on the request")
                    self.lost += 1
                    break
        finally:
            back.cancel()
            for w in (c_writer, s_writer):
                w.close()
                with contextlib.suppress(OSError):
                    await w.wait_closed()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
