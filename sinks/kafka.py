"""`kafka`: incident events to a Kafka topic, keyed by incident key.

One message per event; the key is the incident key, so all of an incident's events
land on one partition, in order, and a compacted topic keeps each incident's latest
state. Headers carry `event` and `sequence` for consumers that route without parsing.
The value is the same JSON as the file sink's line. aiokafka's idempotent producer is
not used (not every Kafka-compatible broker supports it); consumers deduplicate by
(key, sequence) if they must.
"""

from __future__ import annotations

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from sinks.base import Receipt
from sinks.retry import BreakerPolicy, RetryPolicy
from stormwatch.errors import PermanentSinkError, RetryableSinkError
from stormwatch.wire import Duration, IncidentEvent

__all__ = ["KafkaSink", "KafkaSinkConfig"]

_enc = msgspec.json.Encoder()


class KafkaSinkConfig(
    msgspec.Struct,
    tag="kafka",
    tag_field="type",
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
):
    name: str
    bootstrap: str
    """host:port[,host:port]"""
    topic: str = "stormwatch.incidents"
    acks: str = "all"
    linger: Duration = Duration(0.005)
    request_timeout: Duration = Duration(30)
    client_id: str = "stormwatch"
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()


class KafkaSink:
    keeps_refs = False
    """Its drain alone writes its refs (sinks/drain.py)."""

    def __init__(self, config: KafkaSinkConfig) -> None:
        self.name = config.name
        self.config = config
        self._producer: AIOKafkaProducer | None = None

    async def _start(self) -> AIOKafkaProducer:
        if self._producer is None:
            cfg = self.config
            producer = AIOKafkaProducer(
                bootstrap_servers=cfg.bootstrap,
                client_id=cfg.client_id,
                acks=int(cfg.acks) if cfg.acks.isdigit() else cfg.acks,
                linger_ms=int(cfg.linger * 1000),
                request_timeout_ms=int(cfg.request_timeout * 1000),
                enable_idempotence=False,
            )
            try:
                await producer.start()
            except KafkaError as err:
                await producer.stop()
                raise RetryableSinkError(
                    f"{self.name}: cannot reach {cfg.bootstrap}: {err}", sink=self.name
                ) from err
            self._producer = producer
        return self._producer

    async def deliver(self, event: IncidentEvent) -> Receipt:
        producer = await self._start()
        headers = [("event", event.event.encode()), ("sequence", str(event.sequence).encode())]
        try:
            meta = await producer.send_and_wait(
                self.config.topic,
                _enc.encode(event),
                key=event.incident.key.encode(),
                headers=headers,
            )
        except KafkaError as err:
            cls = RetryableSinkError if getattr(err, "retriable", True) else PermanentSinkError
            raise cls(f"{self.name}: {type(err).__name__}: {err}", sink=self.name) from err
        return Receipt(sink=self.name, remote_id=f"{meta.topic}/{meta.partition}/{meta.offset}")

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
