"""`file`: one JSON line per incident event, appended (`-` writes to stdout).

The line is the `IncidentEvent` itself: `{"event", "at", "reason", "sequence",
"incident"}`. Each line is flushed before the outbox marks it done, so a crash loses
no line that was acknowledged.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Literal

import msgspec

from sinks.base import Receipt
from stormwatch.errors import RetryableSinkError
from stormwatch.wire import IncidentEvent

__all__ = ["FileSink", "FileSinkConfig"]


class FileSinkConfig(
    msgspec.Struct,
    tag="file",
    tag_field="type",
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
):
    name: str = "jsonl"
    path: str = "incidents.jsonl"
    events: tuple[Literal["opened", "updated", "resolved"], ...] = ("opened", "updated", "resolved")


_encoder = msgspec.json.Encoder()


class FileSink:
    def __init__(self, config: FileSinkConfig) -> None:
        self.name = config.name
        self.config = config
        self._fh: IO[bytes] | None = None

    def _open(self) -> IO[bytes]:
        if self._fh is None:
            if self.config.path == "-":
                self._fh = sys.stdout.buffer
            else:
                path = Path(self.config.path)
                path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = path.open("ab")
        return self._fh

    async def deliver(self, event: IncidentEvent) -> Receipt:
        if event.event in self.config.events:
            try:
                fh = self._open()
                # One small write and flush: cheaper than a thread hop for a line of JSON.
                fh.write(_encoder.encode(event) + b"\n")
                fh.flush()
            except OSError as err:  # a full or read-only disk: the events wait
                self._fh = None
                msg = f"{self.name}: cannot write {self.config.path}: {err.strerror}"
                raise RetryableSinkError(msg, sink=self.name) from err
        return Receipt(sink=self.name, remote_id=event.incident.key)

    async def close(self) -> None:
        if self._fh is not None and self._fh is not sys.stdout.buffer:
            self._fh.close()
        self._fh = None
