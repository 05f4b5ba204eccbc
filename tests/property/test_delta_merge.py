"""`merge(older, newer)`: a failed commit is retried merged with the next one, so the
merged delta must store exactly what committing the two in turn would have."""

from __future__ import annotations

import functools

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from correlate.delta import StateDelta, apply_delta, merge
from correlate.state import State
from rules import RuleSet
from stormwatch.wire import Alert
from tests.property.test_engine_properties import (
    _all_types,
    _same_state,
    alert_streams,
    batches_of,
)
from tests.support import engine


def _snapshot(delta: StateDelta) -> StateDelta:
    """Through JSON, as a store writes it: the copy shares no object with the engine."""
    return msgspec.json.decode(msgspec.json.encode(delta), type=StateDelta)


@settings(max_examples=150, deadline=None)
@given(
    stream=alert_streams(),
    size=st.integers(1, 6),
    reload_at=st.integers(0, 10),
    cuts=st.lists(st.booleans(), min_size=40, max_size=40),
)
def test_merged_deltas_store_what_the_deltas_in_turn_would(
    stream: list[Alert], size: int, reload_at: int, cuts: list[bool]
) -> None:
    rules = _all_types()
    eng = engine(*rules, retention=120)  # type: ignore[arg-type]
    deltas = [_snapshot(eng.take_delta())]  # the first save: full
    for i, batch in enumerate(batches_of(stream, size)):
        now = max(a.received_at for a in batch)
        eng.process(batch, now)
        deltas.append(_snapshot(eng.take_delta()))
        eng.tick(now + 30)
        if i == reload_at:
            eng.reload(RuleSet(rules=tuple(r for r in eng.rules.rules if r.name != "vc")))  # type: ignore[union-attr]
        deltas.append(_snapshot(eng.take_delta()))
    eng.tick((stream[-1].received_at if stream else 0) + 10_000)  # expiry and forgetting
    deltas.append(_snapshot(eng.take_delta()))

    # Commits that failed in a row are one merged commit; `cuts` says where one succeeded.
    groups: list[list[StateDelta]] = [[]]
    for d, cut in zip(deltas, cuts + [True] * len(deltas), strict=False):
        groups[-1].append(d)
        if cut:
            groups.append([])
    replica = State()
    for group in filter(None, groups):
        apply_delta(replica, functools.reduce(merge, group))
    assert _same_state(replica, eng.state)


def test_merge_keeps_a_full_delta_full_and_drops_beats_the_newer_entry_replaces() -> None:
    older = StateDelta(full=True, beats={"a": (1.0, 2.0, 3), "b": (1.0, 2.0, 1)})
    newer = StateDelta(tracked={"a": None}, beats={"b": (5.0, 6.0, 2)}, clock=9.0)
    merged = merge(older, newer)
    assert merged.full and merged.clock == 9.0
    assert merged.beats == {"b": (5.0, 6.0, 2)} and merged.tracked == {"a": None}
    assert merge(newer, older) is older  # a full newer replaces everything anyway
