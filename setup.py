"""Compiles the correlation core and the Alertmanager normaliser with mypyc (part of
mypy) when the package is built.

They are plain, fully typed Python; mypyc turns their modules into C extensions that
run the same code 1.2-1.5x faster (bench/README.md, "Compiled core"). Everything else
is pyproject.toml's. `STORMWATCH_PURE=1 pip install ...` builds without compiling, and
any module left out of COMPILED still runs interpreted: the compiled modules are a
speed-up, never a different program (the tests run against whichever is installed).

Modules that define msgspec Structs stay interpreted (mypyc cannot build Struct
classes): correlate/state.py, config.py, effects.py, deltatypes.py, suppress.py and
ingest/normalize/amtypes.py.
"""

from __future__ import annotations

import os

from setuptools import setup

COMPILED = [
    "correlate/announce.py",
    "correlate/classify.py",
    "correlate/context.py",
    "correlate/dedup.py",
    "correlate/delta.py",
    "correlate/engine.py",
    "correlate/incidents.py",
    "correlate/match.py",
    "correlate/reasons.py",
    "correlate/rulebook.py",
    "correlate/timers.py",
    "correlate/views.py",
    "correlate/windows/absence.py",
    "correlate/windows/base.py",
    "correlate/windows/count.py",
    "correlate/windows/distinct.py",
    "correlate/windows/group.py",
    "correlate/windows/ordered.py",
    "ingest/fingerprint.py",
    "ingest/normalize/_common.py",
    "ingest/normalize/alertmanager.py",
    "ingest/normalize/severity.py",
]


def _ext_modules() -> list[object]:
    if os.environ.get("STORMWATCH_PURE") == "1":
        return []
    from mypyc.build import mypycify

    # The build's own environment holds only the build requirements: the modules the
    # compiled ones import but do not use the types of (aiohttp, structlog, ... through
    # package __init__ files) are read silently, not type-checked.
    options = ["--follow-imports=silent"]
    extensions = list(mypycify([*options, *COMPILED], opt_level="3", group_name="stormwatch_core"))
    for ext in extensions:
        # Without a C compiler the build goes on and the core runs interpreted.
        ext.optional = True
    return extensions


setup(ext_modules=_ext_modules())
