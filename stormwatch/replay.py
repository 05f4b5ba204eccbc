"""`stormwatch replay`: run an archive of alerts through rules offline, on its own times.

Each input line is an `Alert` as stormwatch writes them (the `ingest.archive` files and
the JSONL sink's alerts), or an Alertmanager API alert object (`{labels, annotations,
startsAt, endsAt, generatorURL}`, optionally `status`), which counts as received at its
`startsAt` (a resolved one at its `endsAt`).

Replay feeds the engine exactly as the live pipeline does: records in arrival order,
whole arrival instants per call (an instant is never split across calls), and ticks
where the live daemon would tick -- on a `tick_interval` grid, when a timer is due
before the next arrival. The engine fires timers at their due times whatever the
batching, so the incident events equal the live daemon's for the same arrivals (every
field but the processing times `detected_at`/`processed_at`) and do not depend on
`batch_size` (tests/property/test_batch_invariance.py, tests/integration/test_replay.py).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import msgspec

from correlate import Engine, EngineConfig
from ingest.normalize.alertmanager import normalize_alertmanager_v2
from ingest.normalize.generic import normalize_generic
from rules import RuleSet
from stormwatch.errors import PayloadError
from stormwatch.wire import Alert, IncidentEvent

__all__ = [
    "IncidentSummary",
    "Progress",
    "ReplayStats",
    "open_inputs",
    "read_alerts",
    "read_chunks",
    "replay",
]

_alert = msgspec.json.Decoder(Alert)
_encoder = msgspec.json.Encoder()


def _parse(line: bytes, where: str) -> list[Alert]:
    if b'"fingerprint"' in line and b'"received_at"' in line:
        try:
            return [_alert.decode(line)]
        except msgspec.ValidationError:
            pass
    try:
        if b'"status"' in line:
            alerts = normalize_generic(line, 0.0)
        else:
            # Received at time 0, every endsAt lies ahead: firing, as archived.
            alerts = normalize_alertmanager_v2(b"[" + line + b"]", 0.0)
    except PayloadError as err:
        msg = f"{where}: {err.message}" + (f" at {err.field}" if err.field else "")
        raise PayloadError(msg, source="replay", field=err.field) from err
    if any(a.starts_at <= 0 for a in alerts):
        raise PayloadError(
            f"{where}: startsAt is required to replay an alert", source="replay", field="startsAt"
        )
    # Received at its own start (a resolved one at its end): the archive's time, not ours.
    return [
        msgspec.structs.replace(
            a, received_at=a.ends_at if a.status == "resolved" and a.ends_at else a.starts_at
        )
        for a in alerts
    ]


_CHUNK = 4 * 1024 * 1024
_alert_lines = msgspec.json.Decoder(Alert)


def read_alerts(
    sources: Iterable[tuple[str, IO[bytes] | Iterable[bytes]]], progress: Progress | None = None
) -> Iterator[Alert]:
    """Alerts from (name, file) sources, in order; raises PayloadError naming the line."""
    for chunk in read_chunks(sources, progress):
        yield from chunk


def read_chunks(
    sources: Iterable[tuple[str, IO[bytes] | Iterable[bytes]]], progress: Progress | None = None
) -> Iterator[list[Alert]]:
    """Alerts in lists of a few thousand, in order. A file of `Alert` lines (an
    archive) is decoded 4 MiB at a time in one call (msgspec's `decode_lines`, 3x faster
    than line by line); a chunk that is not all `Alert` lines (Alertmanager objects, a
    bad line) is read line by line, so an error names its line."""
    for name, src in sources:
        read = getattr(src, "read", None)
        readline = getattr(src, "readline", None)
        if read is None or readline is None:  # an iterable of lines (tests)
            yield [
                a
                for n, line in enumerate(src, 1)
                if line.strip()
                for a in _parse(line, f"{name}:{n}")
            ]
            continue
        lineno = 1
        while True:
            chunk = read(_CHUNK)
            if progress is not None:
                progress.read += len(chunk)
            if not chunk:
                break
            cut = chunk.rfind(b"\n") + 1
            # The chunk's last line, finished from the file: decoded on its own, so the
            # 4 MiB chunk is never copied to glue lines together.
            partial = chunk[cut:] + readline() if cut < len(chunk) else b""
            if cut:
                yield _lines(memoryview(chunk)[:cut], name, lineno)
                lineno += chunk.count(b"\n", 0, cut)
            if partial.strip():
                yield _lines(partial, name, lineno)
            lineno += partial.count(b"\n") if partial.endswith(b"\n") else 1 if partial else 0


def _lines(body: bytes | memoryview, name: str, first: int) -> list[Alert]:
    if b'"received_at"' in bytes(body[:512]):  # `in` on a memoryview looks for one byte
        try:
            return _alert_lines.decode_lines(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass  # not all Alert lines: line by line, to name the bad one
    out: list[Alert] = []
    for n, line in enumerate(bytes(body).splitlines(), first):
        if line.strip():
            out.extend(_parse(line, f"{name}:{n}"))
    return out


def open_inputs(paths: list[str]) -> list[tuple[str, Iterable[bytes]]]:
    """Open every input first, so a missing file fails before anything runs.

    Raises:
        OSError: a file cannot be opened (the message names it).
    """
    out: list[tuple[str, Iterable[bytes]]] = []
    for path in paths:
        if path == "-":
            out.append(("-", sys.stdin.buffer))
        else:
            out.append((path, Path(path).open("rb")))  # noqa: SIM115 (closed by the process)
    return out


class Progress:
    """A one-line progress bar on a terminal: bytes read of the file, alerts, rate."""

    def __init__(self, out: IO[str], total_bytes: int | None) -> None:
        self.out = out
        self.total = total_bytes
        self.read = 0
        self.started = time.perf_counter()

    def show(self, alerts: int, opened: int) -> None:
        rate = alerts / max(time.perf_counter() - self.started, 1e-9)
        bar = ""
        if self.total:
            done = min(1.0, self.read / self.total)
            bar = f"[{'#' * int(done * 30):<30}] {done:4.0%}  "
        self.out.write(f"\r{bar}{alerts:,} alerts  {rate:,.0f}/s  {opened:,} opened ")
        self.out.flush()

    def finish(self) -> None:
        self.out.write("\n")
        self.out.flush()


class IncidentSummary(msgspec.Struct, kw_only=True):
    """An incident as its last event left it: what a backtest compares."""

    key: str
    rule: str
    group: dict[str, str]
    status: str
    severity: str
    title: str
    alert_count: int
    opened_at: float
    resolved_at: float | None
    detected_at: float

    @classmethod
    def of(cls, e: IncidentEvent) -> IncidentSummary:
        i = e.incident
        return cls(
            key=i.key,
            rule=i.rule,
            group=i.group,
            status=i.status,
            severity=i.severity,
            title=i.title,
            alert_count=i.alert_count,
            opened_at=i.opened_at,
            resolved_at=i.resolved_at,
            detected_at=i.detected_at,
        )


@dataclass
class ReplayStats:
    alerts: int = 0
    events: int = 0
    opened: int = 0
    resolved: int = 0
    seconds: float = 0.0
    incidents: dict[str, IncidentSummary] = field(default_factory=dict)
    """Each incident as its last event left it, in the order they opened."""

    @property
    def alerts_per_s(self) -> float:
        return self.alerts / self.seconds if self.seconds else 0.0


def _instants(chunks: Iterable[list[Alert]], batch_size: int) -> Iterator[list[Alert]]:
    """Batches of whole arrival instants, about `batch_size` alerts each (an instant is
    never split, even across the reader's chunks)."""
    carry: list[Alert] = []
    for chunk in chunks:
        if carry:
            chunk = carry + chunk
        if not chunk:
            continue
        # Hold back the last instant: the next chunk may continue it.
        last = chunk[-1].received_at
        k = len(chunk) - 1
        while k > 0 and chunk[k - 1].received_at == last:
            k -= 1
        carry = chunk[k:]
        i = 0
        while i < k:
            j = min(i + batch_size, k)
            while j < k and chunk[j].received_at == chunk[j - 1].received_at:
                j += 1
            yield chunk[i:j]
            i = j
    if carry:
        yield carry


def _as_chunks(alerts: Iterable[Alert] | Iterable[list[Alert]]) -> Iterator[list[Alert]]:
    chunk: list[Alert] = []
    for item in alerts:
        if isinstance(item, list):
            yield item
            continue
        chunk.append(item)
        if len(chunk) >= 10_000:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def replay(
    alerts: Iterable[Alert] | Iterable[list[Alert]],
    rules: RuleSet,
    config: EngineConfig | None = None,
    *,
    out: IO[bytes] | None = None,
    batch_size: int = 1000,
    tick_interval: float = 1.0,
    progress: Progress | None = None,
    keep: bool = True,
) -> ReplayStats:
    """Feed `alerts` (in arrival order) through a fresh engine; write events to `out`.

    `alerts`: alerts, or lists of them (`read_chunks`). `keep`: collect each incident's
    summary in `stats.incidents` (a backtest needs them).
    """
    engine = Engine(rules, config)
    stats = ReplayStats()
    started = time.perf_counter()
    incidents = stats.incidents
    encode = _encoder.encode

    def emit(events: list[IncidentEvent]) -> None:
        for e in events:
            stats.events += 1
            if e.event == "opened":
                stats.opened += 1
            elif e.event == "resolved":
                stats.resolved += 1
            if keep:
                incidents[e.incident.key] = IncidentSummary.of(e)
            if out is not None:
                out.write(encode(e) + b"\n")

    def tick_before(t: float) -> None:
        """Tick as the live daemon would between arrivals: on the tick grid, whenever a
        timer is due before the next arrival at `t`."""
        while (due := engine.next_due()) is not None and due < t:
            at = math.ceil(due / tick_interval) * tick_interval
            if at >= t:
                return  # fired by process() before the record at t
            emit(engine.tick(at).events)

    last = 0.0
    next_show = batch_size * 50
    for batch in _instants(_as_chunks(alerts), batch_size):
        first = batch[0].received_at
        tick_before(first)
        last = batch[-1].received_at
        emit(engine.process(batch, last).events)
        engine.discard_changes()  # nothing is saved offline
        stats.alerts += len(batch)
        if progress is not None and stats.alerts >= next_show:
            progress.show(stats.alerts, stats.opened)
            next_show += batch_size * 50
    if last:
        emit(engine.tick(last).events)
    stats.seconds = time.perf_counter() - started
    if progress is not None:
        progress.show(stats.alerts, stats.opened)
        progress.finish()
    return stats
