"""Log lines from a byte stream: framing, cleaning, and the way into `submit`.

- `LineFramer` cuts a stream into lines at LF, or by RFC 6587 octet counting
  (`<length> <message>`) where a frame starts with a digit; a line over `max_bytes` is
  cut there, the rest of it read and discarded, and the cut counted. Memory per stream
  is bounded by `max_bytes`.
- `clean` turns a line's bytes into text: invalid UTF-8 and NUL become U+FFFD, never an
  error; a trailing CR goes.
- `LineIntake` reads each line (`parse_line`), tries the patterns, counts the outcome
  (`stormwatch_log_lines_total{source, outcome}`) and builds the alerts.
- `submit_until_room` hands alerts to the pipeline and, while it is overloaded, waits
  and tries again: the caller reads nothing meanwhile, so backpressure reaches the
  sender (TCP's window fills, a file is simply read later) and nothing is buffered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ingest.patterns import PatternSet
from ingest.source import Submit
from ingest.syslog import parse_line
from stormwatch.errors import Overloaded
from stormwatch.metrics import Metrics
from stormwatch.wire import Alert

__all__ = ["BATCH_ALERTS", "LineFramer", "LineIntake", "clean", "submit_until_room"]

BATCH_ALERTS = 500
"""Alerts per submit: large enough to amortise a correlator round, small enough that one
call stays short."""
_MAX_LENGTH_DIGITS = 10


class LineFramer:
    """Bytes in, `(line, truncated)` out; `flush()` returns a last unterminated line."""

    def __init__(self, max_bytes: int, *, octet_counting: bool = False) -> None:
        self.max_bytes = max_bytes
        self.octet_counting = octet_counting
        self._buf = bytearray()
        self._need = 0
        """Bytes still to come of an octet-counted frame."""
        self._frame = bytearray()
        self._cut = False
        """The current line is already over the limit: its rest is discarded."""

    def reset(self) -> None:
        self._buf.clear()
        self._frame.clear()
        self._need = 0
        self._cut = False

    def _keep(self, chunk: bytes | bytearray) -> None:
        room = self.max_bytes - len(self._frame)
        if len(chunk) > room:
            self._cut = True
        if room > 0:
            self._frame += chunk[:room]

    def _emit(self, out: list[tuple[bytes, bool]]) -> None:
        out.append((bytes(self._frame), self._cut))
        self._frame.clear()
        self._cut = False

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        out: list[tuple[bytes, bool]] = []
        buf = self._buf
        buf += data
        pos = 0
        while pos < len(buf):
            if self._need:
                take = min(self._need, len(buf) - pos)
                self._keep(buf[pos : pos + take])
                self._need -= take
                pos += take
                if not self._need:
                    self._emit(out)
                continue
            if self.octet_counting and not self._frame and not self._cut and 49 <= buf[pos] <= 57:
                space = buf.find(b" ", pos, pos + _MAX_LENGTH_DIGITS + 1)
                if space == -1 and len(buf) - pos <= _MAX_LENGTH_DIGITS:
                    break  # the length is not complete yet
                digits = buf[pos:space] if space != -1 else b""
                if digits.isdigit():
                    self._need = int(digits)
                    pos = space + 1
                    continue
            end = buf.find(b"\n", pos)
            if end == -1:
                self._keep(buf[pos:])
                pos = len(buf)
                break
            self._keep(buf[pos:end])
            pos = end + 1
            self._emit(out)
        del buf[:pos]
        return out

    def flush(self) -> list[tuple[bytes, bool]]:
        """The line in progress at the end of the stream, if any."""
        out: list[tuple[bytes, bool]] = []
        if self._frame or self._cut:
            self._emit(out)
        self.reset()
        return out


def clean(raw: bytes) -> str:
    """Bytes as text: invalid UTF-8 and NUL replaced, a trailing CR dropped."""
    text = raw.decode("utf-8", errors="replace")
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text.removesuffix("\r")


class LineIntake:
    """Lines of one source -> alerts, every line counted."""

    def __init__(
        self, source: str, patterns: PatternSet, metrics: Metrics, *, origin: str = ""
    ) -> None:
        self.source = source
        self.patterns = patterns
        self.origin = origin
        """Where the lines come from (a file's path), kept on each alert."""
        metrics.init_log_source(source)
        self._matched = metrics.log_lines.labels(source, "matched")
        self._unmatched = metrics.log_lines.labels(source, "unmatched")
        self._dropped = metrics.log_lines.labels(source, "dropped")
        self._truncated = metrics.log_lines_truncated.labels(source)

    def alerts(self, lines: list[tuple[bytes, bool]], received_at: float) -> list[Alert]:
        out = []
        for raw, truncated in lines:
            if truncated:
                self._truncated.inc()
            text = clean(raw)
            if not text.strip():
                continue
            alert = self.patterns.alert(
                parse_line(text), text, self.source, received_at, self.origin
            )
            if alert is None:
                self._unmatched.inc()
            else:
                self._matched.inc()
                out.append(alert)
        return out

    def dropped(self, n: int) -> None:
        self._dropped.inc(n)


async def submit_until_room(
    submit: Submit, alerts: list[Alert], wait: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> None:
    """Submit in batches of `BATCH_ALERTS`; while the pipeline is overloaded, wait as it
    asks (at most a second at a time) and try again, for as long as it takes."""
    for start in range(0, len(alerts), BATCH_ALERTS):
        batch = alerts[start : start + BATCH_ALERTS]
        while True:
            try:
                await submit(batch)
                break
            except Overloaded as err:
                await wait(min(max(err.retry_after_s, 0.05), 1.0))
