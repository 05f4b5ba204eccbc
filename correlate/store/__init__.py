"""Where an engine's state is kept between batches and across restarts.

The only I/O in `correlate/`. The engine never imports it: the shell loads a shard's
state, builds the engine from it, and after every batch saves the engine's
`StateDelta` before the batch is acknowledged.
"""

from __future__ import annotations

from typing import Protocol

from correlate.delta import StateDelta
from correlate.state import State
from correlate.store.memory import MemoryStore

__all__ = ["MemoryStore", "Store"]


class Store(Protocol):
    durable: bool
    """True when saved state outlives the process (the pipeline then saves per batch)."""
    heartbeats: bool
    """Whether it stores a delta's heartbeats (`StateDelta.beats`); the pipeline builds
    none for a store that does not (MemoryStore: its alerts are the engine's own)."""

    async def load(self, shard: str) -> State | None:
        """The shard's saved state, or None for a fresh start."""
        ...

    async def commit(
        self, shard: str, delta: StateDelta, outbox: dict[str, list[bytes]] | None = None
    ) -> None:
        """Persist one batch atomically: its state delta, and `outbox` (list key ->
        entries, the sinks' outbox entries of the same batch) in the same write, so a
        batch is stored with its events or not at all; raises StoreUnavailable."""
        ...

    async def close(self) -> None: ...
