"""`RuleSet`: the validated rules the engine runs, with where each came from."""

from __future__ import annotations

import hashlib

import msgspec

from rules.schema import Rule
from stormwatch.wire import encode_hook

__all__ = ["Origin", "RuleSet", "rule_fingerprint"]


class Origin(msgspec.Struct, frozen=True, kw_only=True):
    """Where a rule was defined, for error messages and `explain`."""

    file: str
    line: int | None = None


class RuleSet(msgspec.Struct, frozen=True, kw_only=True):
    """An immutable, checked set of rules; a reload builds a new one and swaps it in."""

    rules: tuple[Rule, ...] = ()
    origins: dict[str, Origin] = {}
    files: tuple[str, ...] = ()
    """The files the rules were read from, in load order (logged at start)."""

    def by_name(self) -> dict[str, Rule]:
        return {r.name: r for r in self.rules}

    def __len__(self) -> int:
        return len(self.rules)


_encoder = msgspec.json.Encoder(order="sorted", enc_hook=encode_hook)


def rule_fingerprint(rule: Rule) -> str:
    """A hash of what decides a rule's window state: its match and correlation.

    Window state is keyed by it, so a reload that leaves a rule's match and correlation
    unchanged keeps its live windows, and a changed rule starts afresh (SEC keeps state
    per unchanged file; we do it per rule). Title, severity and classification are not
    part of it: changing how an incident is described must not reset a window.
    """
    parts: list[object] = [rule.name, rule.match, rule.source, rule.correlation, rule.resolve]
    if rule.alert_severity:  # only when set, so rules without it keep their hash (and windows)
        parts.append(rule.alert_severity)
    body = _encoder.encode(parts)
    return hashlib.blake2b(body, digest_size=8).hexdigest()
