"""`translated`: a Redis-backed outbox or record store raises `StoreUnavailable`, never
redis-py's own errors, so every caller (the commit path, the drains, the API) handles
an outage in one way: 503 to senders, a paused Kafka partition, a drain that waits."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from redis.exceptions import RedisError

from stormwatch.errors import StoreUnavailable

__all__ = ["translated"]

P = ParamSpec("P")
R = TypeVar("R")


def translated(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Wrap an async method: RedisError and OSError become StoreUnavailable."""

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except (RedisError, OSError) as err:
            msg = f"Redis unavailable ({fn.__qualname__}): {err}"
            raise StoreUnavailable(msg) from err

    return call
