"""`Delivery`: the sinks, their outboxes, drains and routes, built from the config.

What `App` commits through and asks about:
- `prepare(events)` routes a batch's incident events (stormwatch/routing.py) and gives
  the inbox appends the store writes in the batch's transaction (Redis), or queues them
  at once (memory); `committed` then wakes the drains and observes the incidents'
  time to detect, acknowledge and resolve;
- `check_capacity()` refuses new batches while an outbox is over `outbox.capacity`
  incidents (App.submit), so ingestion pushes back instead of dropping anything;
- `replay(sink)`, `health()`: dead-letter replay and what a status page shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import structlog

from correlate.store.fence import ShardFence
from ingest.ratelimit import LogLimiter
from rules import RuleSet
from sinks import (
    MemoryOutbox,
    MemoryRemoteStore,
    OutboxDrain,
    RedisOutbox,
    RedisRemoteStore,
    Refs,
    Sink,
    SinkContext,
    build_sink,
    policies,
)
from stormwatch.config import Config
from stormwatch.errors import Overloaded
from stormwatch.metrics import Metrics
from stormwatch.routing import Dispatcher, Router
from stormwatch.tasks import cancel_until_done
from stormwatch.wire import Incident, IncidentEvent

__all__ = ["Delivery", "impact_urgency"]

log = structlog.get_logger("stormwatch")
Watch = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]


def impact_urgency(rules: RuleSet, inc: Incident) -> tuple[int, int] | None:
    """The impact and urgency the incident's rule gave it: the first `classify` case
    with both set that yields the incident's severity, category and priority."""
    rule = next((r for r in rules.rules if r.name == inc.rule), None)
    if rule is None:
        return None
    for case in rule.classify:
        if case.impact is None or case.urgency is None:
            continue
        if (case.severity or rule.severity) != inc.severity:
            continue
        if (case.category or rule.incident.category) != inc.category:
            continue
        if case.impact + case.urgency - 1 == inc.priority:
            return int(case.impact), int(case.urgency)
    return None


