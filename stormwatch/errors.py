"""The exception tree. Callers decide on attributes, never on message text.

```
StormwatchError
├── ConfigError(path, field)                    start refuses; reload refused, old config kept
├── RuleError(file, line, rule, field)          `rules check` exit 2; reload refused, old rules kept
├── PayloadError(source, field, reason)         HTTP 400/413/415 with a JSON body
├── Overloaded(retry_after_s)                   HTTP 429/503 + Retry-After; Kafka: pause partitions
├── StoreUnavailable(retry_after_s)             HTTP 503 + Retry-After; Kafka: pause partitions
│   └── StoreReset                              the store lost what we saved: write it whole
└── SinkError(sink, status, retry_after_s)
    ├── RetryableSinkError                      5xx, 429, 408, timeouts, connection errors
    └── PermanentSinkError                      other 4xx, rejected payload -> dead letter at once
```
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "Overloaded",
    "PayloadError",
    "PermanentSinkError",
    "RetryableSinkError",
    "RuleError",
    "SinkError",
    "StoreReset",
    "StoreUnavailable",
    "StormwatchError",
    "split_validation_message",
]


class StormwatchError(Exception):
    """Base of every error stormwatch raises on purpose."""


class ConfigError(StormwatchError):
    """The config file or an override is invalid. `path` is the file, `field` a `$.path`."""

    def __init__(self, message: str, *, path: str = "", field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.field = field

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.path, self.field) if p)
        return f"{where}: {self.message}" if where else self.message


class RuleError(StormwatchError):
    """A rule file is invalid; printed as `file:line: rule NAME: field: message`."""

    def __init__(
        self,
        message: str,
        *,
        file: str = "",
        line: int | None = None,
        rule: str = "",
        field: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.rule = rule
        self.field = field

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.rule:
            parts.append(f"rule {self.rule}")
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


class PayloadError(StormwatchError):
    """An incoming payload was rejected; nothing of it was accepted.

    `reason` is a closed set used as a metric label: invalid_json, invalid_payload,
    too_large, unsupported_media_type.
    """

    def __init__(
        self, message: str, *, source: str = "", field: str = "", reason: str = "invalid_payload"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.field = field
        self.reason = reason


class Overloaded(StormwatchError):
    """The ingest queue is full; the sender should retry after `retry_after_s`."""

    def __init__(self, message: str = "ingest queue full", *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreUnavailable(StormwatchError):
    """The state store cannot be reached; the batch was not saved. Every store error on
    every path (commit, outbox, remote records, load) is raised as this, never a
    client library's own."""

    def __init__(self, message: str = "state store unavailable", *, retry_after_s: float = 2.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreReset(StoreUnavailable):
    """The store no longer holds what this process last saved there (Redis restarted
    empty or from an older snapshot, or another process wrote the shard): nothing was
    written; the next commit must write the whole state, not a delta."""


class SinkError(StormwatchError):
    """A sink could not deliver. `retryable` decides what the outbox does next."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        sink: str = "",
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.sink = sink
        self.status = status
        self.retry_after_s = retry_after_s


class RetryableSinkError(SinkError):
    """Worth retrying: 5xx, 429, 408, timeouts, connection errors."""

    retryable = True


class PermanentSinkError(SinkError):
    """Not worth retrying: the request itself was refused; goes to dead letters at once."""

    retryable = False


def split_validation_message(text: str) -> tuple[str, str]:
    """msgspec's "Expected `str`, got `int` - at `$[0].labels`" -> (message, "$[0].labels").

    A top-level error has no path; it is "$".
    """
    message, sep, path = text.rpartition(" - at `")
    if not sep:
        return text, "$"
    return message, path.rstrip("`")
