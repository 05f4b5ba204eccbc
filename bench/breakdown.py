"""Where the bytes of a live fingerprint go: the memory target's fleet fed as
`bench.measure memory` feeds it, then every object the engine (and the HTTP route's
fingerprint cache) holds, counted once, by the first place that reaches it.

    python -m bench.breakdown --live 1000000            # sys.getsizeof, by component
    python -m bench.breakdown --live 100000 --lines 15  # and tracemalloc's top lines

Components are walked in the order printed, and an object already counted (an interned
label value every alert of a service shares, the fingerprint string the table's key and
the Alert both hold) is not counted again: so a line is what that component adds, and
the lines sum to the bytes the walk reached. RSS is more: pymalloc's free space, the
allocator's pages, the interpreter (`bench.measure memory` gives RSS).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from bench.feed import feed
from bench.measure import _START, _fleet_requests, _rss_kib
from bench.workload import rules
from correlate import Engine
from correlate.state import IncidentState
from ingest import fingerprint

__all__ = ["Walk", "breakdown", "main"]

_getsizeof = sys.getsizeof


class Walk:
    """Bytes of objects not met before; `deep` follows containers and Structs."""

    def __init__(self) -> None:
        self.seen: set[int] = set()

    def shallow(self, objs: Iterable[Any]) -> int:
        seen, total = self.seen, 0
        for o in objs:
            i = id(o)
            if i in seen:
                continue
            seen.add(i)
            total += _getsizeof(o)
        return total

    def deep(self, objs: Iterable[Any]) -> int:
        seen, total = self.seen, 0
        stack = list(objs)
        while stack:
            o = stack.pop()
            i = id(o)
            if i in seen:
                continue
            seen.add(i)
            total += _getsizeof(o)
            if isinstance(o, dict):
                stack.extend(o.keys())
                stack.extend(o.values())
            elif isinstance(o, list | tuple | set | frozenset):
                stack.extend(o)
            elif isinstance(o, msgspec.Struct):
                stack.extend(getattr(o, f) for f in o.__struct_fields__)
            elif hasattr(o, "__slots__") and not isinstance(o, type):
                stack.extend(getattr(o, s) for s in o.__slots__ if hasattr(o, s))
        return total


def _fields(items: Iterable[Any], *names: str) -> Iterator[Any]:
    for o in items:
        for n in names:
            v = getattr(o, n, None)
            if v is not None:
                yield v


_FLOATS = ("event_time", "fed_at", "first_seen", "last_seen", "ends_at", "starts_at")


def _tables(engine: Engine) -> list[Any]:
    dedup = engine._dedup
    return [getattr(dedup, n) for n in ("_kinds", "_notes") if hasattr(dedup, n)]


def _alert_rows(w: Walk, tracked: list[Any]) -> list[tuple[str, int]]:
    """The alert each `Tracked` keeps: compact (`kind`, `values`, `notes`) or, before
    state version 3, a wire `Alert` with its dicts."""
    floats = [f for f in _FLOATS if f in type(tracked[0]).__struct_fields__] if tracked else []
    rows = [
        ("Tracked floats", w.shallow(_fields(tracked, *floats))),
        (
            "Tracked other (resolved_at, incidents, status, muted, raw)",
            w.deep(_fields(tracked, "resolved_at", "incidents", "status", "muted", "raw")),
        ),
    ]
    if tracked and hasattr(tracked[0], "kind"):
        return [
            *rows,
            ("Kind (shared)", w.deep(t.kind for t in tracked)),
            ("label values tuple", w.shallow(t.values for t in tracked)),
            ("label values", w.shallow(v for t in tracked for v in t.values)),
            (
                "annotation values: the tuple (or the one value)",
                w.shallow(t.notes for t in tracked),
            ),
            (
                "annotation values in tuples",
                w.shallow(v for t in tracked if isinstance(t.notes, tuple) for v in t.notes),
            ),
        ]
    alerts = [t.alert for t in tracked]
    labels = [a.labels for a in alerts]
    annotations = [a.annotations for a in alerts]
    return [
        *rows,
        ("Alert struct", w.shallow(alerts)),
        ("Alert floats", w.shallow(_fields(alerts, "starts_at", "ends_at", "received_at"))),
        (
            "Alert other (source, status, severity, url, raw)",
            w.deep(_fields(alerts, "source", "status", "severity", "generator_url", "raw")),
        ),
        ("labels dict", w.shallow(labels)),
        ("label names", w.shallow(k for d in labels for k in d)),
        ("label values", w.shallow(v for d in labels for v in d.values())),
        ("annotations dict", w.shallow(annotations)),
        ("annotation names", w.shallow(k for d in annotations for k in d)),
        ("annotation values", w.shallow(v for d in annotations for v in d.values())),
    ]


def breakdown(engine: Engine) -> list[tuple[str, int]]:
    """(component, bytes) in walk order."""
    state = engine.state
    tracked = list(state.tracked.values())
    incidents = list(state.incidents.values())
    w = Walk()
    w.shallow([state])
    rows = [
        ("tracked table (dict)", w.shallow([state.tracked])),
        ("fingerprint str (table key)", w.shallow(state.tracked.keys())),
        ("Tracked struct", w.shallow(tracked)),
        *_alert_rows(w, tracked),
        ("rule windows (state.rules)", w.deep([state.rules])),
        ("IncidentState structs", w.shallow(incidents)),
        *(
            (f"  IncidentState.{f}", w.deep(_fields(incidents, f)))
            for f in IncidentState.__struct_fields__
        ),
        ("incidents table, open_by_group", w.deep([state.incidents, state.open_by_group])),
        ("timers (heap, expiry lists)", w.deep([engine.timers])),
        ("dedup forget queue", w.deep([engine._dedup._gone])),
        ("dedup sharing tables (kinds, annotation values)", w.deep(_tables(engine))),
        ("ingest fingerprint cache", w.deep([fingerprint._cache])),
    ]
    return rows


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--live", type=int, default=1_000_000)
    p.add_argument("--lines", type=int, default=0, help="also tracemalloc's top N lines")
    args = p.parse_args()
    engine = Engine(rules(50))
    gc.collect()
    if args.lines:
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
    base = _rss_kib()
    feed(engine, _fleet_requests(args.live, _START, args.live / 1000))
    gc.collect()
    rss = _rss_kib()
    live = len(engine.state.tracked)
    rows = breakdown(engine)
    total = sum(b for _, b in rows)
    rows = [(n, b) for n, b in rows if b or not n.startswith(" ")]
    print(f"incidents: {len(engine.state.incidents):,}")
    print(
        f"live fingerprints {live:,}; RSS {rss / 1024:,.0f} MiB, {(rss - base) * 1024 / live:,.0f} B each over the idle engine"
    )
    print(f"{'component':<52} {'B/fp':>7} {'share':>6}")
    for name, b in rows:
        print(f"{name:<52} {b / live:>7.1f} {b / total:>6.1%}")
    print(f"{'walked, in all':<52} {total / live:>7.1f}")
    if args.lines:
        after = tracemalloc.take_snapshot()
        stats = after.compare_to(before, "lineno")
        traced = sum(s.size_diff for s in stats)
        print(f"\ntracemalloc: {traced / live:,.0f} B each; top lines:")
        for s in stats[: args.lines]:
            frame = s.traceback[0]
            print(
                f"{s.size_diff / live:>7.1f} B/fp  {frame.filename.rsplit('/', 2)[-2:]}:{frame.lineno}"
            )


if __name__ == "__main__":
    main()
