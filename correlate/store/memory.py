"""The embedded default: state lives in the engine's memory and dies with the process."""

from __future__ import annotations

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keeps the last snapshot per shard in memory (useful to tests and restarts in-process)."""

    def __init__(self) -> None:
        self._snapshots: dict[str, bytes] = {}

    async def load(self, shard: str) -> bytes | None:
        return self._snapshots.get(shard)

    async def save(self, shard: str, snapshot: bytes) -> None:
        self._snapshots[shard] = snapshot

    async def close(self) -> None:
        self._snapshots.clear()
