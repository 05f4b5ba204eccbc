"""One log line per (source, reason) per interval, with a count of what it held back."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["LogLimiter"]


class LogLimiter:
    """`allow(key)` is True at most once per `interval`; it then reports how many calls
    it refused since the last allowed one, so the line can say `suppressed=N`."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[tuple[str, ...], float] = {}
        self._held: dict[tuple[str, ...], int] = {}

    def allow(self, *key: str) -> tuple[bool, int]:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return False, 0
        self._last[key] = now
        return True, self._held.pop(key, 0)
