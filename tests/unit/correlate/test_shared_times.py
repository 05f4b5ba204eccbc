"""The alerts of one request share their times as one float object each, through the
engine and through the memory store's replica: compiled (setup.py, mypyc), a float
stored from an unboxed value is a new object, 24 bytes a live alert per field
(correlate/state.py `Stamp`)."""

from __future__ import annotations

import asyncio

import msgspec

from correlate import Engine
from correlate.store import MemoryStore
from stormwatch.wire import Alert
from tests.support import T0, alert, count_rule, engine

_TIMES = ("starts_at", "event_time", "first_seen", "last_seen", "ends_at", "fed_at")


def _request(t: float, n: int = 4) -> list[Alert]:
    # One request: one arrival float, one startsAt float, as the normaliser stamps them.
    arrival, start = T0 + t, T0
    return [
        msgspec.structs.replace(alert(f"A{i}", service="s"), received_at=arrival, starts_at=start)
        for i in range(n)
    ]


def _objects(eng: Engine, field: str) -> int:
    return len({id(getattr(t, field)) for t in eng.state.tracked.values()})


def test_the_alerts_of_a_request_share_each_time() -> None:
    eng = engine(count_rule(gte=100))
    eng.process(_request(0.0), now=T0)
    for field in _TIMES:
        assert _objects(eng, field) == 1, field


def test_a_resent_request_shares_its_heartbeat_through_the_memory_store() -> None:
    eng = engine(count_rule(gte=100))
    store = MemoryStore()
    eng.process(_request(0.0), now=T0)
    asyncio.run(store.commit("s", eng.take_delta()))
    eng.process(_request(30.0), now=T0 + 30)
    asyncio.run(store.commit("s", eng.take_delta()))
    for field in ("last_seen", "ends_at"):
        assert _objects(eng, field) == 1, field
    assert all(t.duplicates == 1 for t in eng.state.tracked.values())
