"""The wire types every package speaks: `Alert` in, `Incident` and `IncidentEvent` out.

This module imports only the standard library and msgspec, so any package (and any
consumer of our JSON) can depend on it without pulling in the daemon.

Times are float seconds since the epoch: the hot path compares and subtracts them per
alert, and floats are several times cheaper than `datetime` for that. JSON output
renders them as-is; sinks that need RFC 3339 format them at the edge (`iso8601`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

import msgspec

__all__ = [
    "Alert",
    "AlertStatus",
    "Category",
    "Duration",
    "Incident",
    "IncidentAlert",
    "IncidentChanges",
    "IncidentEvent",
    "IncidentEventKind",
    "IncidentStatus",
    "Severity",
    "TimelineEntry",
    "decode_hook",
    "encode_hook",
    "iso8601",
    "parse_duration",
]

AlertStatus: TypeAlias = Literal["firing", "resolved"]
IncidentStatus: TypeAlias = Literal["open", "resolved"]
Severity: TypeAlias = Literal["P1", "P2", "P3", "P4"]
"""P1 critical (business down or breach), P2 high (significant impact, workaround
exists), P3 medium, P4 low."""
Category: TypeAlias = str
IncidentEventKind: TypeAlias = Literal["opened", "updated", "resolved"]


class Duration(float):
    """Seconds, written in config and rule files as `30s`, `5m`, `4h`, `1d` or `1h30m`.

    A float subclass so the core does arithmetic on it for free; msgspec decodes it
    through `decode_hook`, which keeps msgspec's `$.path` in the error.
    """

    def __repr__(self) -> str:
        return f"Duration({format_duration(self)!r})"


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> Duration:
    """Parse `30s`, `5m`, `1h30m` (Prometheus spelling) into seconds.

    Raises:
        ValueError: the text is not a duration; the message says what is accepted.
    """
    pos, total = 0, 0.0
    text = text.strip()
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        msg = f"invalid duration {text!r}: use a number and a unit (ms, s, m, h, d, w), e.g. 30s, 5m, 1h30m"
        raise ValueError(msg)
    return Duration(total)


def format_duration(seconds: float) -> str:
    """The shortest spelling `parse_duration` reads back: 90.0 -> '1m30s'."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    out, rest = [], int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(out) or "0s"


def decode_hook(type_: type, obj: Any) -> Any:
    """msgspec `dec_hook` for our own scalar types (currently `Duration`)."""
    if type_ is Duration:
        if isinstance(obj, bool):
            msg = "expected a duration such as 30s or 5m"
            raise TypeError(msg)
        if isinstance(obj, int | float):
            return Duration(obj)
        if isinstance(obj, str):
            return parse_duration(obj)
        msg = "expected a duration such as 30s or 5m"
        raise TypeError(msg)
    msg = f"unsupported type {type_!r}"
    raise NotImplementedError(msg)


def encode_hook(obj: Any) -> Any:
    """msgspec `enc_hook` for our own scalar types: a `Duration` encodes as seconds."""
    if isinstance(obj, Duration):
        return float(obj)
    msg = f"cannot encode {type(obj).__name__}"
    raise NotImplementedError(msg)


def iso8601(ts: float) -> str:
    """RFC 3339 UTC with milliseconds, as PagerDuty and most APIs want it."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Alert(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """One alert from any source, normalised.

    `fingerprint` identifies the alert across re-sends: for label-based sources it is
    Alertmanager's (FNV-1a 64 over the sorted label pairs, `%016x`), so ours equal
    theirs. `starts_at` is the alert's own event time, which windows run on;
    `received_at` is when we took it in.
    """

    source: str
    fingerprint: str
    status: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    starts_at: float
    ends_at: float | None = None
    received_at: float
    generator_url: str = ""
    raw: msgspec.Raw | None = None
    """The payload item as it arrived, kept for evidence (explain, dead letters)."""
    severity: str = "warning"
    """Normalised severity, one of critical, high, warning, info (ingest.normalize.severity),
    so rules match and classify on one scale whatever the source called it."""


class IncidentAlert(msgspec.Struct, kw_only=True, gc=False):
    """An alert as an incident holds it: its identity, state and how often it was re-sent."""

    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    status: AlertStatus
    starts_at: float
    last_seen: float
    ends_at: float | None = None
    duplicates: int = 0
    """How many times the same firing alert was re-sent after the first."""
    source: str = ""
    generator_url: str = ""
    severity: str = "warning"
    """The alert's normalised severity (`Alert.severity`)."""


class TimelineEntry(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """One thing that happened to an incident, in the order it happened."""

    at: float
    event: str
    detail: str = ""


class Incident(msgspec.Struct, kw_only=True):
    """A candidate incident: what a rule found, classified, ready for a sink.

    `key` is stable and deterministic (a hash of the rule, its group values and the
    event time of the first alert of the window that opened it), so replays produce the
    same keys and sinks can use it as their idempotency key (PagerDuty `dedup_key`,
    Opsgenie `alias`, ...).

    Two clocks: `first_seen`, `last_seen`, `opened_at`, `resolved_at` and timeline times
    are event time (the alerts' own `startsAt`/`endsAt`, and the due times of timers),
    so a replay gives the same values; `detected_at` is the processing time at which the
    daemon decided to open it (time to detect = `detected_at - first_seen`).
    On `updated` events the incident is compact: `alerts` and `timeline` are empty and
    the event's `changes` say what changed; `opened`, `resolved` and the HTTP API list them.
    """

    key: str
    rule: str
    group: dict[str, str]
    status: IncidentStatus
    severity: Severity
    category: Category
    priority: int = 3
    title: str
    summary: str = ""
    labels: dict[str, str] = {}
    """Its group labels and the labels every listed alert shares (what routes match)."""
    alerts: list[IncidentAlert] = []
    alert_count: int = 0
    """All alerts the incident has held, including those beyond the exemplar cap."""
    truncated_alerts: int = 0
    """Alerts counted but not listed in `alerts` (storm summarising)."""
    first_seen: float
    last_seen: float
    opened_at: float
    resolved_at: float | None = None
    detected_at: float = 0.0
    """Processing time at which the daemon decided to open the incident."""
    acknowledged_at: float | None = None
    acknowledged_by: str = ""
    timeline: list[TimelineEntry] = []


class IncidentChanges(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """What changed since the incident's previous event; set on `updated` events."""

    alerts_added: list[IncidentAlert] = []
    alerts_resolved: list[str] = []
    """Fingerprints of member alerts that resolved."""
    duplicates: int = 0
    """Re-sends of its listed alerts since the previous event."""
    previous_severity: Severity | None = None
    """Set when the severity changed."""
    previous_priority: int | None = None
    """Set when the priority changed."""


class IncidentEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One change to an incident, as the sinks receive it.

    `sequence` counts the incident's events from 1, so a sink (or its downstream) can
    drop a stale or repeated update: one incident is one ticket, updated in order.
    `at` is the event time of the change (the same in a replay); `processed_at` is the
    processing time at which it was emitted.
    """

    event: IncidentEventKind
    at: float
    reason: str
    sequence: int
    incident: Incident
    processed_at: float = 0.0
    changes: IncidentChanges | None = None
    """What changed since the previous event; on `updated` events only."""
