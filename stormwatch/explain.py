"""`GET /api/v1/incidents/{key}/explain`: which rule, which window, which alerts, why now."""

from __future__ import annotations

from typing import Any

import msgspec

from correlate import Engine
from rules import RuleSet
from stormwatch.wire import encode_hook

__all__ = ["explain"]


def explain(engine: Engine, ruleset: RuleSet, key: str) -> dict[str, Any] | None:
    """Everything that decided an incident, as JSON-ready builtins; None if unknown."""
    state = engine.incident_state(key)
    incident = engine.incident(key)
    if state is None or incident is None:
        return None
    rule = ruleset.by_name().get(state.rule)
    origin = ruleset.origins.get(state.rule)
    tracked = engine.state.tracked
    window = []
    for t, fp, value in state.window:
        entry: dict[str, Any] = {"event_time": t, "fingerprint": fp}
        if value:
            entry["value"] = value
        alert = tracked.get(fp)
        if alert is not None:
            entry["labels"] = alert.labels
            entry["status"] = alert.status
        window.append(entry)
    return {
        "incident": msgspec.to_builtins(incident, enc_hook=encode_hook),
        "why": state.why,
        "rule": {
            "name": state.rule,
            "file": origin.file if origin else None,
            "line": origin.line if origin else None,
            "definition": msgspec.to_builtins(rule, enc_hook=encode_hook) if rule else None,
            "live": rule is not None,
        },
        "window": window,
        "opened_by": {
            "event_time": state.opened_at,
            "detected_at": state.detected_at,
        },
        "inhibited_by": state.inhibited_by or None,
        "timeline": msgspec.to_builtins(incident.timeline),
    }
