"""The Struct shapes of a state delta, `StateDelta` and `RuleMeta` (correlate/delta.py
builds, merges and applies them). A module of their own because delta.py is compiled
with mypyc (setup.py), which cannot build Struct classes."""

from __future__ import annotations

import msgspec

from correlate.state import IncidentState, Tracked, Window
from correlate.suppress import Silence

__all__ = ["RuleMeta", "StateDelta"]


class RuleMeta(msgspec.Struct, kw_only=True, gc=False):
    fingerprint: str
    pending: dict[str, float] = {}
    last_seen: dict[str, float] = {}


class StateDelta(msgspec.Struct, kw_only=True, gc=False):
    """Values are the new ones; None means deleted."""

    full: bool = False
    clock: float = 0.0
    watermark: float = 0.0
    last_gc: float = 0.0
    silences: list[Silence] | None = None
    tracked: dict[str, Tracked | None] = {}
    beats: dict[str, tuple[float, float, int]] = {}
    """Re-sent alerts whose only change is the heartbeat: fingerprint -> (last_seen,
    ends_at, duplicates). A few bytes each, where the whole `Tracked` is hundreds: 80 %
    of what Prometheus sends are re-sends (bench/README.md, Redis)."""
    windows: dict[str, Window | None] = {}
    """`window_key(rule, group)` -> events."""
    rules: dict[str, RuleMeta | None] = {}
    incidents: dict[str, IncidentState | None] = {}
    open: dict[str, str | None] = {}
    """`rule + "\\x1e" + group` -> open incident key (State.open_by_group)."""

    def __len__(self) -> int:
        return (
            len(self.tracked)
            + len(self.beats)
            + len(self.windows)
            + len(self.rules)
            + len(self.incidents)
        )
