"""Plain JSON from anything else (`POST /webhook/generic`).

One object or an array of objects:
`{labels, annotations?, status?: firing|resolved, startsAt?|starts_at?, endsAt?|ends_at?}`
with times as RFC 3339 strings or epoch seconds. Identity is the label set, as for
Alertmanager.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from ingest.fingerprint import fingerprint_labels
from ingest.normalize._common import check_labels, decode, epoch, event_times
from ingest.normalize.severity import normalize_severity
from stormwatch.wire import Alert

__all__ = ["normalize_generic"]

SOURCE = "generic"
_Time = datetime | float | None


class GenericAlert(msgspec.Struct, gc=False, forbid_unknown_fields=False):
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    status: Literal["firing", "resolved"] | None = None
    startsAt: _Time = None
    endsAt: _Time = None
    starts_at: _Time = None
    ends_at: _Time = None


_decoder = msgspec.json.Decoder(GenericAlert | list[GenericAlert])


def _ts(value: _Time, default: float | None) -> float | None:
    if isinstance(value, datetime):
        return epoch(value, default)
    return float(value) if value is not None else default


def normalize_generic(body: bytes, received_at: float) -> list[Alert]:
    """Generic JSON alert(s) -> alerts. Raises PayloadError."""
    decoded = decode(_decoder, body, SOURCE)
    items = decoded if isinstance(decoded, list) else [decoded]
    out = []
    for i, item in enumerate(items):
        at = f"$[{i}]" if isinstance(decoded, list) else "$"
        check_labels(item.labels, SOURCE, f"{at}.labels")
        snake = item.starts_at is not None or item.ends_at is not None
        starts_at, ends_at = event_times(
            _ts(item.starts_at if item.starts_at is not None else item.startsAt, None),
            _ts(item.ends_at if item.ends_at is not None else item.endsAt, None),
            received_at,
            source=SOURCE,
            at=at,
            starts="starts_at" if snake else "startsAt",
            ends="ends_at" if snake else "endsAt",
        )
        status: Literal["firing", "resolved"] = item.status or (
            "resolved" if ends_at is not None and ends_at <= received_at else "firing"
        )
        out.append(
            Alert(
                source=SOURCE,
                fingerprint=fingerprint_labels(item.labels),
                status=status,
                labels=item.labels,
                severity=normalize_severity(item.labels.get("severity")),
                annotations=item.annotations,
                starts_at=starts_at,
                ends_at=ends_at,
                received_at=received_at,
            )
        )
    return out
