"""Outputs: every sink delivers `IncidentEvent`s from its own outbox.

`build_sink(config, ctx)` turns a sink's config into a ready `Sink`; `OutboxDrain`
(sinks/drain.py) feeds it from the outbox with the config's `retry` and `breaker`.
"""

from __future__ import annotations

from typing import TypeAlias

from sinks.base import Receipt, Sink, SinkContext, classify_status, parse_retry_after
from sinks.drain import OutboxDrain
from sinks.file import FileSink, FileSinkConfig
from sinks.jira import JiraSink, JiraSinkConfig
from sinks.kafka import KafkaSink, KafkaSinkConfig
from sinks.opsgenie import OpsgenieSink, OpsgenieSinkConfig
from sinks.outbox import DeadLetter, MemoryOutbox, Outbox, OutboxEntry, Pending
from sinks.pagerduty import PagerDutySink, PagerDutySinkConfig
from sinks.redis_outbox import RedisOutbox
from sinks.remote import MemoryRemoteStore, RedisRemoteStore, Refs, RemoteRef, RemoteStore
from sinks.retry import BreakerPolicy, RetryPolicy
from sinks.servicenow import ServiceNowSink, ServiceNowSinkConfig
from sinks.slack import SlackSink, SlackSinkConfig
from sinks.webhook import WebhookSink, WebhookSinkConfig

__all__ = [
    "BreakerPolicy",
    "DeadLetter",
    "FileSink",
    "FileSinkConfig",
    "JiraSink",
    "JiraSinkConfig",
    "KafkaSink",
    "KafkaSinkConfig",
    "MemoryOutbox",
    "MemoryRemoteStore",
    "OpsgenieSink",
    "OpsgenieSinkConfig",
    "Outbox",
    "OutboxDrain",
    "OutboxEntry",
    "PagerDutySink",
    "PagerDutySinkConfig",
    "Pending",
    "Receipt",
    "RedisOutbox",
    "RedisRemoteStore",
    "Refs",
    "RemoteRef",
    "RemoteStore",
    "RetryPolicy",
    "ServiceNowSink",
    "ServiceNowSinkConfig",
    "Sink",
    "SinkConfig",
    "SinkContext",
    "SlackSink",
    "SlackSinkConfig",
    "WebhookSink",
    "WebhookSinkConfig",
    "build_sink",
    "classify_status",
    "parse_retry_after",
    "policies",
]

SinkConfig: TypeAlias = (
    FileSinkConfig
    | WebhookSinkConfig
    | PagerDutySinkConfig
    | OpsgenieSinkConfig
    | SlackSinkConfig
    | ServiceNowSinkConfig
    | JiraSinkConfig
    | KafkaSinkConfig
)


def build_sink(config: SinkConfig, ctx: SinkContext | None = None) -> Sink:
    """A sink ready for its drain."""
    ctx = ctx or SinkContext()
    if isinstance(config, WebhookSinkConfig):
        return WebhookSink(config)
    if isinstance(config, PagerDutySinkConfig):
        return PagerDutySink(config, ctx)
    if isinstance(config, OpsgenieSinkConfig):
        return OpsgenieSink(config, ctx)
    if isinstance(config, SlackSinkConfig):
        return SlackSink(config, ctx)
    if isinstance(config, ServiceNowSinkConfig):
        return ServiceNowSink(config, ctx)
    if isinstance(config, JiraSinkConfig):
        return JiraSink(config, ctx)
    if isinstance(config, KafkaSinkConfig):
        return KafkaSink(config)
    return FileSink(config)


def policies(config: SinkConfig) -> tuple[RetryPolicy, BreakerPolicy]:
    """A sink's retry and breaker settings (the file sink keeps the defaults)."""
    return getattr(config, "retry", RetryPolicy()), getattr(config, "breaker", BreakerPolicy())
