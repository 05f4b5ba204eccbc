"""Read-only views the App hands to people and tools: the status page, Alertmanager's
API and the CLI. Plain Structs, so each consumer renders them its own way and none of
them reaches into the engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from prometheus_client import CollectorRegistry

from stormwatch.wire import Alert

if TYPE_CHECKING:
    from stormwatch.app import App

__all__ = [
    "AlertView",
    "RulesStatus",
    "SinkHealth",
    "SourceIntake",
    "deliveries",
    "intake_by_source",
    "rules_status",
    "sink_health",
]


class AlertView(msgspec.Struct, kw_only=True):
    """One alert the daemon tracks, with what mutes it."""

    alert: Alert
    status: str
    """firing or resolved"""
    first_seen: float
    last_seen: float
    ends_at: float
    duplicates: int = 0
    silenced_by: list[str] = []
    inhibited_by: list[str] = []
    """Keys of the open incidents whose inhibition holds this alert's incidents back."""
    incidents: list[str] = []


class SinkHealth(msgspec.Struct, kw_only=True):
    name: str
    type: str
    pending: int
    oldest_pending_at: float | None
    """Processing time of the oldest event still waiting, if any."""
    dead_letters: int
    dropped_dead_letters: int
    delivered: dict[str, float]
    """Delivery attempts by outcome (ok, retryable, permanent) since start."""
    breaker: str
    """The sink's circuit breaker: closed, half-open (probing) or open."""
    draining: bool
    """The sink's outbox drain task is alive."""


class SourceIntake(msgspec.Struct, kw_only=True):
    source: str
    firing: float = 0
    resolved: float = 0
    deduplicated: float = 0
    rejected: dict[str, float] = {}


class RulesStatus(msgspec.Struct, kw_only=True):
    paths: list[str]
    files: dict[str, int]
    """file -> rules loaded from it"""
    rules: list[tuple[str, str, int | None, str]]
    """(name, file, line, correlation type) per rule"""
    last_reload_ok: bool
    last_reload_at: float
    last_error: str = ""


def intake_by_source(registry: CollectorRegistry) -> list[SourceIntake]:
    """Per-source counters read back from the App's own registry."""
    out: dict[str, SourceIntake] = {}
    for family in registry.collect():
        for sample in family.samples:
            source = sample.labels.get("source")
            if source is None or not sample.name.endswith("_total"):
                continue
            row = out.setdefault(source, SourceIntake(source=source))
            if sample.name == "stormwatch_alerts_received_total":
                status = sample.labels.get("status", "")
                if status == "firing":
                    row.firing = sample.value
                elif status == "resolved":
                    row.resolved = sample.value
            elif sample.name == "stormwatch_alerts_deduplicated_total":
                row.deduplicated = sample.value
            elif sample.name == "stormwatch_alerts_rejected_total" and sample.value:
                row.rejected[sample.labels.get("reason", "")] = sample.value
    return sorted(out.values(), key=lambda r: r.source)


async def sink_health(app: App) -> list[SinkHealth]:
    out = []
    for row in await app.sink_health():
        name = str(row["sink"])
        age = float(row["oldest_pending_age_s"])  # type: ignore[arg-type]
        out.append(
            SinkHealth(
                name=name,
                type=str(row["type"]),
                pending=int(row["pending_incidents"]),  # type: ignore[call-overload]
                oldest_pending_at=app.now() - age if age else None,
                dead_letters=int(row["dead_letters"]),  # type: ignore[call-overload]
                dropped_dead_letters=app.dropped_dead_letters(name),
                delivered={
                    o: app.metrics.registry.get_sample_value(
                        "stormwatch_sink_requests_total", {"sink": name, "outcome": o}
                    )
                    or 0.0
                    for o in ("ok", "retryable", "permanent")
                },
                breaker=str(row["breaker"]),
                draining=app.drain_alive(name),
            )
        )
    return out


async def deliveries(app: App, keys: list[str]) -> dict[str, dict[str, str]]:
    """incident key -> {sink: "pending" | "dead letter"} for the incidents shown."""
    out: dict[str, dict[str, str]] = {}
    wanted = set(keys)
    for name in app.sinks:
        for d in await app.dead_letters(name):
            key = d.entry.event.incident.key
            if key in wanted:
                out.setdefault(key, {})[name] = "dead letter"
        for key in keys:
            slot = await app.delivery_of(key).outbox.slot(name, key)
            if slot is not None and slot.events:
                out.setdefault(key, {})[name] = "pending"
    return out


def rules_status(app: App) -> RulesStatus:
    rs = app.ruleset
    per_file = dict.fromkeys(rs.files, 0)
    for origin in rs.origins.values():
        per_file[origin.file] = per_file.get(origin.file, 0) + 1
    rows = []
    for r in rs.rules:
        o = rs.origins.get(r.name)
        kind = r.correlation.__struct_config__.tag if r.correlation else "base"
        rows.append((r.name, o.file if o else "", o.line if o else None, str(kind)))
    return RulesStatus(
        paths=app.rule_paths,
        files=per_file,
        rules=rows,
        last_reload_ok=not app.last_reload_error,
        last_reload_at=app.metrics.registry.get_sample_value(
            "stormwatch_rules_last_reload_success_timestamp_seconds"
        )
        or 0.0,
        last_error=app.last_reload_error,
    )
