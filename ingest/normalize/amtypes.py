"""The Struct shapes of Alertmanager's two wire formats (ingest/normalize/alertmanager.py
reads them). A module of their own because alertmanager.py is compiled with mypyc
(setup.py), which cannot build Struct classes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

__all__ = ["PostableAlert", "WebhookAlert", "WebhookPayload"]


class PostableAlert(msgspec.Struct, rename="camel", gc=False):
    """The labels stay JSON text, the fingerprint cache's key (`fingerprint_json`), and
    are decoded from it; the times stay text: `_common.epoch_text` parses each distinct
    one once."""

    labels: msgspec.Raw
    annotations: dict[str, str] = {}
    starts_at: str | None = None
    ends_at: str | None = None
    generator_url: str = msgspec.field(default="", name="generatorURL")


class WebhookAlert(msgspec.Struct, rename="camel", gc=False):
    labels: dict[str, str]
    status: Literal["firing", "resolved"] = "firing"
    annotations: dict[str, str] = {}
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    generator_url: str = msgspec.field(default="", name="generatorURL")
    fingerprint: str = ""


class WebhookPayload(msgspec.Struct, rename="camel", gc=False):
    alerts: list[WebhookAlert]
    version: str = "4"
    group_key: str = ""
    status: str = ""
    receiver: str = ""
