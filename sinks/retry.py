"""`Retrying(sink)`: exponential backoff with full jitter, honouring Retry-After.

It is itself a `Sink`, so wrappers compose: `Retrying(RateLimited(PagerDutySink(...)))`.
A permanent error stops at once; a retryable one is tried again until `max_attempts`
or `max_elapsed`, never sooner than the server asked (capped at `max_backoff`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import msgspec
import structlog

from sinks.base import Receipt, Sink
from stormwatch.errors import SinkError
from stormwatch.wire import Duration, IncidentEvent

__all__ = ["RetryPolicy", "Retrying"]

log = structlog.get_logger("stormwatch.sinks")


class RetryPolicy(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    initial_backoff: Duration = Duration(0.5)
    max_backoff: Duration = Duration(60)
    multiplier: float = 2.0
    max_attempts: int = 8
    max_elapsed: Duration = Duration(600)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max, initial * multiplier**(attempt-1))]."""
        cap = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return rng.uniform(0, cap)


class Retrying:
    """Wraps a sink with retries; raises the last error when it gives up."""

    def __init__(
        self,
        sink: Sink,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = sink
        self.name = sink.name
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()

    async def deliver(self, event: IncidentEvent) -> Receipt:
        started = self._clock()
        attempt, last_reason = 0, ""
        while True:
            attempt += 1
            try:
                return await self.inner.deliver(event)
            except SinkError as err:
                if not err.retryable or attempt >= self.policy.max_attempts:
                    raise
                wait = self.policy.backoff(attempt, self._rng)
                if err.retry_after_s is not None:
                    wait = max(wait, min(err.retry_after_s, self.policy.max_backoff))
                if self._clock() + wait - started > self.policy.max_elapsed:
                    raise
                reason = f"{err.status}" if err.status else type(err).__name__
                if reason != last_reason:
                    # Log a failure only when it differs from the previous one.
                    log.warning(
                        "sink_delivery_retrying",
                        sink=self.name,
                        attempt=attempt,
                        retry_after_s=round(wait, 3),
                        reason=reason,
                        incident_key=event.incident.key,
                    )
                    last_reason = reason
                await self._sleep(wait)

    async def close(self) -> None:
        await self.inner.close()
