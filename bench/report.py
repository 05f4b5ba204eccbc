"""Figures a benchmark records beside its timings."""

from __future__ import annotations

from typing import Any


def record_rate(benchmark: Any, key: str, count: int) -> None:
    """`extra_info[key]` = count per second of the median round. Skipped when timing is
    off (`--benchmark-disable`, as CI runs them: the body runs once, untimed)."""
    if benchmark.stats is not None:
        benchmark.extra_info[key] = round(count / benchmark.stats.stats.median)
