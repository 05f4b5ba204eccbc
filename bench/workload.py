"""One seeded alert workload, shared by the benchmarks and `bench/load.py`.

Shaped like a Prometheus fleet: a few hundred services, each alert re-sent every
evaluation interval (so most arrivals are duplicates), with occasional storms where many
alerts of one service fire within a minute.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from ingest.fingerprint import fingerprint_labels
from rules import RuleSet
from rules.schema import Condition, EventCount, IncidentSpec, Rule
from stormwatch.wire import Alert, Duration, iso8601

ALERTNAMES = (
    "HighErrorRate",
    "HighLatency",
    "PodCrashLooping",
    "DiskFull",
    "CPUThrottling",
    "MemoryPressure",
    "TargetDown",
    "CertExpiring",
    "QueueBacklog",
    "ReplicaLag",
)


@dataclass(frozen=True)
class Workload:
    seed: int = 42
    services: int = 200
    instances_per_service: int = 8
    duplicate_ratio: float = 0.8
    """Share of arrivals that are re-sends of an alert already firing."""
    start: float = 1_790_000_000.0
    alerts_per_second: float = 1000.0
    """Event-time density: how many arrivals fall in one second of event time."""

    def label_sets(self, rng: random.Random) -> dict[str, str]:
        svc = rng.randrange(self.services)
        return {
            "alertname": rng.choice(ALERTNAMES),
            "service": f"svc-{svc:03d}",
            "instance": f"10.{svc // 250}.{svc % 250}.{rng.randrange(self.instances_per_service)}:9100",
            "cluster": f"prod-{svc % 3}",
            "namespace": f"ns-{svc % 20}",
            "severity": rng.choice(("critical", "warning", "warning", "info")),
            "team": f"team-{svc % 12}",
        }

    def alerts(self, n: int) -> Iterator[Alert]:
        """`n` arrivals in event-time order; `duplicate_ratio` of them re-sends."""
        rng = random.Random(self.seed)
        firing: list[Alert] = []
        step = 1.0 / self.alerts_per_second
        for i in range(n):
            t = self.start + i * step
            if firing and rng.random() < self.duplicate_ratio:
                prev = rng.choice(firing)
                yield Alert(
                    source="alertmanager",
                    fingerprint=prev.fingerprint,
                    status="firing",
                    labels=prev.labels,
                    annotations=prev.annotations,
                    starts_at=prev.starts_at,
                    received_at=t,
                )
                continue
            labels = self.label_sets(rng)
            a = Alert(
                source="alertmanager",
                fingerprint=fingerprint_labels(labels),
                status="firing",
                labels=labels,
                annotations={"summary": f"{labels['alertname']} on {labels['instance']}"},
                starts_at=t,
                received_at=t,
            )
            firing.append(a)
            yield a

    def batches(self, n: int, size: int = 100) -> list[list[Alert]]:
        all_alerts = list(self.alerts(n))
        return [all_alerts[i : i + size] for i in range(0, n, size)]

    def am_payload(self, batch: list[Alert]) -> bytes:
        """A batch as Prometheus POSTs it to /api/v2/alerts."""
        return orjson.dumps(
            [
                {
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": iso8601(a.starts_at),
                    "generatorURL": "http://prometheus:9090/graph",
                }
                for a in batch
            ]
        )


def rules(n: int = 50) -> RuleSet:
    """`n` event_count rules: one per alertname x severity, then per-team variants."""
    out = [
        Rule(
            name="service-burst",
            match=[],
            correlation=EventCount(
                group_by=["service"], timespan=Duration(60), condition=Condition(gte=5)
            ),
            incident=IncidentSpec(title="{service}: {count} alerts within 60s", severity="P2"),
        )
    ]
    i = 0
    while len(out) < n:
        name = ALERTNAMES[i % len(ALERTNAMES)]
        out.append(
            Rule(
                name=f"r{i}-{name}",
                match=[f'alertname="{name}"', f'team="team-{i % 12}"'],
                correlation=EventCount(
                    group_by=["service", "instance"],
                    timespan=Duration(300),
                    condition=Condition(gte=3),
                ),
                incident=IncidentSpec(title="{alertname} x{count} on {instance}", severity="P3"),
            )
        )
        i += 1
    return RuleSet(rules=tuple(out))
