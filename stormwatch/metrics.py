"""Every `stormwatch_*` collector, on one explicit registry per App.

Label values come from bounded sets (source, reason, rule, sink, event, outcome), never
from a fingerprint or an incident key. Known label combinations are created up front
(`init_*`) so dashboards see zeros rather than missing series.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = [
    "BREAKER_STATES",
    "DEAD_LETTER_REASONS",
    "LOG_LINE_OUTCOMES",
    "REJECT_REASONS",
    "SINK_OUTCOMES",
    "Metrics",
]

REJECT_REASONS = (
    "invalid_json",
    "invalid_payload",
    "too_large",
    "unsupported_media_type",
    "overloaded",
    "too_deep",
    "invalid_encoding",
    "incomplete_body",
    "timeout",
    "unauthorized",
    "rate_limited",
    "store_unavailable",
    "internal",
    "unknown_format",
)
LOG_LINE_OUTCOMES = ("matched", "unmatched", "dropped")
INCIDENT_EVENTS = ("opened", "updated", "resolved")
SINK_OUTCOMES = ("ok", "retryable", "permanent")
DEAD_LETTER_REASONS = ("permanent", "expired", "error")
BREAKER_STATES = ("closed", "half_open", "open")
"""`stormwatch_sink_breaker_state` is the index: 0 closed, 1 half-open, 2 open."""
SEVERITIES = ("P1", "P2", "P3", "P4")
# Incident lifetimes: a minute to a day.
_INCIDENT_BUCKETS = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The daemon's collectors. Build one per App; pass it to each component."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        version: str = "0.1.0",
        core: str = "interpreted",
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self._received: dict[str, tuple[Any, Any]] = {}
        self.alerts_received = Counter(
            "stormwatch_alerts_received",
            "Alerts taken in, by source and status.",
            ["source", "status"],
            registry=r,
        )
        self.alerts_rejected = Counter(
            "stormwatch_alerts_rejected",
            "Payloads or alerts refused, by source and reason.",
            ["source", "reason"],
            registry=r,
        )
        self.alerts_deduplicated = Counter(
            "stormwatch_alerts_deduplicated",
            "Re-sent firing alerts that did not feed the rules again.",
            ["source"],
            registry=r,
        )
        self.alerts_late = Counter(
            "stormwatch_alerts_late",
            "Alerts behind the watermark by more than the allowed lateness.",
            ["rule"],
            registry=r,
        )
        self.windows_live = Gauge(
            "stormwatch_windows_live",
            "Live correlation windows (groups), by rule.",
            ["rule"],
            registry=r,
        )
        self.window_groups_capped = Counter(
            "stormwatch_window_groups_capped",
            "Alerts whose group found its rule at max_groups_per_rule windows.",
            ["rule"],
            registry=r,
        )
        self.queue_batches = Gauge(
            "stormwatch_ingest_queue_batches", "Batches waiting for the correlator.", registry=r
        )
        self.queue_capacity = Gauge(
            "stormwatch_ingest_queue_capacity_batches", "Capacity of the ingest queue.", registry=r
        )
        self.batch_seconds = Histogram(
            "stormwatch_batch_processing_seconds",
            "Time to correlate and save one batch.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.incidents = Counter(
            "stormwatch_incidents",
            "Incident events, by rule and event.",
            ["rule", "event"],
            registry=r,
        )
        self.incidents_open = Gauge(
            "stormwatch_incidents_open", "Incidents open now, by rule.", ["rule"], registry=r
        )
        self.sink_requests = Counter(
            "stormwatch_sink_requests",
            "Sink delivery attempts (each retry counts), by sink and outcome.",
            ["sink", "outcome"],
            registry=r,
        )
        self.sink_seconds = Histogram(
            "stormwatch_sink_request_duration_seconds",
            "Duration of one sink request.",
            ["sink"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.dead_letters = Counter(
            "stormwatch_sink_dead_letters",
            "Incident events a sink gave up on.",
            ["sink", "reason"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "stormwatch_outbox_pending_events",
            "Incident events waiting for a sink (after coalescing).",
            ["sink"],
            registry=r,
        )
        self.outbox_entries = Gauge(
            "stormwatch_outbox_pending_entries",
            "Incidents with events waiting for a sink (what outbox.capacity bounds).",
            ["sink"],
            registry=r,
        )
        self.outbox_oldest_age = Gauge(
            "stormwatch_outbox_oldest_pending_age_seconds",
            "How long the oldest undelivered event of a sink has waited.",
            ["sink"],
            registry=r,
        )
        self.outbox_coalesced = Counter(
            "stormwatch_outbox_coalesced",
            "Events folded into an incident's waiting events instead of queued after them.",
            ["sink"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "stormwatch_sink_breaker_state",
            "A sink's circuit breaker: 0 closed, 1 half-open (probing), 2 open.",
            ["sink"],
            registry=r,
        )
        self.time_to_detect = Histogram(
            "stormwatch_incident_time_to_detect_seconds",
            "From an incident's first alert (its startsAt) to the decision to open it.",
            ["rule", "severity"],
            buckets=_INCIDENT_BUCKETS,
            registry=r,
        )
        self.time_to_acknowledge = Histogram(
            "stormwatch_incident_time_to_acknowledge_seconds",
            "From an incident's opening to its acknowledgement, by severity.",
            ["severity"],
            buckets=_INCIDENT_BUCKETS,
            registry=r,
        )
        self.time_to_resolve = Histogram(
            "stormwatch_incident_time_to_resolve_seconds",
            "From an incident's first alert (event time) to its resolution, by severity.",
            ["severity"],
            buckets=_INCIDENT_BUCKETS,
            registry=r,
        )
        self.rules_loaded = Gauge("stormwatch_rules_loaded", "Rules live now.", registry=r)
        self.rules_reload_ok = Gauge(
            "stormwatch_rules_last_reload_successful",
            "1 if the last rule reload succeeded.",
            registry=r,
        )
        self.rules_reload_ts = Gauge(
            "stormwatch_rules_last_reload_success_timestamp_seconds",
            "When the rules were last loaded successfully.",
            registry=r,
        )
        self.rules_reloads = Counter(
            "stormwatch_rules_reloads", "Rule reload attempts, by outcome.", ["outcome"], registry=r
        )
        self.http_server_errors = Counter(
            "stormwatch_http_server_errors",
            "HTTP answers with a 5xx status, by status, wherever they came from.",
            ["status"],
            registry=r,
        )
        self.log_lines = Counter(
            "stormwatch_log_lines",
            "Log lines read by the syslog and file sources: matched a pattern, matched none, "
            "or dropped (UDP, when the pipeline had no room).",
            ["source", "outcome"],
            registry=r,
        )
        self.log_lines_truncated = Counter(
            "stormwatch_log_lines_truncated",
            "Log lines cut at the line limit (the rest of the line is discarded).",
            ["source"],
            registry=r,
        )
        self.build_info = Gauge(
            "stormwatch_build_info",
            "Build information; core: whether the correlation core runs compiled (mypyc) or "
            "interpreted.",
            ["version", "python", "core"],
            registry=r,
        )
        self.build_info.labels(version, platform.python_version(), core).set(1)
        self.rules_reload_ok.set(1)
        for outcome in ("ok", "failed"):
            self.rules_reloads.labels(outcome)
        for severity in SEVERITIES:
            for h in (self.time_to_acknowledge, self.time_to_resolve):
                h.labels(severity)
        for status in ("500", "503"):
            self.http_server_errors.labels(status)

    def count_received(self, source: str, statuses: Sequence[str]) -> None:
        """Count a batch taken in from `source` (its alerts' statuses) in
        `alerts_received`. The source's two series are found once: `labels()` takes a
        lock and builds its key on every call, twice a request."""
        pair = self._received.get(source)
        if pair is None:
            series = self.alerts_received
            pair = self._received[source] = (
                series.labels(source, "firing"),
                series.labels(source, "resolved"),
            )
        firing = statuses.count("firing")
        if firing:
            pair[0].inc(firing)
        if len(statuses) - firing:
            pair[1].inc(len(statuses) - firing)

    def init_source(self, source: str) -> None:
        """Create a source's series at zero."""
        for status in ("firing", "resolved"):
            self.alerts_received.labels(source, status)
        for reason in REJECT_REASONS:
            self.alerts_rejected.labels(source, reason)
        self.alerts_deduplicated.labels(source)

    def init_log_source(self, source: str) -> None:
        """Create a log source's series at zero (plus its alert series)."""
        self.init_source(source)
        for outcome in LOG_LINE_OUTCOMES:
            self.log_lines.labels(source, outcome)
        self.log_lines_truncated.labels(source)

    def init_rules(self, names: Iterable[str]) -> None:
        """Create each rule's series at zero."""
        for name in names:
            for event in INCIDENT_EVENTS:
                self.incidents.labels(name, event)
            self.incidents_open.labels(name)
            self.alerts_late.labels(name)
            self.windows_live.labels(name)
            self.window_groups_capped.labels(name)

    def init_sink(self, sink: str) -> None:
        """Create a sink's series at zero."""
        for outcome in SINK_OUTCOMES:
            self.sink_requests.labels(sink, outcome)
        for reason in DEAD_LETTER_REASONS:
            self.dead_letters.labels(sink, reason)
        for gauge in (self.outbox_pending, self.outbox_entries, self.breaker_state):
            gauge.labels(sink)
        self.outbox_coalesced.labels(sink)
