"""Alertmanager's two wire formats.

- `POST /api/v2/alerts`, what Prometheus, the Loki ruler and the Grafana ruler send:
  a JSON array of `{labels, annotations?, startsAt?, endsAt?, generatorURL?}`.
  A missing `startsAt` means now; a missing `endsAt` means "firing until the resolve
  timeout" (the engine applies it); an `endsAt` at or before now means resolved.
- Alertmanager's webhook receiver payload, version 4 (`POST /webhook/alertmanager`):
  `{version, groupKey, status, receiver, groupLabels, commonLabels, alerts: [...]}`,
  each alert with its own explicit `status`. Fields added in later versions
  (`notification_reason`, `routeLabels`, `truncatedAlerts`) are optional.

One bad item rejects the whole body: nothing is half-accepted.
"""

from __future__ import annotations

from typing import Final

import msgspec

from ingest.fingerprint import fingerprint_json, fingerprint_labels
from ingest.normalize._common import (
    arrival_limit,
    check_labels,
    decode,
    epoch,
    epoch_text,
    event_times,
    time_error,
    times_pass,
)
from ingest.normalize.amtypes import PostableAlert, WebhookAlert, WebhookPayload
from ingest.normalize.severity import normalize_severity
from stormwatch.errors import PayloadError
from stormwatch.wire import Alert

__all__ = [
    "WebhookAlert",
    "normalize_alertmanager_v2",
    "normalize_alertmanager_webhook",
    "webhook_alert",
]

SOURCE: Final = "alertmanager"


_v2: Final = msgspec.json.Decoder(list[PostableAlert])
_labels: Final = msgspec.json.Decoder(dict[str, str])
_webhook: Final = msgspec.json.Decoder(WebhookPayload)
_decode_labels: Final = _labels.decode
_Alert: Final = Alert
"""Compiled (setup.py), a class from an interpreted module is looked up in this module's
globals, and a method by name, on every call: as Final names they are C statics, with
no lookup per alert."""


def normalize_alertmanager_v2(body: bytes, received_at: float) -> list[Alert]:
    """An Alertmanager v2 API body -> alerts. Raises PayloadError."""
    try:
        items = decode(_v2, body, SOURCE)
    except PayloadError as err:
        if err.field.endswith((".startsAt", ".endsAt")) and err.message.startswith("Expected"):
            # The times are decoded as text (parsed later): say what the text must be.
            err.message = err.message.replace("`str | null`", "an RFC 3339 time or null")
        raise
    out: list[Alert] = []
    append = out.append
    limit = arrival_limit(received_at)
    for i, item in enumerate(items):
        text = bytes(item.labels)
        try:
            labels = _decode_labels(text)
        except (msgspec.ValidationError, msgspec.DecodeError):
            raise _label_error(text, i) from None
        if not labels or "" in labels:
            check_labels(labels, SOURCE, f"$[{i}].labels")  # raises, naming the field
        try:
            starts_at = epoch_text(item.starts_at)
            ends_at = epoch_text(item.ends_at)
        except msgspec.ValidationError:
            times = {"startsAt": item.starts_at, "endsAt": item.ends_at}
            raise time_error(times, SOURCE, f"$[{i}]") from None
        # event_times (and the item's path it needs) only to derive a missing start or
        # to name what is wrong: building that path per alert was a tenth of this route.
        if starts_at is None or not times_pass(starts_at, ends_at, limit):
            starts_at, ends_at = event_times(
                starts_at, ends_at, received_at, source=SOURCE, at=f"$[{i}]"
            )
        append(
            _Alert(
                source=SOURCE,
                fingerprint=fingerprint_json(text, labels),
                status="resolved" if ends_at is not None and ends_at <= received_at else "firing",
                labels=labels,
                severity=normalize_severity(labels.get("severity")),
                annotations=item.annotations,
                starts_at=starts_at,
                ends_at=ends_at,
                received_at=received_at,
                generator_url=item.generator_url,
            )
        )
    return out


def _label_error(text: bytes, i: int) -> PayloadError:
    """What is wrong with item `i`'s labels, named from the body's root."""
    try:
        decode(_labels, text, SOURCE)
    except PayloadError as err:
        if err.field:
            err.field = f"$[{i}].labels" + err.field.removeprefix("$")
        return err
    return PayloadError("invalid labels", source=SOURCE, field=f"$[{i}].labels")


def webhook_alert(
    item: WebhookAlert,
    at: str,
    received_at: float,
    source: str = SOURCE,
    annotations: dict[str, str] | None = None,
) -> Alert:
    """One alert of a webhook payload (Alertmanager's, or Grafana's that extends it);
    `at` is its `$.path`."""
    if not item.labels or "" in item.labels:
        check_labels(item.labels, source, f"{at}.labels")  # raises, naming the field
    # Firing alerts carry the sender's own resolve deadline; we apply ours.
    starts_at, ends_at = event_times(
        epoch(item.starts_at, None),
        epoch(item.ends_at, None) if item.status == "resolved" else None,
        received_at,
        source=source,
        at=at,
    )
    return Alert(
        source=source,
        fingerprint=fingerprint_labels(item.labels),
        status=item.status,
        labels=item.labels,
        severity=normalize_severity(item.labels.get("severity")),
        annotations=item.annotations if annotations is None else annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        received_at=received_at,
        generator_url=item.generator_url,
    )


def normalize_alertmanager_webhook(body: bytes, received_at: float) -> list[Alert]:
    """An Alertmanager webhook (version 4) body -> alerts. Raises PayloadError."""
    payload = decode(_webhook, body, SOURCE)
    return [
        webhook_alert(item, f"$.alerts[{i}]", received_at) for i, item in enumerate(payload.alerts)
    ]
