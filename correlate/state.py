"""The engine's state: plain msgspec Structs, so a snapshot is one encode call.

Everything the engine must remember lives here and nowhere else; the heaps it uses for
timers are derived from this state and rebuilt on restore. Incidents refer to alerts
by fingerprint, never by object, so the state has no cycles (`gc=False` is safe) and
encodes as a tree.
"""

from __future__ import annotations

import msgspec

from correlate.suppress import Silence
from stormwatch.wire import Alert, TimelineEntry

__all__ = ["IncidentState", "RuleState", "State", "Tracked", "decode_state", "encode_state"]

STATE_VERSION = 1


class Tracked(msgspec.Struct, kw_only=True, gc=False):
    """One alert the dedup table knows: its latest copy and what happened to it."""

    alert: Alert
    status: str
    first_seen: float
    last_seen: float
    ends_at: float
    duplicates: int = 0
    resolved_at: float | None = None
    incidents: list[str] = []
    """Keys of the open incidents that hold this alert."""


class RuleState(msgspec.Struct, kw_only=True, gc=False):
    """A rule's live windows. `fingerprint` is the rule's correlation hash: a reload that
    changes it starts the rule afresh, one that keeps it keeps these windows."""

    fingerprint: str
    groups: dict[str, list[tuple[float, str, str]]] = {}
    """group key -> (event time, fingerprint, value) sorted by time."""
    pending: dict[str, float] = {}
    """`group` rules: group key -> processing time its first alert arrived (group_wait)."""
    last_seen: dict[str, float] = {}
    """`absence` rules: group key -> processing time a matching alert last arrived."""


class IncidentState(msgspec.Struct, kw_only=True, gc=False):
    """An incident as the engine tracks it; `Incident` is the view built from it."""

    key: str
    rule: str
    group: dict[str, str]
    group_key: str
    status: str = "open"
    opened_at: float
    first_seen: float
    last_seen: float
    last_activity: float
    """Processing time of the last alert that fired or was re-sent (for `resolve.quiet`)."""
    resolved_at: float | None = None
    exemplars: list[str] = []
    """Fingerprints listed on the incident, at most `max_alerts_per_incident`."""
    alert_count: int = 0
    firing: int = 0
    sequence: int = 0
    last_event_at: float = 0.0
    """Processing time of the last event sent for it; `updated` events are spaced by
    `update_interval` from it."""
    timeline: list[TimelineEntry] = []
    timeline_dropped: int = 0
    why: str = ""
    """Why the incident opened, in one sentence (for explain)."""
    window: list[tuple[float, str, str]] = []
    """The window contents that opened it (for explain)."""
    arrivals: list[float] = []
    """Processing times of alerts that fed it, within `resolve.timespan` (hysteresis)."""
    severity: str = ""
    labels: dict[str, str] = {}
    """Severity and labels (group + shared) as last sent; what inhibition compares."""
    announced: bool = True
    """False while inhibition has held back its `opened` event."""
    inhibited_by: str = ""
    acknowledged_at: float | None = None
    """Processing time someone acknowledged it (here, or at a sink)."""
    acknowledged_by: str = ""


class State(msgspec.Struct, kw_only=True, gc=False):
    """All of one shard's state."""

    version: int = STATE_VERSION
    watermark: float = 0.0
    tracked: dict[str, Tracked] = {}
    rules: dict[str, RuleState] = {}
    incidents: dict[str, IncidentState] = {}
    open_by_group: dict[str, str] = {}
    silences: list[Silence] = []
    dirty: dict[str, list[str]] = {}
    """Open incidents changed since their last event -> why; flushed as `updated` on tick."""
    """"rule\\x1egroup key" -> key of its open incident."""


# JSON rather than msgpack: Alert.raw is a msgspec.Raw of JSON, which only the JSON
# encoder can embed verbatim.
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(State)


def encode_state(state: State) -> bytes:
    return _encoder.encode(state)


def decode_state(blob: bytes) -> State:
    return _decoder.decode(blob)
