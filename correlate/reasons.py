"""The sentences an incident carries about itself: why it opened, why it resolved."""

from __future__ import annotations

from bisect import bisect_left

import msgspec

from correlate.rulebook import LiveRule
from correlate.state import IncidentState, Tracked
from stormwatch.wire import format_duration

__all__ = [
    "describe_condition",
    "describe_group",
    "first_at_or_after",
    "resolve_reason",
    "unique_members",
    "why_opened",
]


def unique_members(members: list[Tracked]) -> list[Tracked]:
    seen: dict[str, Tracked] = {}
    for m in members:
        seen.setdefault(m.alert.fingerprint, m)
    return list(seen.values())


def first_at_or_after(events: list[tuple[float, str, str]], t: float) -> int:
    return bisect_left(events, t, key=lambda e: e[0])


def resolve_reason(inc: IncidentState) -> str:
    return inc.timeline[-1].detail if inc.timeline else "resolved"


def describe_condition(cond: object) -> str:
    if cond is None:
        return "all rules"
    fields = msgspec.structs.asdict(cond)  # type: ignore[arg-type]
    return ", ".join(f"{k} {v:g}" for k, v in fields.items() if v is not None and k != "field")


def describe_group(group: dict[str, str]) -> str:
    if not group:
        return "all matching alerts"
    return ", ".join(f'{k}="{v}"' for k, v in group.items())


def why_opened(
    lr: LiveRule, n: int, group: dict[str, str], window: list[tuple[float, str, str]]
) -> str:
    span = format_duration(lr.timespan)
    where = describe_group(group)
    if lr.kind == "count":
        return f"{n} matching alerts within {span} (event_count {describe_condition(lr.condition)}) for {where}"
    if lr.kind == "value":
        distinct = len({e[2] for e in window})
        return f"{distinct} distinct {'+'.join(lr.field)} within {span} (value_count {describe_condition(lr.condition)}) for {where}"
    if lr.kind == "temporal":
        return f"rules {', '.join(sorted({e[2] for e in window}))} all matched within {span} for {where}"
    return f"rules {' -> '.join(e[2] for e in window)} matched in order within {span} for {where}"
