"""Where an engine's state is kept between batches and across restarts.

The only I/O in `correlate/`. The engine never imports it: the shell loads a shard's
snapshot, builds the engine from it, and saves after each batch.
"""

from __future__ import annotations

from typing import Protocol

from correlate.store.memory import MemoryStore

__all__ = ["MemoryStore", "Store"]


class Store(Protocol):
    async def load(self, shard: str) -> bytes | None:
        """The shard's last saved snapshot, or None for a fresh start."""
        ...

    async def save(self, shard: str, snapshot: bytes) -> None:
        """Persist the shard's snapshot; raises StoreUnavailable when it cannot."""
        ...

    async def close(self) -> None: ...
