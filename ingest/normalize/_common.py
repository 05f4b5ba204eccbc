"""What every normaliser shares: msgspec error translation and label checks."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import msgspec

from ingest.fingerprint import fingerprint_labels
from stormwatch.errors import PayloadError, split_validation_message

__all__ = [
    "MAX_AHEAD_S",
    "MAX_LABEL_VALUE",
    "ZERO_TIME",
    "check_labels",
    "check_times",
    "decode",
    "epoch",
    "epoch_text",
    "event_times",
    "label_value",
    "parse_time",
    "time_error",
    "vendor_fingerprint",
]

T = TypeVar("T")

ZERO_TIME: Final = -62135596800.0
"""Go's zero time (0001-01-01T00:00:00Z) as epoch seconds: Alertmanager's "unset"."""
MAX_LABEL_VALUE: Final = 1024
"""Characters kept of a label value built from a vendor's field (a path, a user name);
longer free text belongs in annotations."""
MAX_AHEAD_S: Final = 86400.0
"""How far ahead of its arrival an alert's time may lie: clocks drift by seconds, not by
a day; a time beyond it is a bug upstream, and would pin windows and resolve deadlines."""


def decode(decoder: msgspec.json.Decoder[T], body: bytes, source: str) -> T:
    """Decode with a prebuilt decoder, turning msgspec's errors into PayloadError."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as err:
        message, path = split_validation_message(str(err))
        if "[...]" in path:
            path = _name_the_key(body, path)
        raise PayloadError(message, source=source, field=path, reason="invalid_payload") from err
    except msgspec.DecodeError as err:
        raise PayloadError(f"malformed JSON: {err}", source=source, reason="invalid_json") from err
    except RecursionError as err:  # the HTTP source checks depth first; Kafka relies on this
        msg = "JSON nested too deeply to decode"
        raise PayloadError(msg, source=source, reason="too_deep") from err


def _name_the_key(body: bytes, path: str) -> str:
    """msgspec writes a bad dict value's key as `[...]`; find the key, so the error says
    `$[0].labels.alertname` rather than `$[0].labels[...]`. Error path only."""
    try:
        node: Any = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return path  # a body too deep to walk: the path as msgspec gave it
    out = "$"
    for index, key, dots in re.findall(
        r"\[(\d+)\]|\.([^.\[]+)|(\[\.\.\.\])", path.removeprefix("$")
    ):
        if index and isinstance(node, list) and int(index) < len(node):
            node, out = node[int(index)], f"{out}[{index}]"
        elif key and isinstance(node, dict) and key in node:
            node, out = node[key], f"{out}.{key}"
        elif dots and isinstance(node, dict):
            bad = next((k for k, v in node.items() if not isinstance(v, str)), None)
            if bad is None:
                return path
            node, out = node[bad], f"{out}.{bad}"
        else:
            return path
    return out


def epoch(value: datetime | None, default: float | None) -> float | None:
    """A decoded timestamp as epoch seconds; Go's zero time counts as unset."""
    if value is None:
        return default
    ts = value.timestamp()
    return default if ts <= ZERO_TIME + 1 else ts


_EPOCHS_MAX: Final = 10_000
_epochs: Final[dict[str, float]] = {}
"""RFC 3339 text -> epoch seconds. Prometheus sends one `endsAt` for every alert of a rule's
evaluation and the same `startsAt` on every re-send of an alert, so most texts were seen
moments ago: a hit costs a dict lookup where decoding a datetime and taking its timestamp
cost about 0.2 us each (bench/README.md). Dropped whole when full."""


def epoch_text(value: str | None) -> float | None:
    """An RFC 3339 text as epoch seconds, parsed as the JSON decoder parses a `datetime`
    (so a time without an offset means what it would there); Go's zero time counts as
    unset. Raises msgspec.ValidationError: the caller names the field (`time_error`), as
    building its path for every alert would cost more than the lookup."""
    if value is None:
        return None
    ts = _epochs.get(value)
    if ts is None:
        when = msgspec.convert(value, datetime)
        if len(_epochs) >= _EPOCHS_MAX:
            _epochs.clear()
        ts = _epochs[value] = when.timestamp()
    return None if ts <= ZERO_TIME + 1 else ts


def time_error(times: dict[str, str | None], source: str, at: str) -> PayloadError:
    """The error for the first of `times` (field name -> text) that `epoch_text` refuses;
    `at` is the item's `$.path`."""
    for name, value in times.items():
        try:
            epoch_text(value)
        except msgspec.ValidationError as err:
            return PayloadError(str(err), source=source, field=f"{at}.{name}")
    return PayloadError("invalid time", source=source, field=at)


