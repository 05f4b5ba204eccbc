"""Alertmanager-compatible alert fingerprints.

Alertmanager identifies an alert by `model.LabelSet.Fingerprint()`: 64-bit FNV-1a over
the label pairs sorted by name, each name and value followed by the byte 0xFF, printed
as `%016x`. Computing the same value means our dedup agrees with Alertmanager's and an
alert keeps its identity when it passes through both.
"""

from __future__ import annotations

import msgspec
from fnv_c import fnv1a_64

__all__ = ["fingerprint_labels"]

_SEP = b"\xff"
_EMPTY = "{:016x}".format(fnv1a_64(b""))


_CACHE_MAX = 1_000_000
_cache: dict[bytes, str] = {}
_key = msgspec.json.Encoder().encode


def _compute(pairs: tuple[tuple[str, str], ...]) -> str:
    parts = []
    for name, value in pairs:
        parts.append(name.encode())
        parts.append(value.encode())
    parts.append(b"")
    return f"{fnv1a_64(_SEP.join(parts)):016x}"


def fingerprint_labels(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set, e.g. {"foo": "bar"} -> "3fff2c2d7595e046".

    The byte 0xFF never occurs in UTF-8, so it separates names and values unambiguously.
    Most arrivals are re-sends of a label set seen before, so results are cached, keyed by
    the label set's JSON in arrival order (msgspec writes it in C: about 0.6 us a hit,
    where computing takes 2.4 us; bench/README.md). Prometheus always sends one label set
    in the same order, so sorting would be paid on every hit for nothing; a sender that
    varies the order only costs a second entry, never a wrong fingerprint. The key is
    one bytes object (about 200 bytes a label set), where a tuple of pairs cost three
    times that. The cache is dropped whole when full: bounded memory, no LRU bookkeeping
    on the hot path.
    """
    if not labels:
        return _EMPTY
    key = _key(labels)
    fp = _cache.get(key)
    if fp is None:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        fp = _cache[key] = _compute(tuple(sorted(labels.items())))
    return fp
