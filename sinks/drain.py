"""`OutboxDrain`: one task per sink, from its outbox to the sink, until cancelled.

Each round it folds new events into their incidents' slots, delivers the slots that are
due, and waits for the next due time or for new events (`notify`). A slot delivers its
events in order; the drain skips an event whose sequence the sink already has (its
`RemoteRef`), so a replay or a redelivery after a crash never lands an older event
after a newer one. On a failure:

- permanent (a 4xx a retry cannot fix): the slot's events go to dead letters at once,
  with the vendor's error;
- retryable: the slot waits for its next attempt (capped exponential backoff, never
  before Retry-After, which also pauses the whole sink), until `retry.deadline` has
  passed since it started waiting; only then is it dead-lettered (`expired`);
- the circuit breaker counts retryable failures in a row and, once open, lets one probe
  through per `probe_interval`, so a down vendor costs a call per interval.

Metrics count every attempt by outcome, and report pending incidents and events, the
oldest pending age and the breaker's state per sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable

import msgspec
import structlog

from sinks.base import Sink
from sinks.outbox import Outbox, Pending
from sinks.remote import Refs, RemoteRef
from sinks.retry import MAX_RETRY_AFTER_S, BreakerPolicy, CircuitBreaker, RetryPolicy
from stormwatch.errors import SinkError, StoreUnavailable
from stormwatch.metrics import BREAKER_STATES, Metrics

__all__ = ["OutboxDrain"]

log = structlog.get_logger("stormwatch.sinks")
ABSORB_LIMIT = 1000


class OutboxDrain:
    def __init__(
        self,
        outbox: Outbox,
        sink: Sink,
        metrics: Metrics,
        refs: Refs,
        *,
        retry: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        batch: int = 50,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        owner: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.outbox = outbox
        self._owner = owner
        """A partitioned shard's drain runs only while its replica owns the shard."""
        self.sink = sink
        self._refs_alone = not getattr(sink, "keeps_refs", True)
        """The sink neither reads nor writes its refs (`Sink`): only this drain does."""
        self.name = sink.name
        self.refs = refs
        self.retry = retry or RetryPolicy()
        self.breaker = CircuitBreaker(breaker or BreakerPolicy())
        self._metrics = metrics
        self._batch = batch
        self._clock = clock
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._log = log.bind(sink=self.name)
        self._last_reason = ""
        self._pause_until = 0.0
        self.pending = 0
        """Incidents waiting, as of the last round."""
        self.queued = 0
        """Events committed for this sink since the last round took them in."""
        self._oldest: float | None = None
        metrics.outbox_oldest_age.labels(self.name).set_function(self._age)

    @property
    def backlog(self) -> int:
        """Incidents waiting, counting every event not yet taken in as one more: what
        App.submit compares with `outbox.capacity`."""
        return self.pending + self.queued

    def _age(self) -> float:
        return max(0.0, self._clock() - self._oldest) if self._oldest is not None else 0.0

    def notify(self, events: int = 0) -> None:
        """`events` were committed for this sink; wake the drain if it waits."""
        self.queued += events
        self._wake.set()

    async def run(self) -> None:
        """Rounds until cancelled (`step` refreshes the figures before it returns)."""
        while True:
            try:
                if self._owner is not None and not await self._owner():
                    self._log.warning("drain_stopped", reason="the shard has a new owner")
                    return
                wait = await self.step()
                if wait is not False:
                    await self._sleep_until(wait)
            except asyncio.CancelledError:
                raise
            except StoreUnavailable:
                # The outbox is in the state store: the pipeline logs the outage once;
                # the events wait there, and this round is tried again in a second.
                await self._sleep_until(self._clock() + 1.0)
            except Exception:
                self._log.exception("drain_failed")
                await self._sleep_until(self._clock() + 1.0)

    async def step(self) -> float | bool | None:
        """One round. Returns False to go again at once, else when to wake (None: only
        when notified)."""
        now = self._clock()
        taken, merged = await self.outbox.absorb(self.name, now, ABSORB_LIMIT)
        self.queued = max(0, self.queued - taken)
        if merged:
            self._metrics.outbox_coalesced.labels(self.name).inc(merged)
        blocked = self._blocked_until(now)
        if blocked is not None:
            await self.refresh()
            return blocked
        slots = await self.outbox.due(self.name, now, self._batch)
        if slots:
            await self._deliver_round(slots)
        await self.refresh()
        if slots or taken == ABSORB_LIMIT:
            return False
        return await self.outbox.next_due(self.name)

    async def refresh(self) -> None:
        n, events, oldest = await self.outbox.stats(self.name)
        self.pending, self._oldest = n, oldest
        m = self._metrics
        m.outbox_entries.labels(self.name).set(n)
        m.outbox_pending.labels(self.name).set(events)
        m.breaker_state.labels(self.name).set(BREAKER_STATES.index(self.breaker.state))

    async def _sleep_until(self, when: float | None) -> None:
        timeout = None if when is None else max(0.0, when - self._clock())
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
        # that lands as its timeout fires, and the drain would outlive its stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        self._wake.clear()

    def _blocked_until(self, now: float) -> float | None:
        if now < self._pause_until:
            return self._pause_until
        return self.breaker.blocked_until(now)

    async def _deliver_round(self, slots: list[Pending]) -> None:
        """Deliver the round's slots in order, until the sink is blocked. The slots
        delivered are dropped from the outbox in one write at the end: the sink's ref,
        marked after each delivery, is what keeps an event from going twice should the
        drain die before that write."""
        # A sink that neither reads nor writes its refs (file, webhook, kafka) has them
        # written by this drain alone: one read for the round, the first events'
        # write-ahead in one write, no ref read again after a delivery.
        todo: list[tuple[Pending, RemoteRef | None, int]] = []
        done: list[tuple[str, int]] = []
        marks: dict[str, RemoteRef] | None = None
        if self._refs_alone:
            # ...and its refs written for the round in one write, before the slots are
            # dropped: a drain that dies between a delivery and that write sends the
            # round's events again under the same Idempotency-Key (key:sequence), as
            # it does its in-flight event; a file sink skips them by its file's tail.
            marks = {}
            ahead: list[tuple[Pending, int]] = []
            refs = await self.refs.get_many([slot.key for slot in slots])
            for slot, ref in zip(slots, refs, strict=True):
                held = len(slot.events)
                events = [e for e in slot.events if e.sequence > ref.sequence]
                if not events:
                    done.append((slot.key, held))
                    continue
                if slot.inflight != events[0].sequence:
                    slot = msgspec.structs.replace(slot, events=events, inflight=events[0].sequence)
                    ahead.append((slot, held))
                    held = len(events)
                todo.append((slot, ref, held))
            await self.outbox.settle(self.name, ahead, [])
        else:
            todo = [(slot, None, len(slot.events)) for slot in slots]
        try:
            for slot, known, held in todo:
                left = await self._deliver(slot, known, held, marks)
                if left is not None:
                    done.append((slot.key, left))
                if self._blocked_until(self._clock()) is not None:
                    break
        finally:
            if marks:
                await self.refs.put_many(marks)
            await self.outbox.settle(self.name, [], done)

    async def _deliver(
        self,
        slot: Pending,
        ref: RemoteRef | None,
        held: int,
        marks: dict[str, RemoteRef] | None = None,
    ) -> int | None:
        """Deliver a slot's events in order. `ref`: the sink's ref, when only this drain
        writes it (else it is read here, and again after each delivery, since the sink
        may have written it). `held`: the events the stored slot holds (only this drain
        writes it). `marks`: where the refs go after each delivery, for the caller to
        write, instead of one write each. Returns what the stored slot holds once every
        event is delivered, None if it failed (the slot is saved for a retry, or
        dead-lettered)."""
        key, m = slot.key, self._metrics
        reread = ref is None
        known = ref if ref is not None else await self.refs.get(key)
        events = list(slot.events)
        while events:
            event = events[0]
            if event.sequence <= known.sequence:  # the sink has it (or something newer)
                events.pop(0)
                continue
            if slot.inflight != event.sequence:
                # Written ahead: a drain that dies mid-delivery leaves this event to be
                # sent again as it is (sinks/outbox.py, Pending.inflight).
                # A copy: the memory outbox keeps the slot, and `events` shrinks below.
                slot = msgspec.structs.replace(slot, events=list(events), inflight=event.sequence)
                await self.outbox.save(self.name, slot, held=held)
                held = len(slot.events)
            started = time.perf_counter()
            try:
                await self.sink.deliver(event)
            except SinkError as err:
                m.sink_seconds.labels(self.name).observe(time.perf_counter() - started)
                outcome = "retryable" if err.retryable else "permanent"
                m.sink_requests.labels(self.name, outcome).inc()
                # The sink answered: it does not have the event, which may fold again.
                inflight = 0 if err.status else slot.inflight
                await self._failed(
                    msgspec.structs.replace(slot, events=events, inflight=inflight), err
                )
                return None
            except Exception as err:
                self._log.exception("sink_delivery_crashed", incident_key=key)
                await self._dead(msgspec.structs.replace(slot, events=events), "error", repr(err))
                return None
            m.sink_seconds.labels(self.name).observe(time.perf_counter() - started)
            m.sink_requests.labels(self.name, "ok").inc()
            self.breaker.success()
            self._last_reason = ""
            if reread:  # the sink may have written the ref while delivering
                known = await self.refs.get(key)
            # A resolution is final for every sink, whether it keeps a state or not.
            done: dict[str, object] = {"sequence": event.sequence}
            if event.event == "resolved" and known.state != "resolved":
                done["state"] = "resolved"
            if marks is None:
                known = await self.refs.mark(key, known, **done)
            else:
                known = marks[key] = self.refs.marked(known, **done)
            events.pop(0)
        return held

    async def _failed(self, slot: Pending, err: SinkError) -> None:
        if not err.retryable:
            await self._dead(slot, "permanent", str(err))
            return
        now = self._clock()
        was = self.breaker.state
        if self.breaker.failure(now) and was == "closed":
            self._log.warning(
                "sink_breaker_opened",
                failures=self.breaker.failures,
                probe_in_s=float(self.breaker.policy.probe_interval),
            )
        attempts = slot.attempts + 1
        if self.retry.gives_up(attempts, now - slot.enqueued_at):
            await self._dead(slot, "expired", f"gave up after {attempts} attempts: {err}")
            return
        wait = self.retry.backoff(attempts, self._rng)
        if err.retry_after_s is not None:
            after = min(err.retry_after_s, MAX_RETRY_AFTER_S)
            wait = max(wait, after)
            self._pause_until = max(self._pause_until, now + after)
        reason = f"{err.status}" if err.status else type(err).__name__
        if reason != self._last_reason:
            # A failure is logged when it differs from the previous one (Alertmanager).
            self._log.warning(
                "sink_delivery_retrying",
                attempt=attempts,
                retry_after_s=round(wait, 3),
                reason=reason,
                error=str(err)[:300],
                incident_key=slot.key,
            )
            self._last_reason = reason
        await self.outbox.save(
            self.name,
            msgspec.structs.replace(
                slot, attempts=attempts, next_at=now + wait, last_error=str(err)[:500]
            ),
        )

    async def _dead(self, slot: Pending, reason: str, error: str) -> None:
        self._metrics.dead_letters.labels(self.name, reason).inc(len(slot.events))
        self._log.error(
            "dead_lettered",
            reason=reason,
            error=error,
            incident_key=slot.key,
            incident_events=[e.event for e in slot.events],
            sequence=slot.events[-1].sequence if slot.events else None,
        )
        await self.outbox.dead_letter(self.name, slot, reason, error)
