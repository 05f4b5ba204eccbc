"""The normalised alert severity: one of four values, whatever the source called it.

Every normaliser sets `Alert.severity` so one rule (`alert_severity: [critical, high]`)
fits every source. The vendor's own value stays where the vendor put it (a `severity`
label, `kibana.alert.severity`, Splunk's `urgency`); this table only reads it.

| normalised | values read as it (case-insensitive)                                   |
| ---------- | ---------------------------------------------------------------------- |
| `critical` | critical, crit, page, fatal, emergency, emerg, alert, disaster, p1, sev1 |
| `high`     | high, error, err, major, severe, p2, sev2                              |
| `warning`  | warning, warn, medium, moderate, average, minor, low, p3, p4, sev3, sev4 |
| `info`     | info, informational, information, notice, debug, none, ok, p5, sev5, not classified |

Bare numbers are not read: syslog counts 0 as the worst, Zabbix 5 and Datadog 1, so a
mapping says which it means. Anything else, or nothing at all, is `warning`: an alert
nobody graded is still an alert, and `warning` is what most senders mean by default.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

__all__ = ["DEFAULT_SEVERITY", "SEVERITIES", "AlertSeverity", "normalize_severity"]

AlertSeverity: TypeAlias = Literal["critical", "high", "warning", "info"]
SEVERITIES: tuple[AlertSeverity, ...] = ("critical", "high", "warning", "info")
DEFAULT_SEVERITY: AlertSeverity = "warning"

_NAMES: dict[AlertSeverity, tuple[str, ...]] = {
    "critical": (
        "critical",
        "crit",
        "page",
        "fatal",
        "emergency",
        "emerg",
        "alert",
        "disaster",
        "p1",
        "sev1",
    ),
    "high": ("high", "error", "err", "major", "severe", "p2", "sev2"),
    "warning": (
        "warning",
        "warn",
        "medium",
        "moderate",
        "average",
        "minor",
        "low",
        "p3",
        "p4",
        "sev3",
        "sev4",
    ),
    "info": (
        "info",
        "informational",
        "information",
        "notice",
        "debug",
        "none",
        "ok",
        "p5",
        "sev5",
        "not classified",
    ),
}
_TABLE: Final[dict[str, AlertSeverity]] = {
    name: sev for sev, names in _NAMES.items() for name in names
}


def normalize_severity(value: object, default: AlertSeverity = DEFAULT_SEVERITY) -> AlertSeverity:
    """A vendor's severity word (or number) -> critical | high | warning | info.

    >>> normalize_severity("Error"), normalize_severity(None), normalize_severity("P1")
    ('high', 'warning', 'critical')
    """
    if value is None or isinstance(value, bool):
        return default
    found = _TABLE.get(value) if isinstance(value, str) else None  # the common case: exact
    if found is None:
        found = _TABLE.get(str(value).strip().lower())
    return found or default
