"""What one engine call returns: `Effects` (incident events in order) and `Counts`.

Apart from the engine for the same reason as `correlate.config`: Struct classes stay in
interpreted modules.
"""

from __future__ import annotations

import msgspec

from stormwatch.wire import IncidentEvent

__all__ = ["Counts", "Effects"]


class Counts(msgspec.Struct, kw_only=True):
    """What one call did, for metrics and logs; the core itself never counts elsewhere."""

    received: int = 0
    new: int = 0
    duplicates: int = 0
    resolved: int = 0
    expired: int = 0
    stale: int = 0
    unmatched: int = 0
    silenced: int = 0
    late: int = 0
    duplicates_by_source: dict[str, int] = {}
    late_by_rule: dict[str, int] = {}
    capped_by_rule: dict[str, int] = {}
    """Alerts that found their rule at `max_groups_per_rule` live windows, with no room for
    a new group."""


class Effects(msgspec.Struct, kw_only=True):
    """Incident events in the order they happened, and the counts of the call."""

    events: list[IncidentEvent]
    counts: Counts
