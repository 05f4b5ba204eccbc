"""`Context`: what the engine's parts share while it works.

The engine builds one and hands it to the incident book, the announcer and every
rule's aggregator, so they reach the state, the timers and the current call's counts
without importing the engine (and without a cycle between them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from correlate.delta import Changes
from correlate.state import State
from correlate.timers import Timers

if TYPE_CHECKING:
    from correlate.config import EngineConfig
    from correlate.effects import Counts
    from correlate.incidents import IncidentBook
    from correlate.rulebook import LiveRule

__all__ = ["Context"]


class Context:
    __slots__ = (
        "book",
        "changes",
        "config",
        "counts",
        "idle_duplicates",
        "live",
        "now",
        "state",
        "timers",
    )

    def __init__(self, state: State, config: EngineConfig, changes: Changes) -> None:
        self.state = state
        self.config = config
        self.changes = changes
        self.timers = Timers()
        self.now = 0.0
        """Processing time of the current call: only `detected_at`/`processed_at` use it."""
        self.counts: Counts
        self.book: IncidentBook
        self.live: dict[str, LiveRule] = {}
        """Every rule an incident may name: the loaded ones and those a reload retired."""
        self.idle_duplicates: set[str] = set()
        """Keys of open incidents a member's re-send changes nothing in: "duplicates" is
        in their next update already and their rule has no `resolve.quiet`. Derived, not
        stored; a key leaves when its incident's update goes out or it resolves, and all
        leave on a reload (`IncidentBook.saw_duplicate` skips them: most re-sends)."""
