"""The engine's state: plain msgspec Structs, so a snapshot is one encode call.

Everything the engine must remember lives here and nowhere else; the timer heap and
the indexes it uses are derived from this state and rebuilt on restore. Incidents refer
to alerts by fingerprint, never by object, so the state has no cycles (`gc=False` is
safe) and encodes as a tree.

Two clocks appear here, always named for what they are: *arrival* times (the engine's
clock: when a record was received, and the due times of timers) and *event* times
(an alert's own `startsAt`, clamped to its arrival; what windows slide on).
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, ClassVar, Protocol, TypeAlias

import msgspec

from correlate.suppress import Silence
from stormwatch.wire import TimelineEntry

__all__ = [
    "STATE_VERSION",
    "IncidentState",
    "Kind",
    "Notes",
    "RuleState",
    "Stamp",
    "State",
    "Tracked",
    "Window",
    "decode_state",
    "encode_state",
]

STATE_VERSION = 3
"""3: `Tracked` keeps its alert compact (`Kind`, label and annotation values)."""


Stamp: TypeAlias = Any
"""A time (event or arrival, seconds) passed along as the float object it is. Typed
`float`, code compiled with mypyc (setup.py) unboxes it and boxes a new float at each
store: every live alert then held its own copy of the times its request shares (24
bytes each: 931 B a live alert against 732, bench/README.md, "Compiled core"). Where a
time is stored per alert or per window event, compiled code carries it as a `Stamp`,
and reads it from a Struct through a `Stamp` reference (a generic read returns the
object stored)."""

Notes: TypeAlias = str | tuple[str, ...]
"""An alert's annotation values as `Kind.read_notes` reads them from a record's
annotations: `()` for none, the value itself for one, a tuple in `Kind.notes` order for
more (no tuple for the one-annotation alerts most senders send: 48 bytes each)."""


class _ReadNotes(Protocol):
    def __call__(self, annotations: dict[str, str], /) -> Notes: ...


class Kind(msgspec.Struct, frozen=True, array_like=True, dict=True):
    """What the alerts of one source, rule and label schema share: their source,
    normalised severity, generator URL, label names and annotation names. One object
    stands for all the alerts of a kind (`DedupTable` hands them out), so a live alert
    pays 8 bytes for these where its own copies cost hundreds (bench/README.md, memory)."""

    source: str
    severity: str
    generator_url: str
    labels: tuple[str, ...]
    """Label names, in the order the alert's first record listed them."""
    notes: tuple[str, ...] = ()
    """Annotation names, in the order its latest record listed them."""

    n_notes: ClassVar[int]
    read_notes: ClassVar[_ReadNotes]
    """Derived (in the instance's `__dict__`, not encoded): how many annotations, and a C
    call reading their values from a record's annotations (raises KeyError for a missing
    name), so a re-send compares its annotations without building a tuple."""

    def __post_init__(self) -> None:
        derived = self.__dict__
        derived["n_notes"] = len(self.notes)
        derived["read_notes"] = itemgetter(*self.notes) if self.notes else tuple

    def note_values(self, notes: Notes) -> tuple[str, ...]:
        """`notes` as a tuple in `self.notes` order."""
        return (notes,) if self.n_notes == 1 else notes  # type: ignore[return-value]


class Tracked(msgspec.Struct, kw_only=True, gc=False):
    """One alert the dedup table knows: its latest copy and what happened to it.

    The alert is kept compact: its label values (`values`, in `kind.labels` order) and
    annotation values (`notes`, see `Notes`) as shared strings, and everything its kind
    shares in one `Kind`. `labels` and `annotations` build the dicts
    when a reader asks (views build theirs: `correlate.views.alert_view`, `wire_alert`);
    the hot path reads the record being taken, never these."""

    fingerprint: str
    """The same string object as its key in `State.tracked`."""
    kind: Kind
    values: tuple[str, ...]
    notes: Notes = ()
    starts_at: float
    """Its `startsAt`: the earliest of its records' (Alertmanager's merge)."""
    raw: msgspec.Raw | None = None
    """The payload item as it arrived, kept for evidence (dropped when it resolves
    while no incident lists it)."""
    status: str
    event_time: float
    """When it fired, in event time: its `startsAt` clamped to its first arrival."""
    fed_at: float = -1e18
    """The latest event time it entered a window at (any occurrence): a window may list
    it until that time falls behind the watermark, so it is not forgotten before."""
    first_seen: float
    """Arrival time of its first record (of this occurrence)."""
    last_seen: float
    """Arrival time of its latest record."""
    ends_at: float
    """When it resolves without a re-send (arrival clock)."""
    duplicates: int = 0
    resolved_at: float | None = None
    """Event time it resolved: its `endsAt`, or the due time of its expiry."""
    incidents: tuple[str, ...] = ()
    """Keys of the open incidents that hold this alert. A tuple: most alerts are in none,
    and the shared empty tuple costs nothing, where an empty list per alert cost 56 bytes
    and a object for the cyclic GC to walk (bench/README.md, memory)."""
    muted: str = ""
    """Id of the silence that kept it from the rules; it feeds them when that ends."""

    @property
    def labels(self) -> dict[str, str]:
        """Its labels, as a new dict (a view; not for the hot path)."""
        return dict(zip(self.kind.labels, self.values, strict=True))

    @property
    def annotations(self) -> dict[str, str]:
        kind = self.kind
        return dict(zip(kind.notes, kind.note_values(self.notes), strict=True))

    def label(self, name: str, default: str = "") -> str:
        """One label's value, without building the dict."""
        names = self.kind.labels
        return self.values[names.index(name)] if name in names else default


