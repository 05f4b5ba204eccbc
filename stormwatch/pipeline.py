"""The bounded queue between ingest and the core, and the correlator loop behind it.

```
submit(alerts) ──► queue (bounded) ──► correlator: engine.process(batch, now)
   │ full: Overloaded -> 429                        └─► commit(events, engine.take_delta())
   │                                                     state + outbox entries, together
   └── returns once its batch is processed and committed
```

One task owns the engine: it takes queued requests (several at once, up to
`max_batch_alerts`), reads the clock once per batch, and runs `tick` on its timer,
so `process` and `tick` never interleave.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

from correlate import Effects, Engine
from correlate.delta import StateDelta
from stormwatch.errors import Overloaded
from stormwatch.metrics import Metrics
from stormwatch.wire import Alert, IncidentEvent

__all__ = ["Commit", "Pipeline"]

Commit = Callable[[list[IncidentEvent], StateDelta], Awaitable[None]]
"""Stores what a batch changed and queues its incident events for the sinks, together
(one transaction where the store allows); raises StoreUnavailable when it cannot."""

log = structlog.get_logger("stormwatch.pipeline")


class _Request:
    __slots__ = ("alerts", "done")

    def __init__(self, alerts: list[Alert], done: asyncio.Future[None]) -> None:
        self.alerts = alerts
        self.done = done


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        commit: Commit,
        metrics: Metrics,
        *,
        capacity: int = 1024,
        max_batch_alerts: int = 1000,
        tick_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self._commit = commit
        self._backlog: list[IncidentEvent] | None = None
        """Events of a batch whose commit failed: committed first, before anything new."""
        self._metrics = metrics
        self._queue: asyncio.Queue[_Request] = asyncio.Queue(maxsize=capacity)
        self._max_batch = max_batch_alerts
        self._tick_interval = tick_interval
        self._clock = clock
        self._closed = False
        self.lock = asyncio.Lock()
        """Held while the engine runs; reload and queries take it too."""
        metrics.queue_capacity.set(capacity)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def submit(self, alerts: list[Alert]) -> None:
        """Queue alerts and wait until they are correlated and their events queued.

        Raises:
            Overloaded: the queue is full or the daemon is shutting down.
        """
        if self._closed:
            raise Overloaded("shutting down", retry_after_s=5)
        if not alerts:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Request(alerts, done))
        except asyncio.QueueFull:
            raise Overloaded(retry_after_s=1) from None
        self._metrics.queue_batches.set(self._queue.qsize())
        await done

    def close(self) -> None:
        """Refuse new submissions; queued ones are still processed by `drain`."""
        self._closed = True

    async def drain(self) -> None:
        """Process what is queued now (shutdown: stop accepting, then finish in-flight)."""
        while not self._queue.empty():
            await self._step(self._take(self._queue.get_nowait()), tick=False)

    def _take(self, first: _Request) -> list[_Request]:
        requests, n = [first], len(first.alerts)
        while n < self._max_batch and not self._queue.empty():
            r = self._queue.get_nowait()
            requests.append(r)
            n += len(r.alerts)
        return requests

    async def run(self) -> None:
        """The correlator loop; runs until cancelled."""
        next_tick = self._clock() + self._tick_interval
        while True:
            wait = next_tick - self._clock()
            requests: list[_Request] = []
            try:
                if wait > 0:
                    first = await asyncio.wait_for(self._queue.get(), timeout=wait)
                    requests = self._take(first)
                elif not self._queue.empty():
                    requests = self._take(self._queue.get_nowait())
            except TimeoutError:
                pass
            due = self._clock() >= next_tick
            if due:
                next_tick = self._clock() + self._tick_interval
            await self._step(requests, tick=due)

    async def _step(self, requests: list[_Request], *, tick: bool) -> None:
        self._metrics.queue_batches.set(self._queue.qsize())
        try:
            async with self.lock:
                started = time.perf_counter()
                # A failed commit is retried before anything new is correlated, so the
                # engine never runs more than one batch ahead of what is stored.
                if self._backlog is not None:
                    await self._commit_events(self._backlog)
                now = self._clock()
                events: list[IncidentEvent] = []
                if requests:
                    alerts = [a for r in requests for a in r.alerts]
                    effects = self.engine.process(alerts, now)
                    self._observe(effects)
                    events.extend(effects.events)
                if tick:
                    effects = self.engine.tick(now)
                    self._observe(effects)
                    events.extend(effects.events)
                    for rule, n in self.engine.open_by_rule().items():
                        self._metrics.incidents_open.labels(rule).set(n)
                    for rule, n in self.engine.windows_by_rule().items():
                        self._metrics.windows_live.labels(rule).set(n)
                # Committed before any sender hears 200: an acknowledged batch survives.
                await self._commit_events(events)
                if requests:
                    self._metrics.batch_seconds.observe(time.perf_counter() - started)
        except asyncio.CancelledError:
            for r in requests:
                if not r.done.done():
                    r.done.set_exception(Overloaded("shutting down", retry_after_s=5))
            raise
        except Exception as err:
            log.exception("batch_failed", alerts=sum(len(r.alerts) for r in requests))
            for r in requests:
                if not r.done.done():
                    r.done.set_exception(err)
            return
        for r in requests:
            if not r.done.done():
                r.done.set_result(None)

    async def save(self) -> None:
        """Commit what is left (shutdown, after the last batch)."""
        async with self.lock:
            await self._commit_events(self._backlog or [])

    async def _commit_events(self, events: list[IncidentEvent]) -> None:
        delta = self.engine.take_delta()
        try:
            await self._commit(events, delta)
        except BaseException:
            # The change marks went with the delta: rewrite everything next time, and
            # keep the events, so neither the state nor an incident event is lost.
            self.engine.changes.full = True
            self._backlog = events
            raise
        self._backlog = None

    def _observe(self, effects: Effects) -> None:
        m, c = self._metrics, effects.counts
        for source, n in c.duplicates_by_source.items():
            m.alerts_deduplicated.labels(source).inc(n)
        for rule, n in c.late_by_rule.items():
            m.alerts_late.labels(rule).inc(n)
        for rule, n in c.capped_by_rule.items():
            m.window_groups_capped.labels(rule).inc(n)
        for e in effects.events:
            m.incidents.labels(e.incident.rule, e.event).inc()
            fields = {
                "incident_key": e.incident.key,
                "rule": e.incident.rule,
                "reason": e.reason,
                "severity": e.incident.severity,
                "alerts": e.incident.alert_count,
                "title": e.incident.title,
            }
            if e.event == "updated" and e.reason == "duplicates":
                log.debug("incident_updated", **fields)
            else:
                log.info(f"incident_{e.event}", **fields)
