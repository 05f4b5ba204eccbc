"""Sources and normalisers: every payload becomes `Alert`s handed to `Submit`."""

from ingest.fingerprint import fingerprint_labels
from ingest.http_source import HttpSource
from ingest.intake import Intake, is_loopback
from ingest.normalize import NORMALIZERS, Normalizer
from ingest.source import Source, Submit

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
