"""`StoreOutage`: one log line when the state store stops taking commits, one when it
takes them again, however many batches, shards and retries fail in between."""

from __future__ import annotations

import time

import structlog

__all__ = ["StoreOutage"]

log = structlog.get_logger("stormwatch.store")


class StoreOutage:
    def __init__(self) -> None:
        self.since: float | None = None
        """Monotonic time the current outage started; None while the store answers."""
        self.error = ""

    def failed(self, err: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            self.error = str(err)
            log.error("store_unavailable", error=self.error)

    def ok(self) -> None:
        if self.since is not None:
            down = time.monotonic() - self.since
            self.since = None
            log.info("store_recovered", duration_s=round(down, 3))
