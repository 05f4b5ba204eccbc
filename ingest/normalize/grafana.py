"""Grafana-managed alerting's webhook contact point (`POST /webhook/grafana`).

The body is Alertmanager's webhook payload with extras (`orgId`, `title`, `state`,
`message`, and per alert `silenceURL`, `dashboardURL`, `panelURL`, `values`,
`valueString`); `version` is "1". Firing alerts carry Go's zero time as `endsAt`.
The shared fields are read exactly as for Alertmanager; the extras are ignored except
the dashboard and panel links, kept as annotations.
"""

from __future__ import annotations

import msgspec

from ingest.normalize._common import decode
from ingest.normalize.alertmanager import WebhookAlert, webhook_alert
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
        annotations = dict(item.annotations)
        for key, url in (("dashboard_url", item.dashboard_url), ("panel_url", item.panel_url)):
            if url:
                annotations.setdefault(key, url)
        out.append(webhook_alert(item, f"$.alerts[{i}]", received_at, SOURCE, annotations))
    return out
