"""Benchmarks of the correlation core's hot path (pytest-benchmark).

Run: `python -m pytest bench/test_bench_core.py --benchmark-only`
Each reports `alerts_per_s` (alerts through `Engine.process` per second, median round).
"""

from __future__ import annotations

from typing import Any

from bench.report import record_rate
from bench.workload import Workload, rules
from correlate import Engine
from correlate.match import RuleMatcher

N = 20_000


def _process_all(engine: Engine, batches: list[list[Any]]) -> int:
    process = engine.process  # hoisted: the timed loop does nothing but the work
    opened = 0
    for batch in batches:
        fx = process(batch, batch[-1].received_at)
        opened += sum(1 for e in fx.events if e.event == "opened")
    return opened


def _bench_process(benchmark: Any, n_rules: int, duplicate_ratio: float) -> None:
    wl = Workload(duplicate_ratio=duplicate_ratio)
    batches = wl.batches(N, size=100)
    ruleset = rules(n_rules)

    def setup() -> tuple[tuple[Engine, list[list[Any]]], dict[str, Any]]:
        return (Engine(ruleset), batches), {}

    opened = benchmark.pedantic(_process_all, setup=setup, rounds=5, warmup_rounds=1)
    record_rate(benchmark, "alerts_per_s", N)
    benchmark.extra_info["incidents_opened"] = opened
    assert opened > 0


def test_process_50_rules_80pct_duplicates(benchmark: Any) -> None:
    _bench_process(benchmark, 50, 0.8)


def test_process_500_rules_80pct_duplicates(benchmark: Any) -> None:
    _bench_process(benchmark, 500, 0.8)


def test_process_50_rules_all_new(benchmark: Any) -> None:
    _bench_process(benchmark, 50, 0.0)


def test_match_500_rules(benchmark: Any) -> None:
    alerts = list(Workload(duplicate_ratio=0).alerts(2_000))
    matcher = RuleMatcher(rules(500).rules)
    candidates = matcher.candidates

    def match_all() -> int:
        return sum(len(candidates(a)) for a in alerts)

    matched = benchmark(match_all)
    record_rate(benchmark, "alerts_per_s", len(alerts))
    assert matched >= len(alerts)  # every alert matches the catch-all service-burst rule
