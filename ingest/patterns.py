"""Log patterns, SEC-style: a regex whose named groups become labels of an alert.

```yaml
patterns:
  - alertname: SSHLoginFailed
    program: sshd                       # only lines of this program (syslog tag/app-name)
    regex: 'Failed password for (?:invalid user )?(?P<user>\\S+) from (?P<src_ip>\\S+)'
    severity: warning                   # critical, high, warning (default), info
    labels: {service: ssh}
    annotations: {summary: "failed login for {user} from {src_ip}"}
  - alertname: DiskFull
    regex: 'No space left on device: (?P<mount>\\S+)'
    resolve: 'Space available again on (?P<mount>\\S+)'   # same groups: resolves it
    ttl: 1h                             # firing until resolved, or this long after the last line
```

The first pattern whose `regex` (or `resolve`) matches the message wins; a line that
matches none is counted, not an alert. The labels are `alertname`, the pattern's
`labels`, every named group that matched, and the line's `host` and `program` when
its syslog header names them (a pattern's own labels and groups win).

A pattern without `resolve` describes an event: every line is one occurrence, so five
failed logins are five alerts that the correlation rules count (the fingerprint hashes
the labels with the line's time and text: the same line read twice is still one). It
resolves after `ttl`, else after `correlate.resolve_timeout`. A pattern with `resolve`
describes a state: its alert is identified by its labels alone, repeats are duplicates,
and a line matching `resolve` with the same group values resolves it.
"""

from __future__ import annotations

import re

import msgspec

from ingest.fingerprint import fingerprint_labels
from ingest.normalize.severity import AlertSeverity
from ingest.syslog import LogLine
from stormwatch.wire import Alert, Duration

__all__ = ["LogPattern", "PatternSet"]

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_OCCURRENCE = "\x00occurrence"
"""A key no label can have (labels come from regex group names): the per-line part of
an event pattern's fingerprint."""
_MAX_MESSAGE = 4096
_MAX_AHEAD_S = 86400.0


def _compile(text: str, field: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as err:
        msg = f"{field}: invalid regex {text!r}: {err}"
        raise ValueError(msg) from err


class LogPattern(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    alertname: str
    regex: str
    severity: AlertSeverity = "warning"
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    """`{label}` placeholders are filled from the alert's labels."""
    program: str | None = None
    resolve: str | None = None
    ttl: Duration | None = None

    def __post_init__(self) -> None:
        if not self.alertname:
            raise ValueError("alertname must not be empty")
        groups = set(_compile(self.regex, "regex").groupindex)
        if self.resolve is not None:
            resolve_groups = set(_compile(self.resolve, "resolve").groupindex)
            if resolve_groups != groups:
                msg = (
                    "resolve must capture the same named groups as regex "
                    f"({', '.join(sorted(groups)) or 'none'}), so it finds the alert to resolve"
                )
                raise ValueError(msg)
        if self.ttl is not None and self.ttl <= 0:
            raise ValueError("ttl must be positive")


class _Compiled:
    __slots__ = ("pattern", "regex", "resolve")

    def __init__(self, pattern: LogPattern) -> None:
        self.pattern = pattern
        self.regex = re.compile(pattern.regex)
        self.resolve = re.compile(pattern.resolve) if pattern.resolve else None


def _fill(template: str, labels: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: labels.get(m.group(1), m.group(0)), template)


class PatternSet:
    """A source's patterns, compiled once; `alert` turns a matching line into an Alert."""

    def __init__(self, patterns: list[LogPattern]) -> None:
        self._patterns = [_Compiled(p) for p in patterns]

    def __len__(self) -> int:
        return len(self._patterns)

    def alert(
        self, line: LogLine, text: str, source: str, received_at: float, origin: str = ""
    ) -> Alert | None:
        """The alert of the first pattern that matches `line`, or None."""
        for c in self._patterns:
            p = c.pattern
            if p.program is not None and p.program != line.program:
                continue
            m = c.regex.search(line.message)
            resolved = False
            if m is None and c.resolve is not None:
                m = c.resolve.search(line.message)
                resolved = m is not None
            if m is None:
                continue
            return self._build(p, m, line, text, source, received_at, origin, resolved)
        return None

    def _build(
        self,
        p: LogPattern,
        m: re.Match[str],
        line: LogLine,
        text: str,
        source: str,
        received_at: float,
        origin: str,
        resolved: bool,
    ) -> Alert:
        labels = {"alertname": p.alertname}
        for key, value in (("host", line.host), ("program", line.program)):
            if value:
                labels[key] = value
        labels.update(p.labels)
        labels.update({k: v for k, v in m.groupdict().items() if v})
        when = line.timestamp
        # A sender's clock that is off by more than a day is not the event's time.
        starts_at = (
            when if when is not None and 0 <= when <= received_at + _MAX_AHEAD_S else received_at
        )
        message = line.message[:_MAX_MESSAGE]
        if p.resolve is None:
            identity = {**labels, _OCCURRENCE: f"{starts_at!r}\x00{text}"}
            fingerprint = fingerprint_labels(identity)
        else:
            fingerprint = fingerprint_labels(labels)
        annotations = {"message": message}
        if origin:
            annotations["log_file"] = origin
        annotations.update({k: _fill(v, labels) for k, v in p.annotations.items()})
        ends_at = starts_at if resolved else (starts_at + p.ttl if p.ttl else None)
        return Alert(
            source=source,
            fingerprint=fingerprint,
            status="resolved" if resolved else "firing",
            labels=labels,
            severity=p.severity,
            annotations=annotations,
            starts_at=starts_at,
            ends_at=ends_at,
            received_at=received_at,
            raw=msgspec.Raw(msgspec.json.encode(text[:_MAX_MESSAGE])),
        )
