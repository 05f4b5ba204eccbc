"""The correlator role: one engine and one state shard per assigned Kafka partition.

```
assigned(p): claim shard ─► load state + offset ─► seek(p, offset) ─► start p's drains
batch of p:  stamp + decode ─► engine.process / tick ─► commit(delta, outbox, offset) [fenced]
             ─► Kafka offset commit (a hint) ─► wake p's drains
revoked(p):  (the batch in hand is committed) ─► stop p's drains ─► drop p
```

**Time comes from the partition.** Each message's time is its Kafka timestamp, made
strictly increasing along the partition (a message not later than the one before gets
the previous time + 1 us), and every alert of the message is stamped with it. An empty
message is a receiver's tick: `engine.tick(its time)`, so timers fire in an idle
partition too; a JSON object is an operator's action (a silence, an acknowledgement:
stormwatch/control.py), applied at its time. The engine's clock is the last stamp, and it is stored with the shard,
so the stamps of a partition are a function of its messages alone: one process reading
the topic from the start, or any number of replicas handing partitions around, give
the same incidents (the engine is batch-invariant, tests/property).

**Exactly once into the state.** A shard's commit writes its state delta, its outbox
entries and the partition's next offset in one atomic step, fenced by the owner token of
this assignment (correlate/store/fence.py). On assignment the new owner claims, loads
and seeks to the stored offset: a replica killed mid-batch loses nothing, and the new
owner re-reads exactly the messages whose effects were never committed. Kafka's own
committed offset is only a hint (the start when Redis has no shard yet).

**Outbox per shard.** Each shard's events go to its own outbox (sinks/keys.py); its
drains run only on its owner, from after the load until the revocation, so a dead
replica's undelivered events are delivered by the partition's next owner. Sinks get
each event once per (incident key, sequence): a redelivery after a kill carries the
same Idempotency-Key, and the drain skips what a sink's record says it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata
from redis.exceptions import RedisError

from correlate import Effects, Engine, EngineConfig
from correlate.store.fence import Fenced, ShardFence
from correlate.store.keys import shard_id
from correlate.store.redis import RedisStore
from rules import MatcherError, RuleSet
from stormwatch.control import AddSilence, ExpireSilence, decode_control, is_control
from stormwatch.delivery import Delivery
from stormwatch.errors import Overloaded, StoreUnavailable
from stormwatch.metrics import Metrics
from stormwatch.outage import StoreOutage
from stormwatch.pipeline import stamp_after
from stormwatch.roles import PartitionConfig
from stormwatch.wire import Alert, IncidentEvent

__all__ = ["PartitionClock", "PartitionedCorrelator", "Shard"]

log = structlog.get_logger("stormwatch.partitions")
Watch = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]

_decode_alerts = msgspec.json.Decoder(list[Alert])
_RETRY_S = 1.0


class PartitionClock:
    """A partition's time: message timestamps, made strictly increasing."""

    def __init__(self, last: float = 0.0) -> None:
        self.last = last

    def __call__(self, timestamp_ms: int) -> float:
        self.last = stamp_after(self.last, timestamp_ms / 1000)
        return self.last


