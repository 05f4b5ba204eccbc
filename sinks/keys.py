"""Every Redis key the sinks write, in one place (correlate/store/keys.py has the state's).

`prefix` is the state's `key_prefix` ("stormwatch" by default; tests use their own).
A partitioned correlator keeps one outbox per shard (its Kafka partition), under the
shard's own keys `{prefix}:{shard}:outbox:...`, so the shard's owner alone drains it and
hands it over with the shard; the single process's outbox is `{prefix}:outbox:...`.
"""

from __future__ import annotations

__all__ = ["SinkKeys", "remote_key"]

REMOTE_TTL_S = 30 * 86400
"""A sink's record of an incident's remote object lives 30 days after its last change:
long past any incident's life, and a sink that meets the incident again after that
finds the object by its vendor key (label, correlation_id, alias, dedup_key)."""
RESOLVED_TTL_S = 7 * 86400
"""Once the sink has the resolution, a week: what it still guards against is a late
dead-letter replay of an older event."""


class SinkKeys:
    """The keys of one sink's outbox."""

    def __init__(self, prefix: str, sink: str, shard: str | None = None) -> None:
        if shard is not None:
            prefix = f"{prefix}:{shard}"
        self.inbox = f"{prefix}:outbox:{sink}"
        """List of OutboxEntry: appended in the batch's commit, taken from the head by
        the sink's drain. No TTL: an entry leaves when absorbed into `pending`."""
        self.pending = f"{prefix}:outbox:{sink}:pending"
        """Hash incident key -> Pending. No TTL: a slot leaves when delivered or dead."""
        self.due = f"{prefix}:outbox:{sink}:due"
        """Sorted set incident key -> next attempt time (the drain's schedule)."""
        self.age = f"{prefix}:outbox:{sink}:age"
        """Sorted set incident key -> enqueued_at (its size bounds the outbox)."""
        self.meta = f"{prefix}:outbox:{sink}:meta"
        """Hash: `events` = events held in `pending` (a gauge reads it)."""
        self.dead = f"{prefix}:deadletters:{sink}"
        """List of DeadLetter, capped at `outbox.dead_letter_capacity` (LTRIM)."""


def remote_key(prefix: str, sink: str, incident: str) -> str:
    """`{prefix}:remote:{sink}:{incident}`: RemoteRef JSON, the incident's object at the
    sink (ticket key, message ts...) and the last sequence delivered; TTL REMOTE_TTL_S,
    RESOLVED_TTL_S once resolved."""
    return f"{prefix}:remote:{sink}:{incident}"
