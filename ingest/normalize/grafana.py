"""Grafana-managed alerting's webhook contact point (`POST /webhook/grafana`).

The body is Alertmanager's webhook payload with extras (`orgId`, `title`, `state`,
`message`, and per alert `silenceURL`, `dashboardURL`, `panelURL`, `values`,
`valueString`); `version` is "1". Firing alerts carry Go's zero time as `endsAt`.
The shared fields are read exactly as for Alertmanager; the extras are ignored except
the dashboard and panel links, kept as annotations.
"""

from __future__ import annotations

import msgspec

from ingest.fingerprint import fingerprint_labels
from ingest.normalize._common import check_labels, decode, epoch
from ingest.normalize.alertmanager import WebhookAlert
from stormwatch.wire import Alert

__all__ = ["normalize_grafana"]

SOURCE = "grafana"


class GrafanaAlert(WebhookAlert, rename="camel", gc=False):
    """Alertmanager's webhook alert plus Grafana's links."""

    dashboard_url: str = msgspec.field(default="", name="dashboardURL")
    panel_url: str = msgspec.field(default="", name="panelURL")


class GrafanaPayload(msgspec.Struct, rename="camel", gc=False):
    alerts: list[GrafanaAlert]


_decoder = msgspec.json.Decoder(GrafanaPayload)


def normalize_grafana(body: bytes, received_at: float) -> list[Alert]:
    """A Grafana webhook contact point body -> alerts. Raises PayloadError."""
    payload = decode(_decoder, body, SOURCE)
    out = []
    for i, item in enumerate(payload.alerts):
        check_labels(item.labels, SOURCE, f"$.alerts[{i}].labels")
        annotations = dict(item.annotations)
        for key, url in (("dashboard_url", item.dashboard_url), ("panel_url", item.panel_url)):
            if url:
                annotations.setdefault(key, url)
        ends_at = epoch(item.ends_at, None)
        out.append(
            Alert(
                source=SOURCE,
                fingerprint=fingerprint_labels(item.labels),
                status=item.status,
                labels=item.labels,
                annotations=annotations,
                starts_at=epoch(item.starts_at, received_at),  # type: ignore[arg-type]
                ends_at=ends_at if item.status == "resolved" else None,
                received_at=received_at,
                generator_url=item.generator_url,
            )
        )
    return out
