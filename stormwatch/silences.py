"""Silences over HTTP: what a request may say, and how it becomes a `Silence`."""

from __future__ import annotations

import hashlib

import msgspec

from correlate.suppress import Silence
from stormwatch.wire import Duration

__all__ = ["SilenceRequest", "to_silence"]


class SilenceRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /api/v1/silences`: matchers in Alertmanager syntax, and either `ends_at`
    (epoch seconds) or `duration`; `starts_at` defaults to now."""

    matchers: list[str] = msgspec.field()
    id: str | None = None
    starts_at: float | None = None
    ends_at: float | None = None
    duration: Duration | None = None
    created_by: str = ""
    comment: str = ""


def to_silence(req: SilenceRequest, now: float) -> Silence:
    if not req.matchers:
        raise msgspec.ValidationError("at least one matcher is required - at `$.matchers`")
    starts = req.starts_at if req.starts_at is not None else now
    if req.ends_at is not None:
        ends = req.ends_at
    elif req.duration is not None:
        ends = starts + req.duration
    else:
        raise msgspec.ValidationError("give ends_at or duration - at `$.ends_at`")
    if ends <= starts:
        raise msgspec.ValidationError("ends_at must be after starts_at - at `$.ends_at`")
    sid = (
        req.id
        or "sil-"
        + hashlib.blake2b(f"{req.matchers}{starts}{ends}".encode(), digest_size=6).hexdigest()
    )
    return Silence(
        id=sid,
        matchers=req.matchers,
        starts_at=starts,
        ends_at=ends,
        created_by=req.created_by,
        comment=req.comment,
    )
