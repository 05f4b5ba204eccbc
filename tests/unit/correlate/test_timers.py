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
