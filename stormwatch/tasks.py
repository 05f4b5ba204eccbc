"""`cancel_until_done`: stop background tasks for certain.

On Python 3.11 a cancellation can be swallowed (asyncio.wait_for, and timeouts inside
client libraries, lose one that lands as their own timeout fires): the task goes on and
a plain cancel-then-gather waits for it forever. Cancelling again until each task is
done makes stop and hand-over finish."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

__all__ = ["cancel_until_done"]


async def cancel_until_done(tasks: Iterable[asyncio.Task[Any]], every: float = 0.1) -> None:
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every)