class Window(msgspec.Struct, array_like=True, gc=False):
    """One group's window: event times in order, with each event's alert fingerprint
    and value (the distinct field for value_count, the rule for temporal types; empty
    for types that need none). Parallel lists, so `bisect` runs on the floats in C."""

    times: list[float] = []
    fps: list[str] = []
    values: list[str] = []


class RuleState(msgspec.Struct, kw_only=True, gc=False):
    """A rule's live windows. `fingerprint` is the rule's correlation hash: a reload that
    changes it starts the rule afresh, one that keeps it keeps these windows."""

    fingerprint: str
    groups: dict[str, Window] = {}
    pending: dict[str, float] = {}
    """`group` rules: group key -> arrival time of its first alert (group_wait);
    `event_count` with only an upper bound: group key -> when it looks next."""
    last_seen: dict[str, float] = {}
    """`absence` rules: group key -> arrival time of its last matching alert;
    `event_count` with only an upper bound: when the group was first observed."""


class IncidentState(msgspec.Struct, kw_only=True, gc=False):
    """An incident as the engine tracks it; `Incident` is the view built from it."""

    key: str
    rule: str
    group: dict[str, str]
    group_key: str
    status: str = "open"
    opened_at: float
    """Event time at which its condition held."""
    detected_at: float = 0.0
    """Processing time at which the engine decided (not part of any replayed result)."""
    opened_clock: float = 0.0
    """Arrival-clock time at which it opened (hysteresis counts from it)."""
    first_seen: float
    last_seen: float
    last_activity: float
    """Arrival time of the last alert that fed it or was re-sent (`resolve.quiet`)."""
    resolved_at: float | None = None
    exemplars: list[str] = []
    """Fingerprints listed on the incident, at most `max_alerts_per_incident`."""
    alert_count: int = 0
    firing: int = 0
    sequence: int = 0
    last_event_at: float = 0.0
    """Arrival-clock time of its last event; `updated` events are spaced from it."""
    timeline: list[TimelineEntry] = []
    timeline_dropped: int = 0
    why: str = ""
    """Why the incident opened, in one sentence (for explain)."""
    window: list[tuple[float, str, str]] = []
    """The window contents that opened it (for explain)."""
    arrivals: list[float] = []
    """Arrival times of alerts that fed it, within `resolve.timespan` (hysteresis)."""
    dirty: list[str] = []
    """Why it changed since its last event; flushed as one `updated` event."""
    added: list[str] = []
    """Fingerprints of listed alerts added since its last event."""
    resolved_fps: list[str] = []
    """Fingerprints of its alerts that resolved since its last event."""
    duplicates_sent: int = 0
    """Re-sends of its listed alerts as of its last event (the next one sends the rest)."""
    severity: str = ""
    category: str = ""
    priority: int = 0
    title: str = ""
    labels: dict[str, str] = {}
    """Classification, title and labels (group + shared) as last sent: what inhibition
    compares, what a compact update carries, and what it reports changes against."""
    announced: bool = True
    """False while inhibition has held back its `opened` event."""
    inhibited_by: str = ""
    acknowledged_at: float | None = None
    acknowledged_by: str = ""


class State(msgspec.Struct, kw_only=True, gc=False):
    """All of one shard's state."""

    version: int = STATE_VERSION
    clock: float = 0.0
    """The engine's arrival clock: the latest record or tick it has taken."""
    watermark: float = 0.0
    """The highest event time seen."""
    last_gc: float = 0.0
    tracked: dict[str, Tracked] = {}
    rules: dict[str, RuleState] = {}
    incidents: dict[str, IncidentState] = {}
    open_by_group: dict[str, str] = {}
    """"rule\\x1egroup key" -> key of its open incident."""
    silences: list[Silence] = []


# JSON rather than msgpack: Alert.raw is a msgspec.Raw of JSON, which only the JSON
# encoder can embed verbatim.
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(State)


def encode_state(state: State) -> bytes:
    return _encoder.encode(state)


def decode_state(blob: bytes) -> State:
    """Raises msgspec.ValidationError for a state of another version."""
    state = _decoder.decode(blob)
    if state.version != STATE_VERSION:
        msg = f"state version {state.version}, this engine reads {STATE_VERSION}"
        raise msgspec.ValidationError(msg)
    return state
