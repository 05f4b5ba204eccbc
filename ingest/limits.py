"""Request rate limits (a token bucket per client address and per credential), and the
in-flight budget that refuses a request before its body is read.

```yaml
ingest:
  rate_limit:
    per_client: {rate: 50, burst: 100}   # requests/s per client address, bursts of 100
    per_token: {rate: 20, burst: 40}     # per credential (bearer token, basic user, HMAC source)
    max_tracked: 10000                   # buckets kept; the idlest go first
```

A refused request is 429 with `Retry-After` (the seconds until the bucket holds a token
again) and counted as `rate_limited`. The client address is the TCP peer: behind a
proxy every client is the proxy, so limit there or per token. Memory is bounded by
`max_tracked`: a bucket idle long enough to be full again carries no state worth
keeping, and is dropped first.

**In-flight budget** (`InflightBudget`, `ingest.queue_max_alerts` and `queue_max_bytes`):
every HTTP request holds, from before its body is read until it is answered, its body's
bytes and its alerts. The bytes are the Content-Length (a chunked body: 1 MiB, then
what arrived), the alerts an estimate from the bytes until the body is decoded, then
the real count. A request that does not fit is refused at once with 429 + Retry-After
and its body is never read or decoded, so under overload the daemon spends its time on
the requests it took, and memory stays bounded by the budget, not by the offered load.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

import msgspec

from stormwatch.errors import Overloaded, PayloadError

__all__ = [
    "InflightBudget",
    "RateLimit",
    "RateLimitConfig",
    "RateLimited",
    "RateLimiter",
    "Ticket",
    "TokenBuckets",
    "estimate_alerts",
]


class RateLimit(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    rate: float
    """Requests per second, sustained."""
    burst: int = 0
    """Requests allowed at once after a quiet spell; default: one second's worth."""

    def __post_init__(self) -> None:
        if not self.rate > 0:
            msg = "rate must be a positive number of requests per second"
            raise ValueError(msg)
        if self.burst < 0:
            msg = "burst must not be negative"
            raise ValueError(msg)

    @property
    def capacity(self) -> float:
        return float(self.burst) if self.burst else max(1.0, self.rate)


class RateLimitConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    per_client: RateLimit | None = None
    per_token: RateLimit | None = None
    max_tracked: int = 10_000


class RateLimited(PayloadError):
    """Over the request rate; answered 429 with `headers` (Retry-After)."""

    def __init__(self, message: str, *, source: str, retry_after_s: float) -> None:
        super().__init__(message, source=source, reason="rate_limited")
        self.retry_after_s = retry_after_s
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after_s)))}


class TokenBuckets:
    """One bucket per key, refilled at `limit.rate` up to its capacity."""

    def __init__(self, limit: RateLimit, max_tracked: int = 10_000) -> None:
        self.limit = limit
        self.max_tracked = max(1, max_tracked)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        """key -> (tokens, when counted), least recently used first."""

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float) -> float:
        """Spend a token for `key`: 0.0 if there was one, else the seconds to wait."""
        capacity, rate = self.limit.capacity, self.limit.rate
        found = self._buckets.pop(key, None)
        tokens = capacity if found is None else min(capacity, found[0] + (now - found[1]) * rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_tracked:
            self._buckets.popitem(last=False)  # the least recently seen: the idlest
        return wait


class RateLimiter:
    """The configured buckets; `check_*` raise RateLimited."""

    def __init__(
        self, config: RateLimitConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._clients = (
            TokenBuckets(config.per_client, config.max_tracked) if config.per_client else None
        )
        self._tokens = (
            TokenBuckets(config.per_token, config.max_tracked) if config.per_token else None
        )

    def check_client(self, address: str, source: str) -> None:
        if self._clients is not None:
            self._check(self._clients, address, source, "client address")

    def check_credential(self, credential: str, source: str) -> None:
        if self._tokens is not None:
            self._check(self._tokens, credential, source, "credential")

    def _check(self, buckets: TokenBuckets, key: str, source: str, what: str) -> None:
        wait = buckets.take(key, self._clock())
        if wait > 0:
            msg = f"too many requests for this {what}: at most {buckets.limit.rate:g}/s"
            raise RateLimited(msg, source=source, retry_after_s=wait)


BYTES_PER_ALERT = 300
"""A small Alertmanager alert as JSON (labels, a summary, startsAt, generatorURL)."""
INFLATION = {"gzip": 8, "x-gzip": 8, "deflate": 8}
"""What a compressed alert body typically inflates by (JSON of repeated label names)."""
UNKNOWN_LENGTH_BYTES = 1 << 20
"""Held for a chunked body until it has arrived (Alertmanager sends Content-Length)."""


def estimate_alerts(nbytes: int, content_encoding: str = "") -> int:
    """How many alerts a body of `nbytes` likely holds, before decoding it."""
    coding = content_encoding.split(",")[0].strip().lower()
    return max(1, nbytes * INFLATION.get(coding, 1) // BYTES_PER_ALERT)


class InflightBudget:
    """Alerts and bytes held by requests taken in and not yet answered."""

    def __init__(self, max_alerts: int, max_bytes: int, retry_after_s: float = 1.0) -> None:
        self.max_alerts = max_alerts
        self.max_bytes = max_bytes
        self.retry_after_s = retry_after_s
        self.alerts = 0
        self.bytes = 0
        self.tickets = 0

    def _check(self, alerts: int, nbytes: int, others: int) -> None:
        # Alone, a request is taken whatever its size (the body limit bounds it), so
        # one larger than the budget is not refused for ever.
        if others == 0:
            return
        if self.alerts + alerts > self.max_alerts or self.bytes + nbytes > self.max_bytes:
            msg = (
                f"ingest queue full: {self.alerts} alerts and {self.bytes} bytes in flight "
                f"(ingest.queue_max_alerts {self.max_alerts}, queue_max_bytes {self.max_bytes})"
            )
            raise Overloaded(msg, retry_after_s=self.retry_after_s)

    def reserve(self, alerts: int, nbytes: int) -> Ticket:
        """Hold room for a request; raises Overloaded when it does not fit."""
        self._check(alerts, nbytes, self.tickets)
        return Ticket(self, alerts, nbytes)


class Ticket:
    """One request's hold on the budget; `release` (or leaving `with`) gives it back."""

    __slots__ = ("_budget", "alerts", "bytes", "held")

    def __init__(self, budget: InflightBudget, alerts: int, nbytes: int) -> None:
        self._budget, self.alerts, self.bytes, self.held = budget, alerts, nbytes, True
        budget.alerts += alerts
        budget.bytes += nbytes
        budget.tickets += 1

    def resize(self, alerts: int, nbytes: int) -> None:
        """Hold what the request really needs; raises Overloaded if it grew past the
        budget (the hold is then released)."""
        b = self._budget
        b.alerts -= self.alerts
        b.bytes -= self.bytes
        try:
            b._check(alerts, nbytes, b.tickets - 1)
        except Overloaded:
            self.alerts = self.bytes = 0
            self.release()
            raise
        self.alerts, self.bytes = alerts, nbytes
        b.alerts += alerts
        b.bytes += nbytes

    def release(self) -> None:
        if self.held:
            self.held = False
            b = self._budget
            b.alerts -= self.alerts
            b.bytes -= self.bytes
            b.tickets -= 1

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
