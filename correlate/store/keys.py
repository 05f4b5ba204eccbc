"""Every Redis key stormwatch writes, in one place.

All keys of a shard share the prefix `{prefix}:{shard}:`; none has a TTL: state lives
until the engine forgets it (resolved alerts and incidents after `correlate.retention`),
and the store deletes it then. `prefix` defaults to "stormwatch"; tests use their own.

A partitioned correlator's shard is its Kafka partition (`shard_id`); the shard's
`owner` and `offset` keys fence its commits and say where its partition resumes
(correlate/store/fence.py). They outlive a full rewrite of the state.
"""

from __future__ import annotations

__all__ = ["ShardKeys", "shard_id"]


def shard_id(topic: str, partition: int) -> str:
    """The shard of one Kafka partition: `{topic}.{partition}`."""
    return f"{topic}.{partition}"


class ShardKeys:
    """The hashes that hold one shard's state."""

    def __init__(self, prefix: str, shard: str) -> None:
        base = f"{prefix}:{shard}"
        self.meta = f"{base}:meta"
        """version, clock, watermark, last gc, silences."""
        self.tracked = f"{base}:tracked"
        """fingerprint -> Tracked (the dedup table)."""
        self.beats = f"{base}:beats"
        """fingerprint -> [last_seen, ends_at, duplicates] of a re-sent alert, newer than
        its `tracked` entry (deleted whenever that entry is written)."""
        self.windows = f"{base}:windows"
        """rule \\x1e group -> window events."""
        self.rules = f"{base}:rules"
        """rule -> correlation hash, group waits, heartbeats."""
        self.incidents = f"{base}:incidents"
        """incident key -> IncidentState."""
        self.open = f"{base}:open"
        """rule \\x1e group -> key of its open incident."""
        self.owner = f"{base}:owner"
        """Hash group, generation, token: the replica allowed to commit the shard."""
        self.offset = f"{base}:offset"
        """The partition's next offset, written in each commit's transaction."""

    def all(self) -> list[str]:
        return [
            self.meta,
            self.tracked,
            self.windows,
            self.rules,
            self.incidents,
            self.open,
            self.beats,
        ]
