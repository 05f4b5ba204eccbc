"""Silences and inhibition, as Alertmanager does them, over alerts and incidents.

- A **silence** mutes alerts: an alert matching an active silence is tracked (its
  re-sends are still duplicates) but feeds no rule. Silences carry their own start and
  end times and live in the engine's state, so they survive a snapshot.
- An **inhibit rule** mutes incidents: while an open incident of a source severity (say
  P1) shares the `equal` labels with another open incident of a target severity (P2-P4),
  the target's events are held back. An incident held back from the start is announced
  (`opened`) once the inhibitor resolves, if it is still open then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from rules import Matcher, parse_matchers
from stormwatch.wire import Severity

__all__ = ["InhibitRule", "Silence", "active_silence", "inhibitor_of"]


class Silence(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    id: str
    matchers: list[str]
    starts_at: float
    ends_at: float
    created_by: str = ""
    comment: str = ""

    def compiled(self) -> list[Matcher]:
        return parse_matchers(self.matchers)


class InhibitRule(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """`correlate.inhibit` in the config: the default mutes P2-P4 of a service while a
    P1 of the same service is open."""

    source_severity: list[Severity] = msgspec.field(default_factory=lambda: ["P1"])
    target_severity: list[Severity] = msgspec.field(default_factory=lambda: ["P2", "P3", "P4"])
    equal: list[str] = msgspec.field(default_factory=lambda: ["service"])


def active_silence(
    silences: Iterable[tuple[Silence, list[Matcher]]], labels: Mapping[str, str], now: float
) -> str | None:
    """The id of the first silence active at `now` whose matchers all match, or None."""
    for silence, matchers in silences:
        if silence.starts_at <= now < silence.ends_at and all(m.matches(labels) for m in matchers):  # type: ignore[arg-type]
            return silence.id
    return None


def inhibitor_of(
    rules: Iterable[InhibitRule],
    target_severity: str,
    target_labels: Mapping[str, str],
    open_incidents: Iterable[tuple[str, str, Mapping[str, str]]],
    target_key: str,
) -> str | None:
    """The key of an open incident that inhibits the target, or None.

    `open_incidents` yields (key, severity, labels). As in Alertmanager, a missing label
    equals an empty one, and an incident never inhibits itself.
    """
    for rule in rules:
        if target_severity not in rule.target_severity:
            continue
        want = tuple(target_labels.get(name, "") for name in rule.equal)
        for key, severity, labels in open_incidents:
            if key == target_key or severity not in rule.source_severity:
                continue
            if tuple(labels.get(name, "") for name in rule.equal) == want:
                return key
    return None
