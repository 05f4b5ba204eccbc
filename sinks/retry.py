"""When to try a sink again: retry by time, and a circuit breaker per sink.

Retries are not a loop inside `deliver`: a failed incident goes back to the sink's
outbox with the time of its next attempt, so newer events of the same incident fold
into it while it waits (sinks/coalesce.py) and a restart resumes where it stopped. An
incident is retried until `deadline` has passed since it started waiting (24 h by
default), with capped exponential backoff and full jitter, never sooner than a
server's Retry-After. `max_attempts` (0 = no limit) exists for receivers that want a
count instead.

The breaker (Alertmanager has none; it is the usual closed -> open -> half-open
machine) makes an outage cheap: after `failures` retryable failures in a row it opens,
and the sink then gets one probe per `probe_interval` instead of a call per waiting
incident; the first success closes it again.
"""

from __future__ import annotations

import random
from typing import Literal

import msgspec

from stormwatch.wire import Duration

__all__ = ["BreakerPolicy", "BreakerState", "CircuitBreaker", "RetryPolicy"]

BreakerState = Literal["closed", "open", "half_open"]
MAX_RETRY_AFTER_S = 3600.0
"""A Retry-After beyond an hour is taken as an hour: a wrong header must not park a sink."""


class RetryPolicy(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    initial_backoff: Duration = Duration(0.5)
    max_backoff: Duration = Duration(60)
    multiplier: float = 2.0
    deadline: Duration = Duration(86400)
    """How long an incident's events are retried before they go to dead letters."""
    max_attempts: int = 0
    """Give up after this many attempts as well; 0: only the deadline counts."""

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max, initial * multiplier**(attempt-1))]."""
        cap = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return rng.uniform(0, cap)

    def gives_up(self, attempts: int, waited_s: float) -> bool:
        if self.max_attempts and attempts >= self.max_attempts:
            return True
        return waited_s >= self.deadline


class BreakerPolicy(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    failures: int = 5
    """Retryable failures in a row that open the breaker; 0 turns it off."""
    probe_interval: Duration = Duration(30)
    """While open, one attempt per interval finds out whether the sink is back."""


class CircuitBreaker:
    """The state machine; time comes in as arguments, so tests need no clock."""

    def __init__(self, policy: BreakerPolicy) -> None:
        self.policy = policy
        self.state: BreakerState = "closed"
        self.failures = 0
        self.probe_at = 0.0
        self.opened = 0
        """How often it opened (for logs and tests)."""

    def blocked_until(self, now: float) -> float | None:
        """When the next attempt may go, if not now."""
        if self.state == "open":
            if now >= self.probe_at:
                self.state = "half_open"
                return None
            return self.probe_at
        return None

    def success(self) -> None:
        self.state, self.failures = "closed", 0

    def failure(self, now: float) -> bool:
        """Count a retryable failure; True when it (re)opened the breaker."""
        self.failures += 1
        limit = self.policy.failures
        if self.state == "half_open" or (limit and self.failures >= limit):
            if self.state != "open":
                self.opened += 1
            self.state = "open"
            self.probe_at = now + self.policy.probe_interval
            return True
        return False