class Shard:
    """One partition's engine, clock, fence and outboxes."""

    def __init__(
        self,
        tp: TopicPartition,
        engine: Engine,
        fence: ShardFence,
        delivery: Delivery,
        *,
        next_offset: int | None,
        max_batch_alerts: int,
    ) -> None:
        self.tp = tp
        self.id = fence.shard
        self.engine = engine
        self.fence = fence
        self.delivery = delivery
        self.clock = PartitionClock(engine.state.clock)
        self.next_offset = next_offset
        self._max_batch = max_batch_alerts
        self.rejected = 0

    async def take(self, messages: list[ConsumerRecord[bytes, bytes]]) -> list[IncidentEvent]:
        """Correlate a run of the partition's messages (in offset order), yielding to the
        loop between engine calls so heartbeats go out whatever the run's size."""
        events: list[IncidentEvent] = []
        pending: list[Alert] = []
        engine = self.engine
        for msg in messages:
            value = msg.value
            if not value or is_control(value):  # a tick, or an operator's action
                if pending:
                    events.extend(self._process(pending))
                    pending = []
                if value:
                    events.extend(await self._act(msg, value))
                else:
                    events.extend(engine.tick(self.clock(msg.timestamp)).events)
                continue
            try:
                alerts = _decode_alerts.decode(value)
            except (msgspec.DecodeError, msgspec.ValidationError) as err:
                # Not a receiver's message: skipped without moving the partition's clock,
                # so the stamps stay a function of the messages that count.
                self.rejected += 1
                log.warning("message_rejected", shard=self.id, offset=msg.offset, error=str(err))
                continue
            if not alerts:
                continue
            t = self.clock(msg.timestamp)
            if alerts[0].received_at != t or alerts[-1].received_at != t:
                replace = msgspec.structs.replace
                alerts = [replace(a, received_at=t) for a in alerts]
            pending.extend(alerts)
            if len(pending) >= self._max_batch:
                events.extend(self._process(pending))
                pending = []
                await asyncio.sleep(0)
        if pending:
            events.extend(self._process(pending))
        if messages:
            self.next_offset = messages[-1].offset + 1
        return events

    async def _act(self, msg: ConsumerRecord[bytes, bytes], value: bytes) -> list[IncidentEvent]:
        """An operator's action (stormwatch/control.py), at its place in the partition."""
        try:
            action = decode_control(value)
        except (msgspec.DecodeError, msgspec.ValidationError) as err:
            self.rejected += 1
            log.warning("message_rejected", shard=self.id, offset=msg.offset, error=str(err))
            return []
        t = self.clock(msg.timestamp)
        engine = self.engine
        effects: Effects | None
        if isinstance(action, AddSilence):
            try:
                effects = engine.add_silence(action.silence, t)
            except MatcherError as err:  # checked before it was produced; an old producer?
                log.warning("message_rejected", shard=self.id, offset=msg.offset, error=str(err))
                return []
        elif isinstance(action, ExpireSilence):
            effects = engine.expire_silence(action.id, t)
        else:
            inc = engine.incident_state(action.key)
            if inc is None or inc.status != "open" or inc.acknowledged_at is not None:
                return []  # another partition's incident, or acknowledged already
            # Not in the shard's commit: if it fails, the commit will too and the
            # action is re-read.
            with contextlib.suppress(RedisError, OSError, StoreUnavailable):
                await self.delivery.mark_acknowledged(action.key, action.source)
            effects = engine.acknowledge(action.key, action.by, t)
        return effects.events if effects is not None else []

    def _process(self, alerts: list[Alert]) -> list[IncidentEvent]:
        return self.engine.process(alerts, alerts[-1].received_at).events

    async def commit(self, store: RedisStore, events: list[IncidentEvent]) -> None:
        """State, outbox entries and next offset in one fenced transaction."""
        routed, appends = await self.delivery.prepare(events)
        self.fence.next_offset = self.next_offset
        await store.commit(self.id, self.engine.take_delta(), appends, fence=self.fence)
        self.delivery.committed(events, routed)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: PartitionedCorrelator, consumer: AIOKafkaConsumer) -> None:
        self._owner = owner
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._owner.revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._owner.assigned(self._consumer, assigned)


