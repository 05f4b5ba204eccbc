"""`ingest.archive`: every accepted alert, as the engine took it, for backtests.

The correlator writes each batch's alerts (normalised, stamped with their `received_at`)
after the batch is committed and before its senders hear 200, one `Alert` JSON line
each, so the archive holds exactly what the live daemon correlated, in arrival order:
`stormwatch replay` on it predicts the daemon. Files rotate by size:

```
alerts.jsonl      <- being written
alerts.jsonl.1    <- the one before (oldest: alerts.jsonl.<keep>)
```

Replay them oldest first: `stormwatch replay --rules R alerts.jsonl.2 alerts.jsonl.1 alerts.jsonl`.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from stormwatch.wire import Alert

__all__ = ["AlertArchive", "ArchiveConfig"]


class ArchiveConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    path: str
    max_bytes: int = 256 * 1024 * 1024
    """Rotate once the file holds this much."""
    keep: int = 5
    """Rotated files kept besides the one being written."""


class AlertArchive:
    def __init__(self, config: ArchiveConfig) -> None:
        self.path = Path(config.path)
        self.max_bytes = config.max_bytes
        self.keep = config.keep
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("ab")
        self._size = self._file.tell()
        self._encode = msgspec.json.Encoder().encode

    def write(self, alerts: list[Alert]) -> None:
        encode = self._encode
        chunk = b"".join(encode(a) + b"\n" for a in alerts)
        self._file.write(chunk)
        self._file.flush()
        self._size += len(chunk)
        if self._size >= self.max_bytes:
            self._rotate()

    def _rotate(self) -> None:
        self._file.close()
        if self.keep == 0:
            self.path.unlink()
        for i in range(self.keep, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            newer = self.path.with_name(f"{self.path.name}.{i - 1}") if i > 1 else self.path
            if i == self.keep and older.exists():
                older.unlink()
            if newer.exists():
                os.replace(newer, older)
        self._file = self.path.open("ab")
        self._size = 0

    def close(self) -> None:
        self._file.close()
