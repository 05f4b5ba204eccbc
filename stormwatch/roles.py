"""What one process does: `all` (today's single process), `receiver` or `correlator`.

```
 HTTP, syslog, files, Kafka ──► receiver ──► topic keyed by shard_key ──► correlator(s)
                               (normalise,    (one partition = one shard:   (one engine per
                                stamp, tick)   its alerts, its ticks)        partition)
```

- `all` (the default): intake and correlation in one process, in memory between them.
- `receiver`: takes every source in and produces the normalised alerts to
  `partitioning.topic`, partitioned by the value of the alert's `shard_key` label, plus
  a tick to every partition each `tick_interval` (stormwatch/receiver.py).
- `correlator`: a consumer group member; each partition it is assigned is one engine
  and one state shard in Redis, committed with the partition's offset and fenced by
  owner (stormwatch/partitions.py).

A partition's engine sees only the alerts of its own shard-key values, so a rule can
correlate in it only if its group-by contains the shard key: every group then lives in
one partition. `check_shard_key` refuses any other rule (and any inhibit rule whose
`equal` lacks the key) at load, naming it.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import msgspec

from correlate.suppress import InhibitRule
from rules import RuleSet
from stormwatch.errors import RuleError
from stormwatch.wire import Duration

__all__ = ["PartitionConfig", "Role", "check_shard_key"]

Role: TypeAlias = Literal["all", "receiver", "correlator"]


class PartitionConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """`partitioning:` in the config: the topic between receivers and correlators."""

    bootstrap: str
    topic: str = "stormwatch.alerts"
    partitions: int = 6
    """Partitions the receiver creates the topic with when it does not exist; the most
    correlators that can share the work."""
    shard_key: str = "service"
    """The label whose value picks an alert's partition (an alert without it goes to the
    partition of the empty value)."""
    group_id: str = "stormwatch-correlators"
    instance_id: str = ""
    """Kafka static membership (`group.instance.id`, e.g. the pod name): a restarted
    member takes its partitions back without a rebalance, where the broker supports it."""
    session_timeout: Duration = Duration(1.5)
    """How soon the group notices a dead correlator, and a restarted one is consuming
    again (Apache Kafka refuses less than its group.min.session.timeout.ms, 6 s by
    default: set 6s there, with instance_id)."""
    heartbeat_interval: Duration = Duration(0.5)
    tick_interval: Duration = Duration(1)
    """How often the receiver sends each partition a tick (time for idle partitions)."""
    max_records: int = 2000
    """Messages per fetch; a partition's share of one fetch is one commit."""


def check_shard_key(ruleset: RuleSet, shard_key: str, inhibit: list[InhibitRule]) -> None:
    """Raise RuleError naming each rule whose groups could span partitions."""
    problems: list[str] = []
    for rule in ruleset.rules:
        if rule.correlation is None or not rule.enabled:
            continue
        group_by = list(getattr(rule.correlation, "group_by", []) or [])
        if shard_key not in group_by:
            origin = ruleset.origins.get(rule.name)
            where = f" ({origin.file})" if origin is not None else ""
            problems.append(
                f"rule {rule.name!r}{where} groups by [{', '.join(group_by)}], which does not "
                f"contain the shard key {shard_key!r}"
            )
    for i, inhibit_rule in enumerate(inhibit):
        if shard_key not in inhibit_rule.equal:
            problems.append(
                f"correlate.inhibit[{i}] compares [{', '.join(inhibit_rule.equal)}], which does not "
                f"contain the shard key {shard_key!r}"
            )
    if problems:
        msg = (
            "in partitioned mode every group must live in one partition: "
            + "; ".join(problems)
            + ". Run such a rule on its own topic keyed by its group-by (README: Scale-out)"
        )
        raise RuleError(msg)