class PartitionedCorrelator:
    """A consumer group member that owns one shard per assigned partition."""

    def __init__(
        self,
        config: PartitionConfig,
        *,
        store: RedisStore,
        rules: Callable[[], RuleSet],
        engine_config: EngineConfig,
        delivery: Delivery,
        metrics: Metrics,
        watch: Watch,
        max_batch_alerts: int = 1000,
    ) -> None:
        self.config = config
        self._store = store
        self._rules = rules
        self._engine_config = engine_config
        self._delivery = delivery
        self._metrics = metrics
        self._watch = watch
        self._max_batch = max_batch_alerts
        self.shards: dict[TopicPartition, Shard] = {}
        self._parked: dict[TopicPartition, Shard] = {}
        self._retry: dict[TopicPartition, float] = {}
        """Partitions paused until a time: to reopen (store down, claim refused) or to
        take again (an outbox full)."""
        self._lock = asyncio.Lock()
        """Held while a batch is correlated and committed; a revocation waits for it."""
        self.consuming = False
        """True once the group has assigned this member and it is fetching."""
        self.processed = 0
        """Messages committed to the shards (for tests and logs)."""
        self.outage = StoreOutage()
        """Commits and loads failing on the store: logged once each way, for /readyz."""
        metrics.init_source("kafka")

    # -- the group's callbacks ----------------------------------------------------------

    async def assigned(self, consumer: AIOKafkaConsumer, tps: set[TopicPartition]) -> None:
        generation = int(getattr(consumer._coordinator, "generation", 0) or 0)
        async with self._lock:
            parked, self._parked = self._parked, {}
            for tp in sorted(tps):
                await self._open(consumer, tp, generation, parked.get(tp))
        self.consuming = True
        log.info(
            "partitions_assigned",
            partitions=sorted(tp.partition for tp in tps),
            generation=generation,
        )

    async def revoked(self, tps: set[TopicPartition]) -> None:
        async with self._lock:
            for tp in tps:
                shard = await self._close(tp)
                if shard is not None and tp not in self._retry:
                    # Kept while the group rebalances: if the partition comes back and
                    # nobody committed it meanwhile, its engine is still the shard.
                    self._parked[tp] = shard
                self._retry.pop(tp, None)
        if tps:
            log.info("partitions_revoked", partitions=sorted(tp.partition for tp in tps))

    async def _open(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        generation: int,
        parked: Shard | None = None,
    ) -> None:
        """Claim, load (unless the parked engine is still the shard), seek and start the
        drains; on a store error or a refused claim, pause the partition and retry."""
        sid = shard_id(tp.topic, tp.partition)
        fence = ShardFence(
            self._store.client,
            self._store.prefix,
            sid,
            group=self.config.group_id,
            generation=generation,
        )
        try:
            await fence.claim()
            offset = await fence.stored_offset()
            # Every commit stores its next offset: the same offset means no one else
            # committed the shard since this replica did.
            kept = parked is not None and parked.next_offset == offset
            state = None if kept else await self._store.load(sid)
        except (Fenced, StoreUnavailable, RedisError, OSError) as err:
            if isinstance(err, Fenced):
                log.warning("shard_open_failed", shard=sid, error=str(err), retry_in_s=_RETRY_S)
            else:
                self.outage.failed(err)
            self._hold(consumer, tp, None, _RETRY_S)
            return
        self.outage.ok()
        if parked is not None and kept:
            engine = parked.engine
        elif state is not None:
            engine = Engine(self._rules(), self._engine_config, state)
        else:
            engine = Engine(self._rules(), self._engine_config)
        delivery = self._delivery.for_shard(sid, engine.incident, fence)
        delivery.start(engine.open_incidents(), self._watch)
        self.shards[tp] = Shard(
            tp, engine, fence, delivery, next_offset=offset, max_batch_alerts=self._max_batch
        )
        if offset is not None:
            consumer.seek(tp, offset)
        consumer.resume(tp)
        self._retry.pop(tp, None)
        log.info(
            "shard_kept" if kept else "shard_loaded",
            shard=sid,
            offset=offset,
            incidents=len(engine.state.incidents),
            alerts=len(engine.state.tracked),
        )

    async def _close(self, tp: TopicPartition) -> Shard | None:
        shard = self.shards.pop(tp, None)
        if shard is not None:
            await shard.delivery.stop_drains()
        return shard

    # -- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until cancelled; a lost broker is retried, never fatal."""
        while True:
            try:
                await self._consume()
            except KafkaError as err:
                self.consuming = False
                log.error("correlator_consumer_failed", error=str(err), retry_in_s=5)
                await asyncio.sleep(5)

    def _consumer(self) -> AIOKafkaConsumer:
        cfg = self.config
        return AIOKafkaConsumer(
            bootstrap_servers=cfg.bootstrap,
            group_id=cfg.group_id,
            group_instance_id=cfg.instance_id or None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(cfg.session_timeout * 1000),
            heartbeat_interval_ms=int(cfg.heartbeat_interval * 1000),
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )

    async def _consume(self) -> None:
        consumer = self._consumer()
        consumer.subscribe([self.config.topic], listener=_Listener(self, consumer))
        await consumer.start()
        log.info("correlator_started", topic=self.config.topic, group_id=self.config.group_id)
        try:
            while True:
                await self._reopen_due(consumer)
                batches = await consumer.getmany(
                    timeout_ms=200, max_records=self.config.max_records
                )
                if batches:
                    hints = await self._take(consumer, batches)
                    if hints:
                        # A hint (lag monitoring; where a partition with no shard yet
                        # starts), so it may fail. Outside the lock: a commit may wait
                        # for a rebalance, whose revocation callback takes the lock.
                        with contextlib.suppress(KafkaError, TimeoutError):
                            async with asyncio.timeout(5):
                                await consumer.commit(hints)
        finally:
            self.consuming = False
            async with self._lock:
                for tp in list(self.shards):
                    await self._close(tp)
            await consumer.stop()  # leaves the group: the others take over at once

    async def _take(
        self,
        consumer: AIOKafkaConsumer,
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        hints: dict[TopicPartition, OffsetAndMetadata] = {}
        async with self._lock:
            for tp, messages in batches.items():
                shard = self.shards.get(tp)
                if shard is None or tp in self._retry:
                    continue  # revoked, or paused, while this fetch was on its way
                if shard.next_offset is not None:
                    messages = [m for m in messages if m.offset >= shard.next_offset]
                if not messages:
                    continue
                first = messages[0].offset
                try:
                    shard.delivery.check_capacity()
                except Overloaded:
                    # No sender to tell Retry-After: look again soon, the drain may
                    # have made room by then.
                    self._hold(consumer, tp, first, _RETRY_S)
                    continue
                started = time.perf_counter()
                events = await shard.take(messages)
                try:
                    await shard.commit(self._store, events)
                except Fenced as err:
                    log.error("shard_fenced", shard=shard.id, error=str(err))
                    await self._close(tp)
                    consumer.pause(tp)
                    continue
                except (StoreUnavailable, RedisError, OSError) as err:
                    # The engine ran ahead of what is stored: drop it, and reload the
                    # shard from its last commit once the store answers.
                    self.outage.failed(err)
                    log.debug("shard_commit_failed", shard=shard.id, error=str(err))
                    await self._close(tp)
                    self._hold(consumer, tp, None, _RETRY_S)
                    continue
                self.outage.ok()
                self.processed += len(messages)
                self._metrics.batch_seconds.observe(time.perf_counter() - started)
                if shard.next_offset is not None:
                    hints[tp] = OffsetAndMetadata(shard.next_offset, "")
        return hints

    def _hold(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int | None, wait: float
    ) -> None:
        consumer.pause(tp)
        if offset is not None:
            consumer.seek(tp, offset)
        self._retry[tp] = time.monotonic() + wait

    async def _reopen_due(self, consumer: AIOKafkaConsumer) -> None:
        now = time.monotonic()
        due = [tp for tp, at in self._retry.items() if at <= now]
        if not due:
            return
        generation = int(getattr(consumer._coordinator, "generation", 0) or 0)
        async with self._lock:
            for tp in due:
                if tp not in consumer.assignment():
                    self._retry.pop(tp, None)
                elif tp in self.shards:  # held back by a full outbox: take again
                    self._retry.pop(tp, None)
                    consumer.resume(tp)
                else:
                    await self._open(consumer, tp, generation)

    async def reload(self, rules: RuleSet) -> None:
        """New rules for every shard's engine (unchanged rules keep their windows)."""
        async with self._lock:
            for shard in self.shards.values():
                shard.engine.reload(rules)

    # -- what the read API asks ---------------------------------------------------------

    def engines(self) -> list[Engine]:
        return [s.engine for s in self.shards.values()]

    async def settle(self, grace: float) -> None:
        """Let every shard's drains deliver what waits, within `grace` seconds."""
        await asyncio.gather(*(s.delivery.settle(grace) for s in list(self.shards.values())))
