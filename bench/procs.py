"""What a process has cost so far, read from Linux /proc (the load scripts report these
for the daemon they drive, and the memory rounds for themselves)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_seconds", "status_kib"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kib(pid: int | str, field: str) -> int:
    """A kB figure of /proc/PID/status (`VmRSS`, `VmHWM`); pid may be "self". Raises
    LookupError when the figure is not there (a zombie has no memory lines)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(f"no {field} in /proc/{pid}/status")
