"""`epoch_text` (a cache in front of msgspec's RFC 3339 parser) reads every text as the
JSON decoder reads a `datetime`: the same seconds, or a refusal for the same texts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from ingest.normalize._common import ZERO_TIME, epoch_text

_as_datetime = msgspec.json.Decoder(datetime | None)


def _decoded(text: str) -> float | str | None:
    try:
        when = _as_datetime.decode(msgspec.json.encode(text))
    except msgspec.ValidationError:
        return "refused"
    assert when is not None
    ts = when.timestamp()
    return None if ts <= ZERO_TIME + 1 else ts


def _read(text: str) -> float | str | None:
    try:
        return epoch_text(text)
    except msgspec.ValidationError:
        return "refused"


_times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
)


def _rfc3339(when: datetime, offset_min: int, digits: int, zulu: bool) -> str:
    local = when.astimezone(timezone(timedelta(minutes=offset_min)))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{local.microsecond:06d}"[:digits]
    if zulu and offset_min == 0:
        return text + "Z"
    return text + local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]


@given(
    _times,
    st.integers(-14 * 60, 14 * 60),
    st.integers(0, 6),
    st.booleans(),
)
def test_well_formed_times_read_as_the_decoder_reads_them(
    when: datetime, offset_min: int, digits: int, zulu: bool
) -> None:
    text = _rfc3339(when, offset_min, digits, zulu)
    assert _read(text) == _decoded(text)
    assert _read(text) == _decoded(text)  # the second read is the cache's


@given(st.text(alphabet="0123456789-:TZz.+ tx", max_size=32))
def test_any_text_is_refused_or_read_as_the_decoder_does(text: str) -> None:
    assert _read(text) == _decoded(text)
    assert _read(text) == _decoded(text)


def test_go_zero_time_is_unset() -> None:
    assert epoch_text("0001-01-01T00:00:00Z") is None
    assert epoch_text(None) is None
