"""Alertmanager-compatible alert fingerprints.

Alertmanager identifies an alert by `model.LabelSet.Fingerprint()`: 64-bit FNV-1a over
the label pairs sorted by name, each name and value followed by the byte 0xFF, printed
as `%016x`. Computing the same value means our dedup agrees with Alertmanager's and an
alert keeps its identity when it passes through both.
"""

from __future__ import annotations

from fnv_c import fnv1a_64

__all__ = ["fingerprint_labels"]

_SEP = b"\xff"
_EMPTY = "%016x" % fnv1a_64(b"")


def fingerprint_labels(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set, e.g. {"foo": "bar"} -> "3fff2c2d7595e046".

    The C FNV costs about 0.4 us against 9.5 us in pure Python (PERF-NOTES.md). The byte
    0xFF never occurs in UTF-8, so it separates names and values unambiguously.
    """
    if not labels:
        return _EMPTY
    parts = []
    for name in sorted(labels):
        parts.append(name.encode())
        parts.append(labels[name].encode())
    parts.append(b"")
    return "%016x" % fnv1a_64(_SEP.join(parts))
