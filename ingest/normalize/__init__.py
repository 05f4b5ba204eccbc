"""Normalisers: a payload's bytes -> `Alert`s, one vendor per module.

`NORMALIZERS` is the one registry of formats; `POST /webhook/{format}` serves each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from ingest.normalize.alertmanager import normalize_alertmanager_v2, normalize_alertmanager_webhook
from ingest.normalize.elastic import normalize_elastic
from ingest.normalize.generic import normalize_generic
from ingest.normalize.grafana import normalize_grafana
from ingest.normalize.splunk import normalize_splunk
from ingest.normalize.wazuh import normalize_wazuh
from stormwatch.wire import Alert

__all__ = ["NORMALIZERS", "Normalizer", "normalize_alertmanager_v2"]

Normalizer: TypeAlias = Callable[[bytes, float], list[Alert]]
"""(body, received_at) -> alerts; raises PayloadError and nothing else."""

NORMALIZERS: dict[str, Normalizer] = {
    "alertmanager": normalize_alertmanager_webhook,
    "grafana": normalize_grafana,
    "wazuh": normalize_wazuh,
    "elastic": normalize_elastic,
    "splunk": normalize_splunk,
    "generic": normalize_generic,
}
