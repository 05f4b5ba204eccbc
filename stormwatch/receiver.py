"""The receiver role: normalised alerts out to the partitioned topic, and ticks.

`submit(alerts)` (what HTTP, syslog, files and the Kafka source call) stamps the request
with one reading of its clock in whole milliseconds, splits it by partition (the
partition of the alert's `shard_key` label value, as Kafka's default partitioner places
a key: murmur2 modulo the partition count), and produces each part as one message: a
msgspec JSON array of `Alert`, with the stamp as the message's timestamp and as every
alert's `received_at`. It returns once the broker has acknowledged every part, so a 200
means the alerts are in the topic; a broker that does not answer is `StoreUnavailable`
(503 + Retry-After). A correlator re-stamps only if the partition's time has already
passed the message's (stormwatch/partitions.py).

`run_ticks()` sends every partition an empty message each `tick_interval`: the time a
partition's timers fire by when no alert arrives there. `broadcast()` sends every
partition an operator's action (stormwatch/control.py); correlators use it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

from stormwatch.errors import StoreUnavailable
from stormwatch.roles import PartitionConfig
from stormwatch.wire import Alert

__all__ = ["Receiver", "partition_of"]

log = structlog.get_logger("stormwatch.receiver")
_enc = msgspec.json.Encoder()
MAX_ALERTS_PER_MESSAGE = 500
"""Keeps a message well under the broker's default 1 MiB."""
_CACHE_MAX = 100_000


def partition_of(value: str, partitions: int) -> int:
    """Kafka's default partition for the key `value`."""
    return int(murmur2(value.encode()) & 0x7FFFFFFF) % partitions


class Receiver:
    def __init__(self, config: PartitionConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._last_ms = 0
        self._producer: AIOKafkaProducer | None = None
        self._partitions: list[int] = []
        self._where: dict[str, int] = {}
        self.produced = 0
        """Alerts acknowledged by the broker (for tests and logs)."""

    async def start(self) -> None:
        cfg = self.config
        await self.ensure_topic()
        producer = AIOKafkaProducer(
            bootstrap_servers=cfg.bootstrap,
            max_request_size=4 * 1024 * 1024,
            max_batch_size=1024 * 1024,
            linger_ms=2,
        )
        await producer.start()
        self._producer = producer
        self._partitions = sorted(await producer.partitions_for(cfg.topic))
        log.info("receiver_started", topic=cfg.topic, partitions=len(self._partitions))

    async def ensure_topic(self) -> None:
        """Create the topic with `partitions` partitions unless it exists."""
        cfg = self.config
        admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap)
        await admin.start()
        try:
            if cfg.topic not in await admin.list_topics():
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics([NewTopic(cfg.topic, cfg.partitions, 1)])
        finally:
            await admin.close()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    def _stamp_ms(self) -> int:
        ms = max(int(self._clock() * 1000), self._last_ms + 1)
        self._last_ms = ms
        return ms

    def _partition(self, value: str) -> int:
        p = self._where.get(value)
        if p is None:
            if len(self._where) >= _CACHE_MAX:
                self._where.clear()
            p = self._where[value] = self._partitions[partition_of(value, len(self._partitions))]
        return p

    async def submit(self, alerts: list[Alert]) -> None:
        """Produce a request's alerts; return once the broker has them all."""
        if not alerts:
            return
        producer = self._producer
        if producer is None:
            msg = "the receiver is not connected to Kafka yet"
            raise StoreUnavailable(msg)
        ms = self._stamp_ms()
        t = ms / 1000
        key = self.config.shard_key
        replace = msgspec.structs.replace
        parts: dict[int, list[Alert]] = {}
        for a in alerts:
            parts.setdefault(self._partition(a.labels.get(key, "")), []).append(
                replace(a, received_at=t)
            )
        sent: list[Any] = []
        try:
            for p, part in parts.items():
                for i in range(0, len(part), MAX_ALERTS_PER_MESSAGE):
                    value = _enc.encode(part[i : i + MAX_ALERTS_PER_MESSAGE])
                    sent.append(
                        await producer.send(self.config.topic, value, partition=p, timestamp_ms=ms)
                    )
            await asyncio.gather(*sent)
        except KafkaError as err:
            msg = f"cannot produce to Kafka topic {self.config.topic!r}: {err}"
            raise StoreUnavailable(msg) from err
        self.produced += len(alerts)

    async def tick(self) -> None:
        """One tick to every partition, at one stamp."""
        if self._producer is not None:
            await self._to_every_partition(b"")

    async def broadcast(self, value: bytes) -> None:
        """One control message (stormwatch/control.py) to every partition, at one stamp;
        returns once the broker has every copy (StoreUnavailable when it cannot)."""
        if self._producer is None:
            msg = "this process is not connected to Kafka yet"
            raise StoreUnavailable(msg)
        try:
            await self._to_every_partition(value)
        except KafkaError as err:
            msg = f"cannot produce to Kafka topic {self.config.topic!r}: {err}"
            raise StoreUnavailable(msg) from err

    async def _to_every_partition(self, value: bytes) -> None:
        producer = self._producer
        assert producer is not None
        ms = self._stamp_ms()
        sent = [
            await producer.send(self.config.topic, value, partition=p, timestamp_ms=ms)
            for p in self._partitions
        ]
        await asyncio.gather(*sent)

    async def run_ticks(self) -> None:
        """Tick every partition each `tick_interval` until cancelled."""
        while True:
            await asyncio.sleep(self.config.tick_interval)
            try:
                await self.tick()
            except KafkaError as err:
                log.warning("receiver_tick_failed", error=str(err))
