"""Request rate limits: a token bucket per client address and per credential.

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
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

import msgspec

from stormwatch.errors import PayloadError

__all__ = ["RateLimit", "RateLimitConfig", "RateLimited", "RateLimiter", "TokenBuckets"]


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
