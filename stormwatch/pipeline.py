"""The bounded queue between ingest and the core, and the correlator loop behind it.

```
submit(alerts) ──► stamp ──► queue (bounded) ──► correlator: engine.process(batch, now)
   │ full: Overloaded -> 429                        │  tick(now) when the queue is empty
   │ (requests, and alerts: `max_queued_alerts`)    │
   │                                                └─► commit(events, delta), a task:
   └── returns once its batch is processed and committed      state + outbox, together
```

One task owns the engine: it takes queued requests (whole requests, up to
`max_batch_alerts`), reads the clock once per batch, and ticks, so `process` and `tick`
never interleave.

**Stamps.** Every request is stamped on arrival with one reading of a clock that never
goes back and never repeats (`Pipeline.stamp`), and its alerts carry that stamp as
`received_at`. Stamping and queueing happen with no await between them, so the queue is
in stamp order, and a request never shares its instant with another. The engine takes
records in stamp order and fires timers at their due times between them, so what it
decides depends on the stamps alone, not on how requests were merged into batches; an
archive of the stamped alerts replays to the same incidents (`ingest.archive`).

**Ticks.** `tick(now)` fires the timers due by `now`. It runs only when the queue is
empty at the moment `now` is read: a request stamped later has a later stamp than `now`,
so no timer ever fires ahead of a record that arrived before it was due.

**Commits.** A batch's delta is taken as soon as it is correlated, and its commit runs
as a task while the correlator takes the next batch (bench/README.md, "One round trip
a commit": the daemon waited on Redis an eighth of the time). The next batch's commit
starts only once that one is done, so commits are one at a time and in order, and each
request is answered once its own batch is stored: an acknowledged batch survives.

**Store outages.** A commit that fails (`StoreUnavailable`) keeps its delta and events
and answers its senders with the error; the next commit retries them merged with
whatever changed since (`delta.merge`), and nothing new is correlated before it
succeeds, so the engine never runs more than two batches ahead of what is stored (the
one whose commit failed and the one correlated meanwhile). While
the store is down `submit` refuses at once (503 over HTTP, a paused partition on Kafka)
and the correlator retries once per tick, so the outage ends by itself; it is logged
once when it starts (`store_unavailable`) and once when it ends (`store_recovered`,
with its duration). A store that no longer holds what we saved (`StoreReset`: Redis
restarted empty) gets the whole state with the next commit, which carries the refused
batch's events and answers its senders: the whole state is taken then, never while
the batch after it is correlated and not committed, so no incident is stored without
its events.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from itertools import chain
from typing import Protocol

import msgspec
import structlog

from correlate import Effects, Engine
from correlate.delta import StateDelta, merge
from stormwatch.errors import Overloaded, StoreReset, StoreUnavailable
from stormwatch.metrics import Metrics
from stormwatch.outage import StoreOutage
from stormwatch.wire import Alert, IncidentEvent

__all__ = ["Commit", "MonotonicClock", "Pipeline", "stamp_after"]

Commit = Callable[[list[IncidentEvent], StateDelta], Awaitable[None]]
"""Stores what a batch changed and queues its incident events for the sinks, together
(one transaction where the store allows); raises StoreUnavailable when it cannot."""

log = structlog.get_logger("stormwatch.pipeline")

_STEP = 1e-6
"""The least gap between two stamps (epoch floats resolve about 0.24 us today)."""


class Archive(Protocol):
    def write(self, alerts: list[Alert]) -> None: ...


def stamp_after(last: float, t: float) -> float:
    """`t`, or the least stamp after `last` if `t` is not later: stamps of one stream
    never go back and never repeat (the pipeline's requests, a partition's messages)."""
    return t if t > last else last + _STEP


class MonotonicClock:
    """Wall-clock seconds that never go back and never repeat: each reading is later
    than the one before (by at least `_STEP`), so two requests never share a stamp."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.last = 0.0

    def __call__(self) -> float:
        self.last = stamp_after(self.last, self._clock())
        return self.last


class _Request:
    __slots__ = ("alerts", "done")

    def __init__(self, alerts: list[Alert], done: asyncio.Future[None]) -> None:
        self.alerts = alerts
        self.done = done


