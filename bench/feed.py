"""The engine fed as the live pipeline feeds it, minus the I/O: one request per
`Engine.process` call (one arrival instant), a `tick` after each as the correlator does
when its queue runs empty, every incident event encoded as a sink body, and the state
delta taken after every call as a store would. Shared by the pytest benchmarks, the CI
guard and `python -m bench.targets`, so all three time the same work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from correlate import Engine
from stormwatch.wire import Alert

__all__ = ["feed"]


def feed(engine: Engine, requests: Iterable[Sequence[Alert]]) -> int:
    """Run `requests` through `engine`; returns the incident events emitted."""
    process, tick, take_delta = engine.process, engine.tick, engine.take_delta
    encode = msgspec.json.Encoder().encode
    events = 0
    for request in requests:
        now = request[0].received_at
        for e in process(request, now).events:
            encode(e)
            events += 1
        for e in tick(now).events:
            encode(e)
            events += 1
        take_delta()
    return events
