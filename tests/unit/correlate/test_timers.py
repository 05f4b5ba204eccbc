"""Expiries held back per due time come out exactly where heap entries would."""

from __future__ import annotations

import random

from correlate.timers import Timer, Timers


def test_held_back_expiries_fire_in_due_kind_key_order() -> None:
    rng = random.Random(7)
    timers = Timers()
    pushed = []
    for i in range(500):
        due = float(rng.randrange(20))
        if rng.random() < 0.7:
            fp = f"{rng.randrange(10**6):06d}"
            timers.expire_at(due, fp)
            pushed.append((due, int(Timer.EXPIRE), fp))
        else:
            kind = rng.choice([Timer.SILENCE, Timer.GROUP_WAIT, Timer.FLUSH])
            timers.at(due, kind, f"k{i}")
            pushed.append((due, int(kind), f"k{i}"))
    assert len(timers) == len(pushed)
    out = []
    while (entry := timers.pop_before(10.0)) is not None:
        out.append(entry)
    assert timers.next_due() == 10.0
    while (entry := timers.pop_until(19.0)) is not None:
        out.append(entry)
    assert out == sorted(pushed)
    assert len(timers) == 0


def test_an_expiry_due_while_its_due_time_is_handed_out_takes_its_place_by_key() -> None:
    # A handler may queue an expiry at the very due time being fired: a heap would give
    # it its place among the remaining ones by key, and so must the held-back list.
    import heapq

    rng = random.Random(11)
    timers = Timers()
    model: list[tuple[float, int, str]] = []
    for i in range(200):
        fp = f"{rng.randrange(10**6):06d}"
        timers.expire_at(5.0, fp)
        heapq.heappush(model, (5.0, int(Timer.EXPIRE), fp))
        if i % 3 == 0:
            timers.at(5.0, Timer.GROUP_WAIT, f"g{i}")
            heapq.heappush(model, (5.0, int(Timer.GROUP_WAIT), f"g{i}"))
    out, expected = [], []
    while (entry := timers.pop_until(5.0)) is not None:
        out.append(entry)
        expected.append(heapq.heappop(model))
        if rng.random() < 0.3:
            fp = f"{rng.randrange(10**6):06d}"
            timers.expire_at(5.0, fp)
            heapq.heappush(model, (5.0, int(Timer.EXPIRE), fp))
            assert len(timers) == len(model)
    assert not model
    assert out == expected
    assert timers.next_due() is None