def _answer(requests: list[_Request], err: BaseException | None) -> None:
    """Settle each request: done, or failed with `err` (a cancellation is a shutdown)."""
    if err is not None and not isinstance(err, Exception):
        err = Overloaded("shutting down", retry_after_s=5)
    for r in requests:
        if not r.done.done():
            if err is None:
                r.done.set_result(None)
            else:
                r.done.set_exception(err)


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Inbox:
    """The correlator's queue of requests, bounded, with one waiter (the correlator).

    Not an `asyncio.Queue` waited on under `asyncio.timeout`: that pair cost about a
    twentieth of the HTTP route at a million re-sends (a Timeout, a getter future and
    its bookkeeping for every batch, bench/README.md); here a wait is one future and
    one timer."""

    __slots__ = ("_items", "_waiter", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self._items: deque[_Request] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.maxsize = maxsize

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return len(self._items) >= self.maxsize

    def put_nowait(self, request: _Request) -> None:
        self._items.append(request)
        if self._waiter is not None:
            _settle(self._waiter)

    def get_nowait(self) -> _Request:
        return self._items.popleft()

    def wake(self) -> None:
        """End the correlator's wait now (a commit left work for the next step)."""
        if self._waiter is not None:
            _settle(self._waiter)

    async def wait(self, timeout: float) -> None:
        """Until a request is queued or `timeout` seconds have passed."""
        if self._items:
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _settle, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        commit: Commit,
        metrics: Metrics,
        *,
        capacity: int = 1024,
        max_queued_alerts: int = 20_000,
        max_batch_alerts: int = 1000,
        tick_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        archive: Archive | None = None,
        heartbeats: bool = True,
    ) -> None:
        self.engine = engine
        self._heartbeats = heartbeats
        """Whether the store keeps deltas' heartbeats (`Store.heartbeats`)."""
        self._commit = commit
        self._backlog: list[IncidentEvent] | None = None
        """Events of a batch whose commit failed: committed first, before anything new."""
        self._unsaved: StateDelta | None = None
        """The delta of that commit, merged into the next one."""
        self._inflight: asyncio.Task[None] | None = None
        """The last batch's commit, running while the next batch is correlated."""
        self._carried: list[tuple[list[_Request], list[Alert], float]] = []
        """Batches (requests, alerts, start) of a commit the store refused as a delta
        (StoreReset): answered by the next commit, which writes the whole state with
        their events."""
        self.outage = StoreOutage()
        """The current store outage, logged once each way."""
        self._metrics = metrics
        self._queue = _Inbox(capacity)
        self._max_batch = max_batch_alerts
        self._max_queued = max_queued_alerts
        self.queued_alerts = 0
        """Alerts of requests submitted and not yet answered (queued or being correlated)."""
        self._tick_interval = tick_interval
        self._wall = clock
        self.stamp = MonotonicClock(clock)
        """The one clock of the pipeline: request stamps and the `now` of each call."""
        self._archive = archive
        self._closed = False
        self.lock = asyncio.Lock()
        """Held while the engine runs; reload, actions and queries take it too."""
        metrics.queue_capacity.set(capacity)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def submit(self, alerts: list[Alert]) -> None:
        """Stamp and queue alerts; wait until they are correlated and their events queued.

        Raises:
            Overloaded: the queue is full or the daemon is shutting down.
        """
        if self._closed:
            raise Overloaded("shutting down", retry_after_s=5)
        if not alerts:
            return
        if self.outage.since is not None:
            raise StoreUnavailable(f"state store unavailable: {self.outage.error}")
        if self._queue.full():
            raise Overloaded(retry_after_s=1)
        if self.queued_alerts and self.queued_alerts + len(alerts) > self._max_queued:
            msg = f"ingest queue full: {self.queued_alerts} alerts (ingest.queue_max_alerts)"
            raise Overloaded(msg, retry_after_s=1)
        last = self.stamp.last
        if alerts[0].received_at != last or alerts[-1].received_at != last or last == 0.0:
            # Not stamped by `self.stamp` just now (a source with its own times, or another
            # reading came between): stamp it here, so the queue stays in stamp order.
            stamp = self.stamp()
            replace = msgspec.structs.replace
            alerts = [replace(a, received_at=stamp) for a in alerts]
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(alerts, done))
        self._metrics.queue_batches.set(self._queue.qsize())
        self.queued_alerts += len(alerts)
        try:
            await done
        finally:
            self.queued_alerts -= len(alerts)

    def close(self) -> None:
        """Refuse new submissions; queued ones are still processed by `drain`."""
        self._closed = True

    async def drain(self) -> None:
        """Process what is queued now (shutdown: stop accepting, then finish in-flight)."""
        while not self._queue.empty():
            await self._step(self._take(self._queue.get_nowait()))
        async with self.lock:
            await self._settle_inflight()
            if self._carried:
                await self._commit_events(self._backlog or [])

    def _take(self, first: _Request) -> list[_Request]:
        requests, n = [first], len(first.alerts)
        while n < self._max_batch and not self._queue.empty():
            r = self._queue.get_nowait()
            requests.append(r)
            n += len(r.alerts)
        return requests

    async def run(self) -> None:
        """The correlator loop; runs until cancelled."""
        wall = self._wall
        next_tick = wall() + self._tick_interval
        while True:
            requests: list[_Request] = []
            if not self._queue.empty():
                requests = self._take(self._queue.get_nowait())
            else:
                wait = next_tick - wall()
                if wait > 0:
                    await self._queue.wait(wait)
                    if not self._queue.empty():
                        requests = self._take(self._queue.get_nowait())
            await self._step(requests)
            if wall() >= next_tick:
                self.update_gauges()
                next_tick = wall() + self._tick_interval

    async def _step(self, requests: list[_Request]) -> None:
        self._metrics.queue_batches.set(self._queue.qsize())
        started = time.perf_counter()
        alerts: list[Alert] = []
        unsent: list[IncidentEvent] | None = None  # this batch's, while no commit holds them
        try:
            async with self.lock:
                # A failed commit is retried before anything new is correlated, so the
                # engine never runs more than two batches ahead of what is stored.
                if self._backlog is not None:
                    await self._settle_inflight()
                    await self._commit_events(self._backlog)
                events: list[IncidentEvent] = []
                alerts = (
                    requests[0].alerts
                    if len(requests) == 1
                    else list(chain.from_iterable(r.alerts for r in requests))
                )
                # Read `now` and look at the queue with no await between: a request not
                # yet queued is stamped after `now`.
                now = self.stamp()
                if alerts:
                    effects = self.engine.process(alerts, now)
                    self._observe(effects)
                    events.extend(effects.events)
                if self._queue.empty():
                    effects = self.engine.tick(now)
                    self._observe(effects)
                    events.extend(effects.events)
                # Correlated while the last batch's commit ran; committed after it, in
                # order, and before any sender hears 200: an acknowledged batch survives.
                unsent = events
                await self._settle_inflight()
                unsent = None
                if self._backlog is not None:
                    # That commit failed: this batch goes with it, now, as one.
                    await self._commit_events([*self._backlog, *events])
                else:
                    delta = self.engine.take_delta(self._heartbeats)
                    self._inflight = asyncio.create_task(
                        self._commit_batch(events, delta, requests, alerts, started)
                    )
                    return
        except asyncio.CancelledError:
            if unsent:
                # Stopped while waiting for the last commit: the changes stay in the
                # engine for the next one (`save`), and so must these events.
                self._backlog = [*(self._backlog or []), *unsent]
            _answer(requests, asyncio.CancelledError())
            raise
        except Exception as err:
            if not isinstance(err, StoreUnavailable):  # an outage is logged once, not per batch
                log.exception("batch_failed", alerts=sum(len(r.alerts) for r in requests))
            _answer(requests, err)
            return
        self._done(requests, alerts, started)

    async def _commit_batch(
        self,
        events: list[IncidentEvent],
        delta: StateDelta,
        requests: list[_Request],
        alerts: list[Alert],
        started: float,
    ) -> None:
        """One batch's commit, as a task: answers its requests once it is stored."""
        try:
            await self._commit(events, delta)
        except StoreReset as err:
            # Not written whole here: the next batch may be correlated already, and a
            # whole state taken now would hold its changes without its events. The next
            # commit (the next step's, or `drain`'s) writes the whole state with the
            # events of both, and answers these requests.
            log.warning("store_reset", error=str(err))
            self.engine.changes.full = True
            self._keep(delta, events)
            self._carried.append((requests, alerts, started))
            self._queue.wake()
            return
        except BaseException as err:
            self._keep(delta, events)
            if isinstance(err, StoreUnavailable):
                self.outage.failed(err)
            else:
                log.exception("batch_failed", alerts=len(alerts))
            _answer(requests, err)
            if not isinstance(err, Exception):
                raise
            return
        self.outage.ok()
        self._done(requests, alerts, started)

    def _keep(self, delta: StateDelta, events: list[IncidentEvent]) -> None:
        """Keep a commit that did not land for the next one, ahead of anything kept
        since (a step stopped while waiting for it keeps its events too)."""
        self._unsaved = delta if self._unsaved is None else merge(delta, self._unsaved)
        self._backlog = [*events, *(self._backlog or [])]

    def _done(self, requests: list[_Request], alerts: list[Alert], started: float) -> None:
        if self._archive is not None and alerts:
            self._archive.write(alerts)
        if requests:
            self._metrics.batch_seconds.observe(time.perf_counter() - started)
        _answer(requests, None)

    @contextlib.asynccontextmanager
    async def settled(self) -> AsyncIterator[None]:
        """The lock, with the last batch's commit done: the store holds what the engine
        holds (a query comparing the two, a test)."""
        async with self.lock:
            await self._settle_inflight()
            yield

    async def _settle_inflight(self) -> None:
        """Wait for the last batch's commit (it answers its own requests)."""
        task, self._inflight = self._inflight, None
        if task is not None:
            await asyncio.shield(task)

    def update_gauges(self) -> None:
        for rule, n in self.engine.open_by_rule().items():
            self._metrics.incidents_open.labels(rule).set(n)
        for rule, n in self.engine.windows_by_rule().items():
            self._metrics.windows_live.labels(rule).set(n)

    async def act(self, action: Callable[[Engine, float], Effects | None]) -> Effects | None:
        """Run an action on the engine (a silence, an acknowledgement) at the pipeline's
        clock, under the lock, and commit what it changed and emitted like a batch."""
        async with self.lock:
            await self._settle_inflight()
            if self._backlog is not None:
                await self._commit_events(self._backlog)
            effects = action(self.engine, self.stamp())
            if effects is not None:
                self._observe(effects)
            await self._commit_events(effects.events if effects is not None else [])
            return effects

    async def save(self) -> None:
        """Commit what is left (shutdown, after the last batch)."""
        async with self.lock:
            await self._settle_inflight()
            await self._commit_events(self._backlog or [])

    async def _commit_events(self, events: list[IncidentEvent]) -> None:
        delta = self.engine.take_delta(self._heartbeats)
        if self._unsaved is not None:
            delta = merge(self._unsaved, delta)
        try:
            try:
                await self._commit(events, delta)
            except StoreReset as err:
                # What the store held is gone: write the whole state from memory.
                log.warning("store_reset", error=str(err))
                self.engine.changes.full = True
                delta = merge(delta, self.engine.take_delta(self._heartbeats))
                await self._commit(events, delta)
        except BaseException as err:
            # Kept, so neither the state nor an incident event is lost: the next commit
            # retries both, merged with what changed since.
            self._unsaved, self._backlog = delta, events
            if isinstance(err, StoreUnavailable):
                self.outage.failed(err)
            carried, self._carried = self._carried, []
            for requests, _, _ in carried:
                _answer(requests, err)
            raise
        self._unsaved = self._backlog = None
        self.outage.ok()
        carried, self._carried = self._carried, []
        for batch in carried:
            self._done(*batch)

    def _observe(self, effects: Effects) -> None:
        m, c = self._metrics, effects.counts
        for source, n in c.duplicates_by_source.items():
            m.alerts_deduplicated.labels(source).inc(n)
        for rule, n in c.late_by_rule.items():
            m.alerts_late.labels(rule).inc(n)
        for rule, n in c.capped_by_rule.items():
            m.window_groups_capped.labels(rule).inc(n)
        for e in effects.events:
            inc = e.incident
            m.incidents.labels(inc.rule, e.event).inc()
            fields = {
                "incident_key": inc.key,
                "rule": inc.rule,
                "reason": e.reason,
                "severity": inc.severity,
                "alerts": inc.alert_count,
                "title": inc.title,
            }
            if e.event == "updated" and e.reason == "duplicates":
                log.debug("incident_updated", **fields)
            else:
                log.info(f"incident_{e.event}", **fields)
