"""`stormwatch replay`: run an archive of alerts through rules offline, on the alerts'
own times, as fast as the core goes; and `--against` for a backtest of a rule change.

Each input line is an `Alert` (as stormwatch writes them) or an Alertmanager API alert
object (`{labels, annotations, startsAt, endsAt, generatorURL}`, optionally `status`),
which counts as received at its `startsAt`. Time is the archive's: each batch runs at
`now` = its latest arrival, and timers tick every `tick_interval` of archive time.
"""

from __future__ import annotations

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

__all__ = ["ReplayStats", "diff_incidents", "read_alerts", "replay"]

_alert = msgspec.json.Decoder(Alert)
_encoder = msgspec.json.Encoder()


def _parse(line: bytes, lineno: int) -> list[Alert]:
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
        msg = f"line {lineno}: {err.message}" + (f" at {err.field}" if err.field else "")
        raise PayloadError(msg, source="replay", field=err.field) from err
    if any(a.starts_at <= 0 for a in alerts):
        raise PayloadError(
            f"line {lineno}: startsAt is required to replay an alert",
            source="replay",
            field="startsAt",
        )
    # Received at its own start: the archive's time, not ours.
    return [
        msgspec.structs.replace(
            a, received_at=a.ends_at if a.status == "resolved" and a.ends_at else a.starts_at
        )
        for a in alerts
    ]


def read_alerts(lines: Iterable[bytes], progress: Progress | None = None) -> Iterator[Alert]:
    for n, line in enumerate(lines, start=1):
        if progress is not None:
            progress.read += len(line)
        if line.strip():
            yield from _parse(line, n)


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


@dataclass
class ReplayStats:
    alerts: int = 0
    events: int = 0
    opened: int = 0
    resolved: int = 0
    seconds: float = 0.0
    incidents: dict[str, IncidentEvent] = field(default_factory=dict)
    """Each incident's last event."""

    @property
    def alerts_per_s(self) -> float:
        return self.alerts / self.seconds if self.seconds else 0.0


def replay(
    alerts: Iterable[Alert],
    rules: RuleSet,
    config: EngineConfig | None = None,
    *,
    out: IO[bytes] | None = None,
    batch_size: int = 1000,
    tick_interval: float = 1.0,
    progress: Progress | None = None,
) -> ReplayStats:
    """Feed `alerts` (in archive order) through a fresh engine; write events to `out`."""
    engine = Engine(rules, config)
    stats = ReplayStats()
    started = time.perf_counter()
    next_tick: float | None = None
    batch: list[Alert] = []

    def emit(events: list[IncidentEvent]) -> None:
        for e in events:
            stats.events += 1
            stats.opened += e.event == "opened"
            stats.resolved += e.event == "resolved"
            stats.incidents[e.incident.key] = e
            if out is not None:
                out.write(_encoder.encode(e) + b"\n")

    def flush() -> None:
        nonlocal next_tick
        now = max(a.received_at for a in batch)
        emit(engine.process(batch, now).events)
        engine.discard_changes()  # nothing is saved offline
        stats.alerts += len(batch)
        batch.clear()
        if next_tick is None:
            next_tick = now + tick_interval
        if now >= next_tick:
            emit(engine.tick(now).events)
            next_tick = now + tick_interval
        if progress is not None and stats.alerts % (batch_size * 50) == 0:
            progress.show(stats.alerts, stats.opened)

    last = 0.0
    for alert in alerts:
        batch.append(alert)
        last = max(last, alert.received_at)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    if last:
        emit(engine.tick(last).events)
    stats.seconds = time.perf_counter() - started
    if progress is not None:
        progress.show(stats.alerts, stats.opened)
        progress.finish()
    return stats


def _signature(e: IncidentEvent) -> tuple[object, ...]:
    i = e.incident
    return (i.status, i.alert_count, i.severity, i.category, i.title)


def diff_incidents(
    new: ReplayStats, baseline: ReplayStats
) -> tuple[list[IncidentEvent], list[IncidentEvent], list[tuple[IncidentEvent, IncidentEvent]]]:
    """(added, dropped, changed) incidents of `new` against `baseline`; incident keys are
    deterministic, so the same incident has the same key under both rule sets."""
    added = [e for k, e in new.incidents.items() if k not in baseline.incidents]
    dropped = [e for k, e in baseline.incidents.items() if k not in new.incidents]
    changed = [
        (baseline.incidents[k], e)
        for k, e in new.incidents.items()
        if k in baseline.incidents and _signature(e) != _signature(baseline.incidents[k])
    ]
    return added, dropped, changed


def format_diff(
    added: list[IncidentEvent],
    dropped: list[IncidentEvent],
    changed: list[tuple[IncidentEvent, IncidentEvent]],
) -> str:
    lines = []
    for e in added:
        lines.append(
            f"+ {e.incident.rule}  {e.incident.title}  ({e.incident.alert_count} alerts, {e.incident.severity})"
        )
    for e in dropped:
        lines.append(
            f"- {e.incident.rule}  {e.incident.title}  ({e.incident.alert_count} alerts, {e.incident.severity})"
        )
    for old, new in changed:
        a, b = old.incident, new.incident
        what = [
            f"{name}: {x} -> {y}"
            for name, x, y in (
                ("status", a.status, b.status),
                ("alerts", a.alert_count, b.alert_count),
                ("severity", a.severity, b.severity),
                ("category", a.category, b.category),
                ("title", a.title, b.title),
            )
            if x != y
        ]
        lines.append(f"~ {b.rule}  {b.title}  " + "; ".join(what))
    lines.append(f"{len(added)} added, {len(dropped)} dropped, {len(changed)} changed")
    return "\n".join(lines)


def open_input(path: str) -> Iterable[bytes]:
    if path == "-":
        return sys.stdin.buffer
    return Path(path).open("rb")
