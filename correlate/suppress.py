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

__all__ = ["InhibitIndex", "InhibitRule", "Silence", "active_silence"]


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


class InhibitIndex:
    """Open incidents that may inhibit others, and incidents held back, indexed by what
    inhibition compares: per inhibit rule, the values of its `equal` labels. Deciding
    whether an incident is held back costs a dict lookup per rule, and an inhibitor that
    goes away re-checks only the incidents that shared its values (a scan of every open
    inhibitor per incident was quadratic: half a daemon's time in a storm of P1s;
    bench/README.md).

    As in Alertmanager, a missing label equals an empty one, and an incident never
    inhibits itself. Iteration order is insertion order, so the inhibitor named is the
    same in every replica and replay.
    """

    def __init__(self, rules: Iterable[InhibitRule]) -> None:
        self.rules = list(rules)
        self.sources = frozenset(s for r in self.rules for s in r.source_severity)
        self.targets = frozenset(s for r in self.rules for s in r.target_severity)
        self._inhibitors: list[dict[tuple[str, ...], dict[str, None]]] = [{} for _ in self.rules]
        self._inhibitor_at: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
        self._held: list[dict[tuple[str, ...], dict[str, None]]] = [{} for _ in self.rules]
        self._held_at: dict[str, list[tuple[int, tuple[str, ...]]]] = {}

    def _where(
        self, severity: str, labels: Mapping[str, str], *, source: bool
    ) -> list[tuple[int, tuple[str, ...]]]:
        return [
            (i, tuple(labels.get(name, "") for name in r.equal))
            for i, r in enumerate(self.rules)
            if severity in (r.source_severity if source else r.target_severity)
        ]

    # -- inhibitors ---------------------------------------------------------------------

    def set_inhibitor(self, key: str, severity: str, labels: Mapping[str, str]) -> None:
        self.drop_inhibitor(key)
        at = self._where(severity, labels, source=True)
        if at:
            self._inhibitor_at[key] = at
            for i, want in at:
                self._inhibitors[i].setdefault(want, {})[key] = None

    def drop_inhibitor(self, key: str) -> list[tuple[int, tuple[str, ...]]]:
        """Stop `key` inhibiting; returns where it did (to re-check what it held)."""
        at = self._inhibitor_at.pop(key, [])
        for i, want in at:
            keys = self._inhibitors[i].get(want)
            if keys is not None:
                keys.pop(key, None)
                if not keys:
                    del self._inhibitors[i][want]
        return at

    def is_inhibitor(self, key: str) -> bool:
        return key in self._inhibitor_at

    def inhibitor_of(self, key: str, severity: str, labels: Mapping[str, str]) -> str | None:
        """The key of an open incident that holds this one back, or None."""
        if severity not in self.targets:
            return None
        for i, want in self._where(severity, labels, source=False):
            for other in self._inhibitors[i].get(want, ()):
                if other != key:
                    return other
        return None

    # -- held incidents -----------------------------------------------------------------

    def hold(self, key: str, severity: str, labels: Mapping[str, str]) -> None:
        self.release(key)
        at = self._where(severity, labels, source=False)
        self._held_at[key] = at
        for i, want in at:
            self._held[i].setdefault(want, {})[key] = None

    def release(self, key: str) -> None:
        for i, want in self._held_at.pop(key, []):
            keys = self._held[i].get(want)
            if keys is not None:
                keys.pop(key, None)
                if not keys:
                    del self._held[i][want]

    def held(self) -> list[str]:
        return list(self._held_at)

    def held_at(self, where: list[tuple[int, tuple[str, ...]]]) -> list[str]:
        """The held incidents that shared these (rule, values) with an inhibitor."""
        out: dict[str, None] = {}
        for i, want in where:
            out.update(self._held[i].get(want, {}))
        return list(out)

    def clear(self) -> None:
        for d in (*self._inhibitors, *self._held):
            d.clear()
        self._inhibitor_at.clear()
        self._held_at.clear()
