"""The garbage collector's settings for the daemon and replay.

The hot path makes short-lived container objects by the thousand a request (key tuples,
batch lists, events) and holds long-lived state that has no cycles (`correlate/state.py`).
With CPython's default first threshold (700 allocations) those short-lived objects
survive into the older generations in bulk, and each full collection walks the whole
live heap. bench/README.md ("Garbage collection") has the measures: one correlator's
Kafka intake 1.14x with these settings, a 1,000,000-alert replay in 0.94x the time.
"""

from __future__ import annotations

import gc

__all__ = ["GEN0_THRESHOLD", "tune_gc"]

GEN0_THRESHOLD = 50_000
"""Tracked allocations (net) between young collections: a few requests' worth, so what a
request makes is gone before a collection sees it."""


def tune_gc() -> None:
    """Call once, after start-up: what start-up built (modules, rules, the restored
    state) is frozen out of every later collection, and young collections run less often.
    Cycles are still collected; only later."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
