"""What changed in an engine's state since it was last saved: `StateDelta`.

A store persists deltas, not snapshots, so saving a batch costs what the batch touched,
not the size of the state. The engine marks what it changes in a `Changes` as it goes;
`build_delta` reads the current values of everything marked; `apply_delta` replays a
delta onto a `State` (the property tests check that replaying every delta rebuilds
exactly the engine's state, so a missed mark fails a test rather than a restart).

A delta with `full=True` replaces everything (first save, a rule reload).
`merge(older, newer)` is one delta that stores what the two would, in order: a commit
that failed is retried merged with the next one, not by rewriting the whole state.
"""

from __future__ import annotations

from typing import Final

from correlate.deltatypes import RuleMeta, StateDelta
from correlate.state import RuleState, Stamp, State, Window

__all__ = [
    "Changes",
    "RuleMeta",
    "StateDelta",
    "apply_delta",
    "build_delta",
    "merge",
    "window_key",
]

_SEP: Final = "\x1e"


def window_key(rule: str, gkey: str) -> str:
    return rule + _SEP + gkey


class Changes:
    """Marks made while the engine works; cleared when a delta is taken."""

    __slots__ = ("beats", "full", "groups", "incidents", "meta", "opens", "rules", "tracked")

    def __init__(self) -> None:
        self.full = True  # the first save writes everything
        self.meta = True
        self.tracked: set[str] = set()
        self.beats: set[str] = set()
        """Alerts whose heartbeat fields alone changed (a re-send)."""
        self.groups: set[tuple[str, str]] = set()
        self.rules: set[str] = set()
        self.incidents: set[str] = set()
        self.opens: set[str] = set()
        """`rule + "\x1e" + group` keys whose open incident changed."""

    def clear(self) -> None:
        self.full = self.meta = False
        self.tracked.clear()
        self.beats.clear()
        self.groups.clear()
        self.rules.clear()
        self.incidents.clear()
        self.opens.clear()


def build_delta(state: State, changes: Changes, heartbeats: bool = True) -> StateDelta:
    """The current values of everything `changes` marked (everything, if full);
    `heartbeats` False leaves the re-sends' heartbeats out (for a store that keeps none)."""
    if changes.full:
        tracked_keys: set[str] | list[str] = list(state.tracked)
        groups = [(r, g) for r, rs in state.rules.items() for g in rs.groups]
        rule_names: set[str] | list[str] = list(state.rules)
        incident_keys: set[str] | list[str] = list(state.incidents)
    else:
        tracked_keys, groups, rule_names, incident_keys = (
            changes.tracked,
            list(changes.groups),
            changes.rules,
            changes.incidents,
        )
    delta = StateDelta(
        full=changes.full, clock=state.clock, watermark=state.watermark, last_gc=state.last_gc
    )
    if changes.full or changes.meta:
        delta.silences = list(state.silences)
    tracked = state.tracked
    delta.tracked = {fp: tracked.get(fp) for fp in tracked_keys}
    if heartbeats and not changes.full:
        whole = changes.tracked
        # Read through a Stamp: the heartbeat's times as the objects the alerts share.
        held: Stamp = tracked
        delta.beats = {
            fp: (t.last_seen, t.ends_at, t.duplicates)
            for fp in changes.beats
            if fp not in whole and (t := held.get(fp)) is not None
        }
    for rule, gkey in groups:
        rs = state.rules.get(rule)
        delta.windows[window_key(rule, gkey)] = rs.groups.get(gkey) if rs is not None else None
    for name in rule_names:
        rs = state.rules.get(name)
        delta.rules[name] = (
            RuleMeta(fingerprint=rs.fingerprint, pending=rs.pending, last_seen=rs.last_seen)
            if rs
            else None
        )
    for key in incident_keys:
        delta.incidents[key] = state.incidents.get(key)
    opens = state.open_by_group
    for open_key in opens if changes.full else changes.opens:
        delta.open[open_key] = opens.get(open_key)
    return delta


def apply_delta(state: State, delta: StateDelta, heartbeats: bool = True) -> None:
    """Replay `delta` onto `state` (what a store does when it loads). `heartbeats`
    False leaves out the re-sends' heartbeats, for a replica whose alerts are the
    engine's own objects (MemoryStore): every alert changed otherwise is in the delta
    whole, so the replica holds the object the engine writes its heartbeats into."""
    if delta.full:
        state.tracked, state.rules, state.incidents, state.open_by_group = {}, {}, {}, {}
    state.clock, state.watermark, state.last_gc = delta.clock, delta.watermark, delta.last_gc
    if delta.silences is not None:
        state.silences = list(delta.silences)
    for fp, t in delta.tracked.items():
        if t is None:
            state.tracked.pop(fp, None)
        else:
            state.tracked[fp] = t
    # As Stamps, the times are set as the objects the delta holds: a replica that shares
    # the engine's alerts (MemoryStore) would otherwise give each its own new floats.
    beats: Stamp = delta.beats if heartbeats else {}
    for fp, (last_seen, ends_at, duplicates) in beats.items():
        beat = state.tracked.get(fp)
        if beat is not None:
            beat.last_seen, beat.ends_at, beat.duplicates = last_seen, ends_at, duplicates
    for name, meta in delta.rules.items():
        if meta is None:
            state.rules.pop(name, None)
            continue
        rs = state.rules.get(name)
        if rs is None or rs.fingerprint != meta.fingerprint:
            rs = state.rules[name] = RuleState(fingerprint=meta.fingerprint)
        rs.pending, rs.last_seen = dict(meta.pending), dict(meta.last_seen)
    for wkey, w in delta.windows.items():
        rule, _, gkey = wkey.partition(_SEP)
        rs = state.rules.get(rule)
        if rs is None:
            continue
        if w is None:
            rs.groups.pop(gkey, None)
        else:
            rs.groups[gkey] = Window(times=list(w.times), fps=list(w.fps), values=list(w.values))
    for key, inc in delta.incidents.items():
        if inc is None:
            state.incidents.pop(key, None)
        else:
            state.incidents[key] = inc
    for open_key, open_inc in delta.open.items():
        if open_inc is None:
            state.open_by_group.pop(open_key, None)
        else:
            state.open_by_group[open_key] = open_inc


def merge(older: StateDelta, newer: StateDelta) -> StateDelta:
    """One delta equal to `older` then `newer` (pure: neither is changed). A full
    `newer` replaces everything anyway; a full `older` stays full, updated by `newer`."""
    if newer.full:
        return newer
    # A heartbeat of `older` is stale once `newer` writes or deletes the whole entry.
    beats = {fp: b for fp, b in older.beats.items() if fp not in newer.tracked}
    beats.update(newer.beats)
    return StateDelta(
        full=older.full,
        clock=newer.clock,
        watermark=newer.watermark,
        last_gc=newer.last_gc,
        silences=newer.silences if newer.silences is not None else older.silences,
        tracked={**older.tracked, **newer.tracked},
        beats=beats,
        windows={**older.windows, **newer.windows},
        rules={**older.rules, **newer.rules},
        incidents={**older.incidents, **newer.incidents},
        open={**older.open, **newer.open},
    )