def label_value(value: Any) -> str:
    """A JSON value as a label value: scalars as text (`true`, `47` for 47.0), lists of
    them joined with `,` (multi-value fields), "" for nothing or an object."""
    if isinstance(value, str):
        return value[:MAX_LABEL_VALUE]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, list):  # one level only: a list of lists is not a label value
        parts = (label_value(v) for v in value if not isinstance(v, list | dict))
        return ",".join(p for p in parts if p)[:MAX_LABEL_VALUE]
    return ""


def vendor_fingerprint(key: str, vendor_id: str, labels: dict[str, str]) -> str:
    """The fingerprint of an alert the vendor identifies itself (Elastic's alert uuid, a
    notable's event id), stable while its labels change; else of its labels."""
    return fingerprint_labels({key: vendor_id}) if vendor_id else fingerprint_labels(labels)


_MS_FROM: Final = 1e11
"""An epoch above this is milliseconds: as seconds it would be the year 5138."""


def parse_time(value: Any, *, source: str, field: str, unit: str = "auto") -> float | None:
    """A vendor's time as epoch seconds: a number or numeric string (seconds, or
    milliseconds when `unit` says so or, with `auto`, when it is too large to be
    seconds), or an RFC 3339 string (UTC when it names no zone). None when absent.
    Raises PayloadError."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, list) and len(value) == 1:  # Elasticsearch's `fields` arrays
        value = value[0]
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and unit != "rfc3339":
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is not None:
        if unit == "epoch_ms" or (unit == "auto" and abs(number) >= _MS_FROM):
            number /= 1000.0
        return number
    if isinstance(value, str) and unit in ("auto", "rfc3339"):
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:  # a time without a zone is UTC, as RFC 3339 has no local times
            return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    what = {
        "epoch_s": "epoch seconds",
        "epoch_ms": "epoch milliseconds",
        "rfc3339": "an RFC 3339 time",
    }
    msg = f"not {what.get(unit, 'an epoch or an RFC 3339 time')}: {str(value)[:40]!r}"
    raise PayloadError(msg, source=source, field=field)


def _when(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):
        return repr(ts)


def arrival_limit(received_at: float) -> float:
    """The latest time an alert that arrived at `received_at` may carry (`received_at` 0:
    replay reading an archive, no arrival clock to be ahead of)."""
    return received_at + MAX_AHEAD_S if received_at > 0 else math.inf


def times_pass(starts_at: float, ends_at: float | None, limit: float) -> bool:
    """What `check_times` lets through, decided without naming a field: the common case,
    checked per alert before any error text is built."""
    return 0.0 <= starts_at <= limit and (ends_at is None or starts_at <= ends_at <= limit)


def check_times(
    starts_at: float,
    ends_at: float | None,
    received_at: float,
    *,
    source: str,
    starts_field: str,
    ends_field: str,
) -> None:
    """Refuse times no clock produces: before 1970, more than a day after arrival, or an
    end before the start. Raises PayloadError naming the field.

    `received_at` 0 is `stormwatch replay` reading an archive: there is no arrival clock
    to be ahead of, so only the other two checks apply."""
    limit = arrival_limit(received_at)
    for value, field in ((starts_at, starts_field), (ends_at, ends_field)):
        if value is not None and not 0.0 <= value <= limit:
            why = "before 1970" if value < 0 else "more than a day after it arrived"
            msg = f"time {_when(value)} is out of range: {why}"
            raise PayloadError(msg, source=source, field=field)
    if ends_at is not None and ends_at < starts_at:
        msg = f"{_when(ends_at)} is before the start {_when(starts_at)}"
        raise PayloadError(msg, source=source, field=ends_field)


def event_times(
    starts_at: float | None,
    ends_at: float | None,
    received_at: float,
    *,
    source: str,
    at: str,
    starts: str = "startsAt",
    ends: str = "endsAt",
) -> tuple[float, float | None]:
    """An alert's (start, end), checked; `at` is the item's `$.path`.

    A missing start is the arrival, or the end when that is earlier (an alert posted
    only to resolve it), as Alertmanager's API does."""
    if starts_at is None:
        starts_at = received_at if ends_at is None else min(received_at, ends_at)
    if times_pass(starts_at, ends_at, arrival_limit(received_at)):
        return starts_at, ends_at
    check_times(
        starts_at,
        ends_at,
        received_at,
        source=source,
        starts_field=f"{at}.{starts}",
        ends_field=f"{at}.{ends}",
    )
    return starts_at, ends_at


def check_labels(labels: dict[str, str], source: str, path: str) -> None:
    """Alertmanager's label rules (0.27+, UTF-8 mode): at least one label, and every name
    non-empty. Names are any UTF-8 (`service.name`, `k8s.namespace.name`); the JSON
    decoder has already refused invalid UTF-8, so only the empty name is left to check."""
    if not labels:
        raise PayloadError("at least one label is required", source=source, field=path)
    if "" in labels:
        msg = "a label name must not be empty"
        raise PayloadError(msg, source=source, field=f'{path}[""]')
