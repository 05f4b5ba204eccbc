"""Benchmarks of the correlation core's hot path (pytest-benchmark).

Run: `python -m pytest bench/test_bench_core.py --benchmark-only`

The engine is fed as the live pipeline feeds it (bench/feed.py): one request (up to 100
alerts, one arrival instant) per `Engine.process` call, a `tick` after each, every incident
event encoded, the state delta taken after every call. The stream is the seeded workload
(bench/workload.py): 80 % re-sends, storms, resolves, hours of arrival time. Each reports
`alerts_per_s` (records through the pipeline's engine work per second, median round).
"""

from __future__ import annotations

from typing import Any

from bench.feed import feed
from bench.report import record_rate
from bench.workload import Workload, rules
from correlate import Engine
from correlate.match import RuleMatcher
from rules import RuleSet
from stormwatch.wire import Alert

N = 20_000
_REQUESTS = list(Workload().requests(N))


def _bench_stream(benchmark: Any, ruleset: RuleSet, requests: list[list[Alert]]) -> int:
    n = sum(len(r) for r in requests)

    def setup() -> tuple[tuple[Engine, list[list[Alert]]], dict[str, Any]]:
        return (Engine(ruleset), requests), {}

    events = benchmark.pedantic(feed, setup=setup, rounds=5, warmup_rounds=1)
    record_rate(benchmark, "alerts_per_s", n)
    benchmark.extra_info["events"] = events
    return int(events)


def test_stream_50_rules_of_every_type(benchmark: Any) -> None:
    assert _bench_stream(benchmark, rules(50), _REQUESTS) > 0


def test_stream_one_event_count_rule(benchmark: Any) -> None:
    """The rule the comparison with SEC uses: 5 alerts of one service within 60s."""
    assert _bench_stream(benchmark, rules(1), _REQUESTS) > 0


def test_stream_500_rules(benchmark: Any) -> None:
    assert _bench_stream(benchmark, rules(500), _REQUESTS) > 0


def test_match_500_rules(benchmark: Any) -> None:
    alerts = [a for r in _REQUESTS[:40] for a in r]
    matcher = RuleMatcher(rules(500).rules)
    candidates = matcher.candidates

    def match_all() -> int:
        return sum(len(candidates(a)) for a in alerts)

    matched = benchmark(match_all)
    record_rate(benchmark, "alerts_per_s", len(alerts))
    assert matched >= len(alerts) - sum(a.labels["alertname"] == "Watchdog" for a in alerts)
