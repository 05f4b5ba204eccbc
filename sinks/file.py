"""`file`: one JSON line per incident event, appended (`-` writes to stdout).

The line is the `IncidentEvent` itself: `{"event", "at", "reason", "sequence",
"incident"}`. Each line is flushed before the outbox marks it done, so a crash loses
no line that was acknowledged.

A crash can also come after a line is written and before the outbox hears of it; the
drain then delivers that event again after the restart (every event of the drain's
round: it marks a round's deliveries in one write, sinks/drain.py). So on opening the
file the sink reads its tail (`TAIL_BYTES`) and skips any event whose incident already
has a line of that sequence or a later one (what the drain would skip had it heard). A
torn last line (the crash came mid-write) is cut off: its event is delivered again,
whole. The same
holds while it runs: an outbox in Redis that went away between the write and the
outbox's acknowledgement has the drain deliver the event again, so the sink keeps the
last sequence written of the `RECENT` incidents it wrote last.
"""

from __future__ import annotations

import contextlib
import os
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
TAIL_BYTES = 8 << 20
"""How much of an existing file is read on start: more than the lines a crash can leave
written and unacknowledged, one round of the drain (50 incidents, a few KiB each; an
incident of 100 alerts is about 45 KiB)."""
RECENT = 100_000
"""Incidents whose last written sequence is remembered (a few MiB); a repeat comes
within seconds of its first delivery, long before this many others are written."""


class _Key(msgspec.Struct):
    key: str


class _Written(msgspec.Struct):
    """What the tail check reads of a line."""

    sequence: int
    incident: _Key


_line = msgspec.json.Decoder(_Written)


def _last_written(path: Path) -> dict[str, int]:
    """Incident key -> the highest sequence in the file's tail; cuts off a torn last
    line first."""
    try:
        fh = path.open("rb+")
    except FileNotFoundError:
        return {}
    with fh:
        size = fh.seek(0, os.SEEK_END)
        start = max(0, size - TAIL_BYTES)
        fh.seek(start)
        tail = fh.read()
        if tail and not tail.endswith(b"\n"):
            keep = tail.rfind(b"\n") + 1
            fh.truncate(start + keep)
            tail = tail[:keep]
    lines = tail.split(b"\n")
    if start > 0:
        lines = lines[1:]  # the first may begin mid-line
    out: dict[str, int] = {}
    for line in lines:
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            w = _line.decode(line)
            if w.sequence > out.get(w.incident.key, 0):
                out[w.incident.key] = w.sequence
    return out


class FileSink:
    keeps_refs = False
    """Its drain alone writes its refs (sinks/drain.py): it dedups by its file's tail."""

    def __init__(self, config: FileSinkConfig) -> None:
        self.name = config.name
        self.config = config
        self._fh: IO[bytes] | None = None
        self._written: dict[str, int] | None = None
        """From the file's tail at the first open: incident key -> last sequence."""

    def _open(self) -> IO[bytes]:
        if self._fh is None:
            if self.config.path == "-":
                self._fh = sys.stdout.buffer
                if self._written is None:
                    self._written = {}
            else:
                path = Path(self.config.path)
                path.parent.mkdir(parents=True, exist_ok=True)
                if self._written is None:
                    self._written = _last_written(path)
                self._fh = path.open("ab")
        return self._fh

    async def deliver(self, event: IncidentEvent) -> Receipt:
        if event.event in self.config.events:
            try:
                fh = self._open()
                written, key = self._written, event.incident.key
                if written is not None and event.sequence <= written.get(key, 0):
                    return Receipt(sink=self.name, remote_id=key)
                # One small write and flush: cheaper than a thread hop for a line of JSON.
                fh.write(_encoder.encode(event) + b"\n")
                fh.flush()
                if written is not None:
                    written.pop(key, None)  # most recent last: the oldest go first
                    written[key] = event.sequence
                    if len(written) > RECENT:
                        del written[next(iter(written))]
            except OSError as err:  # a full or read-only disk: the events wait
                self._fh = None
                msg = f"{self.name}: cannot write {self.config.path}: {err.strerror}"
                raise RetryableSinkError(msg, sink=self.name) from err
        return Receipt(sink=self.name, remote_id=event.incident.key)

    async def close(self) -> None:
        if self._fh is not None and self._fh is not sys.stdout.buffer:
            self._fh.close()
        self._fh = None
