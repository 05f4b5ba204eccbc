"""The embedded default: state lives in memory and dies with the process.

Deltas are replayed onto a replica `State`, so an `App` restarted inside the same
process (tests, an embedding program) picks up where the last one stopped. The replica
shares the engine's objects, so it costs dict entries, not a second copy of the state,
and a re-send's heartbeat is already in the alert it holds: heartbeats are not replayed
(looking each alert up in a second million-entry dict was a twentieth of the HTTP
route, bench/README.md).
"""

from __future__ import annotations

from correlate.delta import StateDelta, apply_delta
from correlate.state import State

__all__ = ["MemoryStore"]


class MemoryStore:
    durable = False
    heartbeats = False

    def __init__(self) -> None:
        self._states: dict[str, State] = {}

    async def load(self, shard: str) -> State | None:
        return self._states.get(shard)

    async def commit(
        self, shard: str, delta: StateDelta, outbox: dict[str, list[bytes]] | None = None
    ) -> None:
        """`outbox` is for stores that hold outboxes too; in memory the outboxes are the
        sinks' own (`sinks.MemoryOutbox`)."""
        state = self._states.get(shard)
        if state is None or delta.full:
            # A new replica, never the one `load` gave out: after a restart the engine
            # works on that State itself, and a full delta replayed onto it would swap
            # the dicts its dedup table holds.
            state = self._states[shard] = State()
        apply_delta(state, delta, heartbeats=False)

    async def close(self) -> None:
        self._states.clear()
