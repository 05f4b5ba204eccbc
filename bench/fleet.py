"""A fleet of distinct alerts: every record a new label set, every one still firing.

The seeded workload (bench/workload.py) holds about 10,000 fingerprints live at a time,
as a healthy fleet does; the memory, live-group and "a million alerts in flight" targets
need many more held at once. Here record `i` is the only one with `instance="host-i"`,
its `endsAt` a day after its arrival, so nothing expires while the measure runs and the
engine holds one live fingerprint per record sent.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from bench.workload import ALERTNAMES
from stormwatch.wire import iso8601

__all__ = ["FLEET_SERVICES", "fleet_bodies", "fleet_labels"]

FLEET_SERVICES = 1000
_SEVERITIES = ("critical", "warning", "warning", "warning", "info")
_DAY = 86_400.0


def fleet_labels(i: int, probe: bool = False) -> dict[str, str]:
    """The label set of record `i`: 7 labels, as the workload's, `instance` unique. A
    `probe` fleet has its own alertname, services and team, so the workload's rules
    (bench/workload.py) never join its alerts to the workload's."""
    svc = i % FLEET_SERVICES
    if probe:
        return {
            "alertname": "FleetProbe",
            "service": f"probe-{svc:04d}",
            "instance": f"host-{i}:9100",
            "cluster": f"prod-{svc % 3}",
            "namespace": f"probe-{svc % 40}",
            "severity": "info",
            "team": "probe",
        }
    name = ALERTNAMES[(i // FLEET_SERVICES) % len(ALERTNAMES)]
    return {
        "alertname": name,
        "service": f"svc-{svc:04d}",
        "instance": f"host-{i}:9100",
        "cluster": f"prod-{svc % 3}",
        "namespace": f"ns-{svc % 40}",
        "severity": _SEVERITIES[(svc + ALERTNAMES.index(name)) % len(_SEVERITIES)],
        "team": f"team-{svc % 12}",
    }


def fleet_bodies(
    n: int,
    *,
    start: float,
    span_s: float,
    batch: int = 100,
    first: int = 0,
    probe: bool = False,
    ends_at: float | None = None,
) -> Iterator[tuple[float, bytes]]:
    """(arrival time, Alertmanager v2 body) for records `first` .. `first + n - 1`,
    `batch` a request, arrivals spread evenly over `span_s` seconds from `start`;
    each alert starts at its arrival and ends a day later (or at `ends_at`)."""
    requests = max(1, -(-n // batch))
    step = span_s / requests
    for r in range(requests):
        at = start + r * step
        starts, ends = iso8601(at), iso8601(at + _DAY if ends_at is None else ends_at)
        lo = first + r * batch
        hi = min(first + n, lo + batch)
        items = [
            {
                "labels": fleet_labels(i, probe),
                "annotations": {"summary": f"alert {i}"},
                "startsAt": starts,
                "endsAt": ends,
                "generatorURL": "http://prometheus:9090/graph",
            }
            for i in range(lo, hi)
        ]
        yield at, orjson.dumps(items)
