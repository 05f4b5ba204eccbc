"""Sources and normalisers: every payload becomes `Alert`s handed to `Submit`.

The network sources (and aiohttp) load on first use, so a command that only normalises
(`stormwatch replay`) starts without them.
"""

import typing as _typing

from ingest.fingerprint import fingerprint_labels
from ingest.normalize import NORMALIZERS, Normalizer
from ingest.source import Source, Submit

if _typing.TYPE_CHECKING:
    from ingest.http_source import HttpSource
    from ingest.intake import Intake, is_loopback

__all__ = [
    "NORMALIZERS",
    "HttpSource",
    "Intake",
    "Normalizer",
    "Source",
    "Submit",
    "fingerprint_labels",
    "is_loopback",
]

_LAZY = {
    "HttpSource": "ingest.http_source",
    "Intake": "ingest.intake",
    "is_loopback": "ingest.intake",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'ingest' has no attribute {name!r}"
        raise AttributeError(msg)
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
