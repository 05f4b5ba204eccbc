"""Outputs: every sink delivers `IncidentEvent`s from its own outbox.

`build_sink(config, metrics)` turns a sink's config into a ready `Sink` (wrapped in
`Retrying` where the sink talks to the network).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from sinks.base import Receipt, Sink, classify_status, parse_retry_after
from sinks.file import FileSink, FileSinkConfig
from sinks.jira import JiraSink, JiraSinkConfig
from sinks.kafka import KafkaSink, KafkaSinkConfig
from sinks.opsgenie import OpsgenieSink, OpsgenieSinkConfig
from sinks.outbox import DeadLetter, MemoryOutbox, Outbox, OutboxDrain, OutboxEntry
from sinks.pagerduty import PagerDutySink, PagerDutySinkConfig
from sinks.redis_outbox import RedisOutbox
from sinks.retry import Retrying, RetryPolicy
from sinks.servicenow import ServiceNowSink, ServiceNowSinkConfig
from sinks.slack import SlackSink, SlackSinkConfig
from sinks.webhook import WebhookSink, WebhookSinkConfig

if TYPE_CHECKING:
    from stormwatch.metrics import Metrics

__all__ = [
    "DeadLetter",
    "FileSink",
    "FileSinkConfig",
    "JiraSink",
    "JiraSinkConfig",
    "KafkaSink",
    "KafkaSinkConfig",
    "MemoryOutbox",
    "OpsgenieSink",
    "OpsgenieSinkConfig",
    "Outbox",
    "OutboxDrain",
    "OutboxEntry",
    "PagerDutySink",
    "PagerDutySinkConfig",
    "Receipt",
    "RedisOutbox",
    "RetryPolicy",
    "Retrying",
    "ServiceNowSink",
    "ServiceNowSinkConfig",
    "Sink",
    "SinkConfig",
    "SlackSink",
    "SlackSinkConfig",
    "WebhookSink",
    "WebhookSinkConfig",
    "build_sink",
    "classify_status",
    "parse_retry_after",
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


def build_sink(config: SinkConfig, metrics: Metrics) -> Sink:
    """A sink ready for its drain."""
    metrics.init_sink(config.name)
    if isinstance(config, WebhookSinkConfig):
        return Retrying(WebhookSink(config), config.retry)
    if isinstance(config, PagerDutySinkConfig):
        return Retrying(PagerDutySink(config), config.retry)
    if isinstance(config, OpsgenieSinkConfig):
        return Retrying(OpsgenieSink(config), config.retry)
    if isinstance(config, SlackSinkConfig):
        return Retrying(SlackSink(config), config.retry)
    if isinstance(config, ServiceNowSinkConfig):
        return Retrying(ServiceNowSink(config), config.retry)
    if isinstance(config, JiraSinkConfig):
        return Retrying(JiraSink(config), config.retry)
    if isinstance(config, KafkaSinkConfig):
        return Retrying(KafkaSink(config))
    return FileSink(config)
