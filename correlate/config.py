"""`EngineConfig`: how the core treats time and memory (`correlate:` in the config file).

A module of its own, apart from the engine, because it is a msgspec Struct: the
engine's module is compiled with mypyc (setup.py), which cannot build Struct classes.
"""

from __future__ import annotations

import msgspec

from correlate.suppress import InhibitRule
from stormwatch.wire import Duration

__all__ = ["EngineConfig"]


class EngineConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """How the core treats time and memory; `correlate:` in the config file."""

    resolve_timeout: Duration = Duration(300)
    """A firing alert without `endsAt` resolves this long after its last arrival."""
    allowed_lateness: Duration = Duration(600)
    """How far behind the watermark an alert may arrive and still feed windows.
    Prometheus alerts arrive after their rule's `for:` with `startsAt` at its start,
    so this must exceed the longest `for:` in use."""
    max_alerts_per_incident: int = 100
    """Alerts listed on an incident; beyond it they are counted, not listed (storms)."""
    update_interval: Duration = Duration(10)
    """Least time between two `updated` events of one incident; opened and resolved
    are sent at once. Alertmanager's `group_interval` plays the same part."""
    duplicates_interval: Duration = Duration(300)
    """Least time between two `updated` events whose only change is re-sent alerts
    (their duplicate counts): Prometheus re-sends every alert each evaluation. Five
    minutes, Alertmanager's default `group_interval`: the ticketing and paging sinks
    drop such events, and at one a minute they were three quarters of all events
    (bench/README.md, Kafka)."""
    max_groups_per_rule: int = 50_000
    """Live windows one rule may keep; alerts of new groups beyond it are counted, not kept."""
    retention: Duration = Duration(900)
    """How long resolved alerts and incidents are remembered (re-sends, explain)."""
    inhibit: list[InhibitRule] = msgspec.field(default_factory=lambda: [InhibitRule()])
    """Inhibit rules; the default holds back P2-P4 incidents of a service while a P1
    incident of the same service is open. `inhibit: []` turns inhibition off."""
