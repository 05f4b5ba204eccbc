"""The installed stormwatch version, for `--version` and Alertmanager's status API."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

__all__ = ["version"]


def version() -> str:
    try:
        return _dist_version("stormwatch")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"
