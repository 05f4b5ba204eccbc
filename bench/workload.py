"""One seeded alert workload, shared by the benchmarks, `bench/load.py` and the archive.

Shaped like a Prometheus fleet talking to an Alertmanager over days:

- **Occurrences.** Alerts start at random (Poisson) on random label sets out of
  services x alertnames x instances; each fires for a while, is re-sent every
  `resend_interval` (Prometheus' `resend_delay`) and then usually resolves (a resolved
  record with its `endsAt`), or just stops being sent and expires.
- **Late starts.** `startsAt` is when the rule's expression first held: before the first
  send by its `for:` (up to 5 minutes); a few alerts start far in the past (a Prometheus
  that was restarted), beyond the allowed lateness.
- **Storms and bursts.** Every few hours one service fails: dozens to hundreds of its
  alerts start within a minute; every quarter of an hour or so a service has a smaller
  burst of 2 to 12.
- **Heartbeats.** One Watchdog per cluster, re-sent every interval, that stops for a
  quarter of an hour about once a day.
- **Requests.** Records are sent in evaluation slots: everything due in one slot goes
  out at its end in requests of up to `request_size` alerts, each request with its own
  arrival time (`received_at`), as the live pipeline stamps them.

With the defaults, 1,000,000 records span about 5 days of arrival time, 80 % of them
re-sends, with about 120,000 occurrences on some 95,000 fingerprints.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from ingest.fingerprint import fingerprint_labels
from rules import RuleSet
from rules.schema import (
    Absence,
    Condition,
    EventCount,
    Group,
    IncidentSpec,
    Rule,
    Temporal,
    TemporalOrdered,
    ValueCount,
)
from stormwatch.wire import Alert, Duration, iso8601

__all__ = ["ALERTNAMES", "Workload", "rules"]

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
_SEVERITIES = ("critical", "warning", "warning", "warning", "info")
_FIRING, _RESEND, _RESOLVED = 0, 1, 2


@dataclass(frozen=True)
class Workload:
    seed: int = 42
    services: int = 1000
    instances_per_service: int = 20
    clusters: int = 3
    start: float = 1_790_000_000.0
    occurrences_per_s: float = 0.27
    """New alerts per second of arrival time (storms come on top)."""
    resend_interval: float = 60.0
    mean_resends: float = 6.8
    """Re-sends of one occurrence, on average (geometric): 80 % of records are re-sends."""
    resolved_share: float = 0.7
    """Occurrences that end with a resolved record; the rest stop and expire."""
    far_late_share: float = 0.02
    storm_every_s: float = 3 * 3600.0
    storm_sizes: tuple[int, int] = (30, 200)
    burst_every_s: float = 900.0
    burst_sizes: tuple[int, int] = (2, 12)
    """Smaller trouble, more often: a few alerts of one service within a minute."""
    request_size: int = 100

    # -- label sets ---------------------------------------------------------------------

    def _labels(self, rng: random.Random, svc: int | None = None) -> dict[str, str]:
        svc = rng.randrange(self.services) if svc is None else svc
        name = rng.choice(ALERTNAMES)
        return {
            "alertname": name,
            "service": f"svc-{svc:04d}",
            "instance": f"10.{svc // 250}.{svc % 250}.{rng.randrange(self.instances_per_service)}:9100",
            "cluster": f"prod-{svc % self.clusters}",
            "namespace": f"ns-{svc % 40}",
            "severity": _SEVERITIES[(svc + ALERTNAMES.index(name)) % len(_SEVERITIES)],
            "team": f"team-{svc % 12}",
        }

    # -- the record stream ----------------------------------------------------------------

    def _occurrences(self, rng: random.Random) -> Iterator[tuple[float, dict[str, str], float]]:
        """(first send time, labels, startsAt) of every occurrence, in send order."""
        t = self.start
        next_storm = self.start + rng.uniform(600, self.storm_every_s)
        next_burst = self.start + rng.uniform(0, self.burst_every_s)
        while True:
            t += rng.expovariate(self.occurrences_per_s)
            while min(next_storm, next_burst) < t:
                if next_storm < next_burst:
                    at, sizes = next_storm, self.storm_sizes
                    next_storm += rng.expovariate(1 / self.storm_every_s)
                else:
                    at, sizes = next_burst, self.burst_sizes
                    next_burst += rng.expovariate(1 / self.burst_every_s)
                svc = rng.randrange(self.services)
                # Sent in time order: the heap of records orders them anyway.
                for _ in range(rng.randint(*sizes)):
                    first = at + rng.uniform(0, 60)
                    yield first, self._labels(rng, svc), first - rng.uniform(0, 30)
            lag = rng.uniform(0, 300)
            if rng.random() < self.far_late_share:
                lag += rng.uniform(1800, 7200)
            yield t, self._labels(rng), t - lag

    def _records(
        self, rng: random.Random
    ) -> Iterator[tuple[float, int, dict[str, str], float, float | None]]:
        """(natural time, kind, labels, startsAt, endsAt) in time order, forever."""
        heap: list[tuple[float, int, int, dict[str, str], float, float | None]] = []
        seq = 0
        occurrences = self._occurrences(rng)
        watchdogs = [
            {"alertname": "Watchdog", "cluster": f"prod-{c}", "severity": "none"}
            for c in range(self.clusters)
        ]
        for c, labels in enumerate(watchdogs):
            heapq.heappush(heap, (self.start + c, seq, _RESEND, labels, self.start, None))
            seq += 1
        pending = next(occurrences)
        p = 1 - 1 / (1 + self.mean_resends)
        while True:
            while pending[0] <= (heap[0][0] if heap else math.inf):
                first, labels, starts = pending
                n = int(math.log(1 - rng.random()) / math.log(p)) if p > 0 else 0
                end = first + (n + 1) * self.resend_interval * rng.uniform(0.5, 1.0)
                heapq.heappush(heap, (first, seq, _FIRING, labels, starts, None))
                seq += 1
                for k in range(1, n + 1):
                    at = first + k * self.resend_interval
                    heapq.heappush(heap, (at, seq, _RESEND, labels, starts, None))
                    seq += 1
                if rng.random() < self.resolved_share:
                    last = first + n * self.resend_interval
                    heapq.heappush(
                        heap,
                        (max(end, last + 1), seq, _RESOLVED, labels, starts, max(end, last + 1)),
                    )
                    seq += 1
                pending = next(occurrences)
            at, _, kind, labels, starts, ends = heapq.heappop(heap)
            if labels.get("alertname") == "Watchdog":
                # Re-sent every interval; stops for 15 minutes about once a day.
                gap = 900.0 if rng.random() < self.resend_interval / 86400 else self.resend_interval
                heapq.heappush(heap, (at + gap, seq, _RESEND, labels, starts, None))
                seq += 1
            yield at, kind, labels, starts, ends

    def requests(self, n: int) -> Iterator[list[Alert]]:
        """`n` records as the live pipeline receives them: requests of up to
        `request_size`, each with one arrival time, in arrival order."""
        rng = random.Random(self.seed)
        fingerprints: dict[tuple[tuple[str, str], ...], str] = {}
        slot_end = self.start + self.resend_interval
        slot: list[Alert] = []
        for made, (at, kind, labels, starts, ends) in enumerate(self._records(rng), start=1):
            if at >= slot_end:
                yield from self._send(slot, slot_end)
                slot = []
                slot_end += self.resend_interval * math.ceil(
                    (at - slot_end + 1e-9) / self.resend_interval
                )
            key = tuple(labels.items())
            fp = fingerprints.get(key)
            if fp is None:
                fp = fingerprints[key] = fingerprint_labels(labels)
            slot.append(
                Alert(
                    source="alertmanager",
                    fingerprint=fp,
                    status="resolved" if kind == _RESOLVED else "firing",
                    labels=labels,
                    annotations={
                        "summary": f"{labels['alertname']} on {labels.get('instance', labels['cluster'])}"
                    },
                    starts_at=starts,
                    ends_at=ends,
                    received_at=0.0,
                )
            )
            if made >= n:
                break
        yield from self._send(slot, slot_end)

    def _send(self, slot: list[Alert], at: float) -> Iterator[list[Alert]]:
        size = self.request_size
        for i in range(0, len(slot), size):
            stamp = at + i / size * 0.001  # each request its own instant
            yield [_stamped(a, stamp) for a in slot[i : i + size]]

    def alerts(self, n: int) -> list[Alert]:
        return [a for r in self.requests(n) for a in r]

    def am_payload(self, batch: list[Alert]) -> bytes:
        """A request as Prometheus POSTs it to /api/v2/alerts."""
        items = []
        for a in batch:
            item: dict[str, object] = {
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": iso8601(a.starts_at),
                "generatorURL": "http://prometheus:9090/graph",
            }
            if a.ends_at is not None:
                item["endsAt"] = iso8601(a.ends_at)
            items.append(item)
        return orjson.dumps(items)


def _stamped(a: Alert, received_at: float) -> Alert:
    return Alert(
        source=a.source,
        fingerprint=a.fingerprint,
        status=a.status,
        labels=a.labels,
        annotations=a.annotations,
        starts_at=a.starts_at,
        ends_at=a.ends_at,
        received_at=received_at,
    )


def rules(n: int = 50) -> RuleSet:
    """`n` rules of every correlation type, as a fleet would write them: the one the
    comparisons with SEC use (5 alerts of a service within 60s) first, then one rule of
    each other type, then per-team variants of them all."""
    d = Duration
    base = [
        Rule(
            name="service-burst",
            correlation=EventCount(
                group_by=["service"], timespan=d(60), condition=Condition(gte=5)
            ),
            incident=IncidentSpec(title="{service}: {count} alerts within 60s", severity="P2"),
        ),
        Rule(
            name="instances-down",
            match=['alertname="TargetDown"'],
            correlation=ValueCount(
                group_by=["service"], timespan=d(300), condition=Condition(gte=3, field="instance")
            ),
            incident=IncidentSpec(severity="P2"),
        ),
        Rule(name="errors", match=['alertname="HighErrorRate"']),
        Rule(name="latency", match=['alertname="HighLatency"']),
        Rule(
            name="errors-and-latency",
            correlation=Temporal(
                group_by=["service"], timespan=d(300), rules=["errors", "latency"]
            ),
            incident=IncidentSpec(severity="P2"),
        ),
        Rule(name="target-down", match=['alertname="TargetDown"']),
        Rule(name="crashloop", match=['alertname="PodCrashLooping"']),
        Rule(
            name="down-then-crashloop",
            correlation=TemporalOrdered(
                group_by=["service"], timespan=d(600), rules=["target-down", "crashloop"]
            ),
            incident=IncidentSpec(severity="P3"),
        ),
        Rule(
            name="watchdog-missing",
            match=['alertname="Watchdog"'],
            correlation=Absence(group_by=["cluster"], timespan=d(300)),
            incident=IncidentSpec(severity="P1"),
        ),
        Rule(
            name="team-group",
            match=['severity="critical"'],
            correlation=Group(group_by=["team"], group_wait=d(30), group_interval=d(300)),
            incident=IncidentSpec(severity="P2"),
        ),
    ]
    out = list(base)
    i = 0
    while len(out) < n:
        team = f"team-{i % 12}"
        name = ALERTNAMES[i % len(ALERTNAMES)]
        kind = i % 4
        if kind == 0:
            corr: object = EventCount(
                group_by=["service", "instance"], timespan=d(300), condition=Condition(gte=3)
            )
        elif kind == 1:
            corr = ValueCount(
                group_by=["namespace"], timespan=d(600), condition=Condition(gte=3, field="service")
            )
        elif kind == 2:
            corr = EventCount(group_by=["cluster"], timespan=d(120), condition=Condition(gte=20))
        else:
            corr = Group(group_by=["service"], group_wait=d(60), group_interval=d(300))
        out.append(
            Rule(
                name=f"r{i}-{name}-{team}",
                match=[f'alertname="{name}"', f'team="{team}"'],
                correlation=corr,  # type: ignore[arg-type]
                incident=IncidentSpec(title="{alertname} x{count}", severity="P3"),
            )
        )
        i += 1
    return RuleSet(rules=tuple(out[:n]) if n >= len(base) else tuple(out))
