"""The memory store's replica across in-process restarts: what an `App` restarted on the
same `MemoryStore` loads is what the last engine committed, heartbeats included, though
the store replays no heartbeats (its alerts are the engine's own objects)."""

from __future__ import annotations

import asyncio

from correlate import Engine
from correlate.state import State
from correlate.store import MemoryStore
from stormwatch.wire import Alert
from tests.support import alert, count_rule, engine


def _commit(store: MemoryStore, eng: Engine, batch: list[Alert]) -> None:
    eng.process(batch, now=batch[0].received_at)
    # as the pipeline does: the store keeps no heartbeats, so the delta carries none
    delta = eng.take_delta(store.heartbeats)
    assert not delta.beats
    asyncio.run(store.commit("s", delta))


def _load(store: MemoryStore) -> State:
    state = asyncio.run(store.load("s"))
    assert state is not None
    return state


def _restarted(store: MemoryStore, first: Engine) -> Engine:
    return Engine(first.rules, first.config, _load(store))


def test_re_sends_committed_are_in_what_a_restart_loads() -> None:
    eng, store = engine(count_rule(gte=100)), MemoryStore()
    _commit(store, eng, [alert("A", t=0, service="s"), alert("B", t=0, service="s")])
    for t in (30.0, 60.0):
        _commit(store, eng, [alert("A", t=t, service="s")])
    loaded = {t.values[0]: t for t in _load(store).tracked.values()}
    assert loaded["A"].duplicates == 2 and loaded["B"].duplicates == 0
    assert loaded["A"].last_seen == eng.state.tracked[alert("A", service="s").fingerprint].last_seen


def test_what_a_restarted_engine_takes_in_survives_the_next_restart() -> None:
    # After a restart the engine works on the State the store gave it, and its first
    # delta is full: replayed onto that same State, it would swap the dict the dedup
    # table writes into, and the next alert would be lost from the replica.
    first, store = engine(count_rule(gte=100)), MemoryStore()
    _commit(store, first, [alert("A", t=0, service="s")])
    second = _restarted(store, first)
    _commit(store, second, [alert("B", t=10, service="s")])
    _commit(store, second, [alert("C", t=20, service="s")])
    _commit(store, second, [alert("C", t=30, service="s")])  # a re-send of C
    third = _restarted(store, second)
    names = sorted(t.values[0] for t in third.state.tracked.values())
    assert names == ["A", "B", "C"]
    c = third.state.tracked[alert("C", service="s").fingerprint]
    assert c.duplicates == 1
    # and the third engine counts the next C as a re-send, not a new alert
    effects = third.process([alert("C", t=40, service="s")], now=alert("C", t=40).received_at)
    assert effects.counts.duplicates == 1 and effects.counts.new == 0
