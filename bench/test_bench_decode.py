"""Benchmarks of the ingest edge: decoding an Alertmanager batch, fingerprinting.

Run: `python -m pytest bench/test_bench_decode.py --benchmark-only`
"""

from __future__ import annotations

from typing import Any

from bench.report import record_rate
from bench.workload import Workload
from ingest.fingerprint import fingerprint_labels
from ingest.normalize.alertmanager import normalize_alertmanager_v2


def test_decode_alertmanager_batch_of_100(benchmark: Any) -> None:
    wl = Workload()
    batch = next(r for r in wl.requests(10_000) if len(r) == 100)
    body = wl.am_payload(batch)
    normalize = normalize_alertmanager_v2
    alerts = benchmark(normalize, body, 1_790_000_100.0)
    record_rate(benchmark, "alerts_per_s", 100)
    benchmark.extra_info["bytes_per_alert"] = len(body) // 100
    assert [a.fingerprint for a in alerts] == [a.fingerprint for a in batch]


def test_fingerprint_7_labels(benchmark: Any) -> None:
    labels = [a.labels for a in Workload().alerts(1000)]
    fp = fingerprint_labels

    def all_fingerprints() -> list[str]:
        return [fp(x) for x in labels]

    out = benchmark(all_fingerprints)
    record_rate(benchmark, "alerts_per_s", len(labels))
    assert len(set(out)) == len({tuple(sorted(x.items())) for x in labels})