class Delivery:
    def __init__(
        self,
        config: Config,
        metrics: Metrics,
        store: object,
        *,
        full_view: Callable[[str], Incident | None],
        rules: Callable[[], RuleSet],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self._clock = clock
        client = getattr(store, "client", None)
        cap = config.outbox.dead_letter_capacity
        self.outbox: MemoryOutbox | RedisOutbox
        self.remote: MemoryRemoteStore | RedisRemoteStore
        if client is not None:
            # A durable store keeps the outboxes and remote records beside the state.
            prefix = getattr(store, "prefix", "stormwatch")
            self.outbox = RedisOutbox(client, prefix=prefix, dead_letter_capacity=cap)
            self.remote = RedisRemoteStore(client, prefix=prefix)
        else:
            self.outbox = MemoryOutbox(dead_letter_capacity=cap)
            self.remote = MemoryRemoteStore()
        base = config.external_url.rstrip("/")
        incident_url = f"{base}/incidents/{{key}}" if base else ""
        self.types: dict[str, str] = {}
        self.sinks: dict[str, Sink] = {}
        self.drains: dict[str, OutboxDrain] = {}
        for sc in config.sinks:
            metrics.init_sink(sc.name)
            ctx = SinkContext(
                refs=Refs(self.remote, sc.name),
                incident_url=incident_url,
                itil=lambda inc: impact_urgency(rules(), inc),
            )
            sink = self.sinks[sc.name] = build_sink(sc, ctx)
            retry, breaker = policies(sc)
            self.types[sc.name] = type(sc).__struct_config__.tag  # type: ignore[assignment]
            self.drains[sc.name] = OutboxDrain(
                self.outbox, sink, metrics, ctx.refs, retry=retry, breaker=breaker, clock=clock
            )
        self.dispatcher = Dispatcher(Router(config.route, list(self.sinks)), full_view)
        self._full_log = LogLimiter()
        self._tasks: list[asyncio.Task[None]] = []

    # -- the commit path ---------------------------------------------------------------

    def check_capacity(self) -> None:
        """Raise Overloaded while a sink has more incidents waiting than it may."""
        cap = self.config.outbox.capacity
        for name, drain in self.drains.items():
            if drain.backlog >= cap:
                allowed, suppressed = self._full_log.allow(name)
                if allowed:
                    log.warning(
                        "outbox_full", sink=name, pending=drain.backlog, suppressed=suppressed
                    )
                msg = f"outbox of sink {name!r} is full ({drain.backlog} incidents waiting, capacity {cap})"
                raise Overloaded(msg, retry_after_s=self.config.outbox.retry_after)

    async def prepare(
        self, events: list[IncidentEvent]
    ) -> tuple[dict[str, list[IncidentEvent]], dict[str, list[bytes]]]:
        """Route events; the inbox appends for a durable store's transaction (memory:
        queued now, before the state, as the embedded mode always did)."""
        routed = self.dispatcher.route(events, await self._holding(events))
        appends: dict[str, list[bytes]] = {}
        for name, for_sink in routed.items():
            if for_sink:
                await self.outbox.stage(name, for_sink, appends)
        return routed, appends

    async def _holding(self, events: list[IncidentEvent]) -> dict[str, set[str]]:
        """For resolutions and acknowledgements: which sinks' records say they have the
        incident (a restart forgets who follows what; the records do not)."""
        out: dict[str, set[str]] = {}
        for e in events:
            if not self.dispatcher.closing(e):
                continue
            key = e.incident.key
            for name, drain in self.drains.items():
                ref = await drain.refs.get(key)
                if ref.sequence > 0 and ref.state != "resolved":
                    out.setdefault(key, set()).add(name)
        return out

    def committed(
        self, events: list[IncidentEvent], routed: dict[str, list[IncidentEvent]]
    ) -> None:
        for name, for_sink in routed.items():
            if for_sink:
                self.drains[name].notify(len(for_sink))
        self._observe(events)

    def _observe(self, events: list[IncidentEvent]) -> None:
        m = self.metrics
        for e in events:
            inc = e.incident
            detected = inc.detected_at or inc.opened_at
            if e.event == "opened":
                m.time_to_detect.labels(inc.rule, inc.severity).observe(
                    max(0.0, detected - inc.first_seen)
                )
            elif e.event == "resolved" and inc.resolved_at is not None:
                m.time_to_resolve.labels(inc.severity).observe(
                    max(0.0, inc.resolved_at - inc.first_seen)
                )
            if "acknowledged" in e.reason.split(",") and inc.acknowledged_at is not None:
                m.time_to_acknowledge.labels(inc.severity).observe(
                    max(0.0, inc.acknowledged_at - detected)
                )

    def for_shard(
        self,
        shard: str,
        full_view: Callable[[str], Incident | None],
        fence: ShardFence | None = None,
    ) -> Delivery:
        """The same sinks with one shard's own outbox, drains and routing memory (a
        partitioned correlator's; stormwatch/partitions.py), its writes and drains
        fenced by the shard's owner. Durable stores only."""
        if not isinstance(self.outbox, RedisOutbox):
            msg = "a shard's outbox needs the Redis state store"
            raise TypeError(msg)
        out = copy.copy(self)
        out.outbox = RedisOutbox(
            self.outbox.client,
            prefix=self.outbox.prefix,
            dead_letter_capacity=self.outbox.dead_letter_capacity,
            shard=shard,
        )
        out.outbox.fence = fence
        out.drains = {
            name: OutboxDrain(
                out.outbox,
                d.sink,
                self.metrics,
                d.refs,
                retry=d.retry,
                breaker=d.breaker.policy,
                clock=self._clock,
                owner=fence.owned if fence is not None else None,
            )
            for name, d in self.drains.items()
        }
        out.dispatcher = Dispatcher(self.dispatcher.router, full_view)
        out._tasks = []
        return out

    async def stop_drains(self) -> None:
        """Cancel this delivery's drains (a shard handed over: its new owner drains it)."""
        await cancel_until_done(self._tasks)
        self._tasks = []

    # -- operations --------------------------------------------------------------------

    async def replay(self, sink: str) -> int:
        """Fold a sink's dead letters back into its outbox: each incident's latest
        state, once (the drain skips what the sink already has)."""
        n = await self.outbox.replay(sink, time.time())
        self.drains[sink].notify()
        log.info("dead_letters_replayed", sink=sink, replayed=n)
        return n

    def drain_alive(self, sink: str) -> bool:
        task = next((t for t in self._tasks if t.get_name() == f"drain:{sink}"), None)
        return task is not None and not task.done()

    async def mark_acknowledged(self, key: str, source: str) -> None:
        """Record that sink `source` (its webhook) acknowledged incident `key`, so the
        acknowledgement's event is not sent back to it; nothing for `api` or another
        non-sink source."""
        drain = self.drains.get(source)
        if drain is not None:
            await drain.refs.mark(key, await drain.refs.get(key), acknowledged=True)

    async def health(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for name, drain in self.drains.items():
            pending, events, oldest = await self.outbox.stats(name)
            out.append(
                {
                    "sink": name,
                    "type": self.types[name],
                    "pending_incidents": pending,
                    "pending_events": events,
                    "oldest_pending_age_s": round(time.time() - oldest, 3) if oldest else 0.0,
                    "breaker": drain.breaker.state,
                    "dead_letters": len(await self.outbox.dead_letters(name)),
                }
            )
        return out

    async def deliveries(self, key: str) -> list[dict[str, object]]:
        """Where one incident stands at each sink: its remote object, the last event the
        sink has, and what still waits for it (with the last error)."""
        out: list[dict[str, object]] = []
        for name, drain in self.drains.items():
            ref = await drain.refs.get(key)
            slot = await self.outbox.slot(name, key)
            out.append(
                {
                    "sink": name,
                    "type": self.types[name],
                    "remote_id": ref.remote_id,
                    "state": ref.state,
                    "sequence": ref.sequence,
                    "acknowledged": ref.acknowledged,
                    "waiting": [e.event for e in slot.events] if slot else [],
                    "attempts": slot.attempts if slot else 0,
                    "last_error": slot.last_error if slot else "",
                }
            )
        return out

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, open_incidents: Iterable[Incident], watch: Watch) -> None:
        self.dispatcher.seed(open_incidents)
        for name, drain in self.drains.items():
            self._tasks.append(watch(drain.run(), f"drain:{name}"))

    async def settle(self, grace: float) -> None:
        """Let the drains deliver what waits, within `grace` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                for name, drain in self.drains.items():
                    task = next((t for t in self._tasks if t.get_name() == f"drain:{name}"), None)
                    # A sink whose breaker is open will not take them now: its events
                    # stay in the outbox (in Redis, for the next start).
                    while task is not None and not task.done() and drain.breaker.state != "open":
                        pending, events, _ = await self.outbox.stats(name)
                        if not pending and not events:
                            break
                        await asyncio.sleep(0.05)

    async def close(self) -> dict[str, int]:
        """Close every sink; returns what each still has waiting."""
        for sink in self.sinks.values():
            await sink.close()
        return {name: (await self.outbox.stats(name))[0] for name in self.sinks}


_BREAKER_ORDER = {"closed": 0, "half_open": 1, "open": 2}


def merge_health(per_outbox: list[list[dict[str, object]]]) -> list[dict[str, object]]:
    """One row per sink from several outboxes' `Delivery.health` (a correlator's shards):
    counts summed, the oldest wait and the worst breaker kept."""
    merged: dict[str, dict[str, object]] = {}
    for rows in per_outbox:
        for row in rows:
            into = merged.get(str(row["sink"]))
            if into is None:
                merged[str(row["sink"])] = dict(row)
                continue
            for field in ("pending_incidents", "pending_events", "dead_letters"):
                into[field] = int(into[field]) + int(row[field])  # type: ignore[call-overload]
            into["oldest_pending_age_s"] = max(
                float(into["oldest_pending_age_s"]),  # type: ignore[arg-type]
                float(row["oldest_pending_age_s"]),  # type: ignore[arg-type]
            )
            if _BREAKER_ORDER.get(str(row["breaker"]), 0) > _BREAKER_ORDER.get(
                str(into["breaker"]), 0
            ):
                into["breaker"] = row["breaker"]
    return list(merged.values())
