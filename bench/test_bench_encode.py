"""Benchmark of a sink's encode: one incident event holding 50 alerts, as the file and
webhook sinks write it.

Run: `python -m pytest bench/test_bench_encode.py --benchmark-only`
"""

from __future__ import annotations

from typing import Any

import msgspec

from bench.report import record_rate
from stormwatch.wire import IncidentEvent
from tests.support_sinks import incident_event


def test_encode_incident_event_with_50_alerts(benchmark: Any) -> None:
    event = incident_event(alerts=50)
    encode = msgspec.json.Encoder().encode
    body = benchmark(encode, event)
    record_rate(benchmark, "events_per_s", 1)
    benchmark.extra_info["bytes"] = len(body)
    assert msgspec.json.decode(body, type=IncidentEvent) == event
