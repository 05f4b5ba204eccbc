"""Log files, tailed as `tail -F` does: from the end, following rotation.

```yaml
ingest:
  files:
    - path: /var/log/auth.log
      patterns: [...]            # ingest/patterns.py
      from_beginning: false      # true: read what the file already holds first
      poll_interval: 250ms       # how often to look for new lines at the end of the file
      max_line_bytes: 8192
```

The file is polled (no inotify: it works the same on every filesystem, containers'
bind mounts included). Rotation by rename (logrotate's default) is noticed when the
path names another inode: the old file is read to its end first, then the new one
from its start. Truncation in place (`copytruncate`) is noticed when the file is
shorter than what was read: reading starts again from its start. A file that does not
exist yet is waited for. While the pipeline is full the file is simply not read: the
lines wait on disk, not in memory.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import BinaryIO

import msgspec
import structlog

from ingest.lines import LineFramer, LineIntake, submit_until_room
from ingest.patterns import LogPattern, PatternSet
from ingest.source import Submit
from stormwatch.metrics import Metrics
from stormwatch.wire import Duration

__all__ = ["FileSource", "FileSourceConfig"]

log = structlog.get_logger("stormwatch.ingest")
_CHUNK = 65536


class FileSourceConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    path: str
    patterns: list[LogPattern]
    from_beginning: bool = False
    poll_interval: Duration = Duration(0.25)
    max_line_bytes: int = 8192

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("path must not be empty")
        if self.poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if self.max_line_bytes < 64:
            raise ValueError("max_line_bytes must be at least 64")


class FileSource:
    """One tailed file; `run(submit)` follows it until cancelled."""

    name = "file"

    def __init__(
        self,
        config: FileSourceConfig,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.lines = LineIntake(self.name, PatternSet(config.patterns), metrics, origin=config.path)
        self._clock = clock
        self._framer = LineFramer(config.max_line_bytes)
        self._file: BinaryIO | None = None
        self._inode: tuple[int, int] | None = None
        self.opened = asyncio.Event()
        self.missing = asyncio.Event()
        """Set once the file is open, and once it was looked for and not found (tests
        wait on them before writing)."""

    def _open(self, at_end: bool) -> bool:
        try:
            f = open(self.config.path, "rb")  # noqa: SIM115 -- held open across polls
        except FileNotFoundError:
            self.missing.set()
            return False
        except OSError as err:
            log.warning("log_file_unreadable", path=self.config.path, error=err.strerror)
            return False
        st = os.fstat(f.fileno())
        if at_end:
            f.seek(0, os.SEEK_END)
        self._file, self._inode = f, (st.st_dev, st.st_ino)
        self._framer.reset()
        self.opened.set()
        log.info("log_file_opened", path=self.config.path, from_offset=f.tell())
        return True

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None

    def _moved_or_cut(self) -> str:
        """ "rotated" when the path names another file (or none), "truncated" when the
        file is shorter than what was read, else ""."""
        assert self._file is not None
        try:
            st = os.stat(self.config.path)
        except FileNotFoundError:
            return "rotated"
        if (st.st_dev, st.st_ino) != self._inode:
            return "rotated"
        if st.st_size < self._file.tell():
            return "truncated"
        return ""

    async def _read_available(self, submit: Submit) -> bool:
        """Read what the file holds now; True if there was anything."""
        assert self._file is not None
        data = self._file.read(_CHUNK)
        if not data:
            return False
        alerts = self.lines.alerts(self._framer.feed(data), self._clock())
        if alerts:
            await submit_until_room(submit, alerts)
        return True

    async def run(self, submit: Submit) -> None:
        first = True
        try:
            while True:
                if self._file is None:
                    # At start the file's past is not news; a file that appears later,
                    # or replaces a rotated one, is read from its start.
                    if not self._open(at_end=first and not self.config.from_beginning):
                        first = False
                        await asyncio.sleep(self.config.poll_interval)
                        continue
                    first = False
                if await self._read_available(submit):
                    continue
                change = self._moved_or_cut()
                if change == "rotated":
                    while await self._read_available(submit):
                        pass
                    rest = self.lines.alerts(self._framer.flush(), self._clock())
                    if rest:
                        await submit_until_room(submit, rest)
                    self._close()
                    log.info("log_file_rotated", path=self.config.path)
                    continue
                if change == "truncated":
                    assert self._file is not None
                    self._file.seek(0)
                    self._framer.reset()
                    log.info("log_file_truncated", path=self.config.path)
                    continue
                await asyncio.sleep(self.config.poll_interval)
        finally:
            self._close()
