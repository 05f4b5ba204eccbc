"""Syslog in, over UDP (RFC 5426) and TCP (RFC 6587: octet-counted or newline-framed).

```yaml
ingest:
  syslog:
    udp: 0.0.0.0:5514
    tcp: 0.0.0.0:5514
    max_line_bytes: 8192        # longer messages are cut (and counted)
    max_connections: 256        # TCP; more are closed at once
    patterns: [...]             # ingest/patterns.py
```

UDP has no way to slow a sender down: matched alerts wait in a bounded buffer
(`max_pending_alerts`) for the pipeline, and when it is full, or the pipeline refuses
for long, new ones are dropped and counted (`outcome="dropped"`). TCP does: a
connection is not read while its alerts wait for room, so the sender's window fills
and it stops sending. Each connection holds at most one line in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import msgspec
import structlog

from ingest.lines import LineFramer, LineIntake, submit_until_room
from ingest.patterns import LogPattern, PatternSet
from ingest.source import Submit
from stormwatch.metrics import Metrics
from stormwatch.wire import Alert

__all__ = ["SyslogConfig", "SyslogSource"]

log = structlog.get_logger("stormwatch.ingest")


def _address(text: str | None, field: str) -> None:
    if text is None:
        return
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        msg = f"{field}: invalid address {text!r}: expected HOST:PORT"
        raise ValueError(msg)


def _split(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class SyslogConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    udp: str | None = None
    tcp: str | None = None
    patterns: list[LogPattern]
    max_line_bytes: int = 8192
    max_connections: int = 256
    max_pending_alerts: int = 10_000

    def __post_init__(self) -> None:
        if self.udp is None and self.tcp is None:
            raise ValueError("give udp, tcp or both: the addresses to listen on")
        _address(self.udp, "udp")
        _address(self.tcp, "tcp")
        if self.max_line_bytes < 64:
            raise ValueError("max_line_bytes must be at least 64")


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_datagram(data)


class SyslogSource:
    """Listens where the config says; `run(submit)` serves until cancelled."""

    name = "syslog"

    def __init__(
        self, config: SyslogConfig, metrics: Metrics, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.lines = LineIntake(self.name, PatternSet(config.patterns), metrics)
        self._clock = clock
        self._pending: list[Alert] = []
        self._ready = asyncio.Event()
        self._connections: set[asyncio.StreamWriter] = set()
        self.udp_address: tuple[str, int] | None = None
        self.tcp_address: tuple[str, int] | None = None
        """Where it listens, once running (port 0 in the config picks a free one)."""
        self.listening = asyncio.Event()

    def _datagram(self, data: bytes) -> None:
        # One message per datagram (RFC 5426); a sender that packs several separates them
        # with newlines, so those split it.
        framer = LineFramer(self.config.max_line_bytes)
        lines = framer.feed(data.rstrip(b"\n")) + framer.flush()
        alerts = self.lines.alerts(lines, self._clock())
        room = self.config.max_pending_alerts - len(self._pending)
        if len(alerts) > room:
            self.lines.dropped(len(alerts) - max(room, 0))
            alerts = alerts[: max(room, 0)]
        if alerts:
            self._pending.extend(alerts)
            self._ready.set()

    async def _drain_udp(self, submit: Submit) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            batch, self._pending = self._pending, []
            await submit_until_room(submit, batch)

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, submit: Submit
    ) -> None:
        if len(self._connections) >= self.config.max_connections:
            writer.close()
            return
        self._connections.add(writer)
        framer = LineFramer(self.config.max_line_bytes, octet_counting=True)
        try:
            while True:
                data = await reader.read(65536)
                lines = framer.feed(data) if data else framer.flush()
                alerts = self.lines.alerts(lines, self._clock())
                if alerts:
                    # Not reading while the pipeline is full is the backpressure.
                    await submit_until_room(submit, alerts)
                if not data:
                    break
        except ConnectionError:
            pass  # the sender went away; what it sent whole was taken
        finally:
            self._connections.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def run(self, submit: Submit) -> None:
        loop = asyncio.get_running_loop()
        transport: asyncio.DatagramTransport | None = None
        server: asyncio.Server | None = None
        drain: asyncio.Task[None] | None = None
        try:
            if self.config.udp is not None:
                host, port = _split(self.config.udp)
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Datagrams(self._datagram), local_addr=(host, port)
                )
                self.udp_address = transport.get_extra_info("sockname")[:2]
                drain = asyncio.create_task(self._drain_udp(submit), name="syslog-udp-drain")
            if self.config.tcp is not None:
                host, port = _split(self.config.tcp)
                server = await asyncio.start_server(
                    lambda r, w: self._connection(r, w, submit), host, port, reuse_address=True
                )
                self.tcp_address = server.sockets[0].getsockname()[:2]
            log.info("syslog_listening", udp=self.udp_address, tcp=self.tcp_address)
            self.listening.set()
            await asyncio.Event().wait()  # until cancelled
        finally:
            if transport is not None:
                transport.close()
            if server is not None:
                server.close()
                for writer in list(self._connections):  # their reads end, their tasks return
                    writer.close()
            if drain is not None:
                drain.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drain
