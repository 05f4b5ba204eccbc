"""Which of the modules setup.py compiles (mypyc) run compiled, and which are stale.

An editable install (`pip install -e .`) builds the extensions beside the sources; the
interpreter then imports the extension, not the `.py` next to it. So a source edited
after the build would silently not run: `stale()` names such modules, the tests refuse
to start on them (tests/conftest.py) and `stormwatch run` logs it. Here, not in
`correlate/`, since it reads the file system: the core does no I/O.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from importlib.machinery import EXTENSION_SUFFIXES
from types import ModuleType

__all__ = ["MODULES", "compiled", "stale"]

MODULES = (
    "correlate.announce",
    "correlate.classify",
    "correlate.context",
    "correlate.dedup",
    "correlate.delta",
    "correlate.engine",
    "correlate.incidents",
    "correlate.match",
    "correlate.reasons",
    "correlate.rulebook",
    "correlate.timers",
    "correlate.views",
    "correlate.windows.absence",
    "correlate.windows.base",
    "correlate.windows.count",
    "correlate.windows.distinct",
    "correlate.windows.group",
    "correlate.windows.ordered",
    "ingest.fingerprint",
    "ingest.normalize._common",
    "ingest.normalize.alertmanager",
    "ingest.normalize.severity",
)
"""The modules setup.py compiles: the correlation core and the Alertmanager normaliser
(tests/unit/test_compiled.py keeps the two lists equal)."""


def _is_extension(path: str | None) -> bool:
    return path is not None and path.endswith(tuple(EXTENSION_SUFFIXES))


def compiled() -> list[str]:
    """The modules of `MODULES` imported from a compiled extension."""
    return [
        name
        for name in MODULES
        if _is_extension(getattr(importlib.import_module(name), "__file__", None))
    ]


def stale(modules: Iterable[ModuleType] | None = None) -> list[str]:
    """Sources (paths) edited after the extension built from them: what runs is older.
    `modules`: those to look at (the compiled ones of `MODULES` by default)."""
    if modules is None:
        modules = [importlib.import_module(name) for name in compiled()]
    out = []
    for module in modules:
        ext = getattr(module, "__file__", None)
        if not _is_extension(ext):
            continue
        assert ext is not None
        source = os.path.join(os.path.dirname(ext), module.__name__.rpartition(".")[2] + ".py")
        # A wheel's files are written a few milliseconds apart: an edit is later than that.
        if os.path.exists(source) and os.path.getmtime(source) > os.path.getmtime(ext) + 2.0:
            out.append(source)
    return out
