"""The sentences an incident carries about itself: why it opened, why it resolved."""

from __future__ import annotations

import msgspec

from correlate.state import IncidentState

__all__ = ["describe_condition", "describe_group", "resolve_reason"]


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
