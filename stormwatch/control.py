"""Operator actions in partitioned mode: silences and acknowledgements, through the topic.

A partition's engine is its shard's only writer, and any correlator may own any
partition, so an action cannot be applied where the HTTP request lands. Whoever takes
it (a receiver or a correlator) produces it to *every* partition as one control
message, stamped like alerts (stormwatch/receiver.py); each shard applies it at the
message's place in its partition, at the partition's time (stormwatch/partitions.py).
So an action reaches the shards whoever owns them, survives a correlator's death like
any message (it is re-read from the stored offset), and a partition's incidents stay a
function of its messages.

On the wire a control message is a JSON object tagged by `action`; alert messages are
JSON arrays and ticks are empty, so the first byte tells the three apart.
"""

from __future__ import annotations

import msgspec

from correlate.suppress import Silence

__all__ = [
    "Acknowledge",
    "AddSilence",
    "Control",
    "ExpireSilence",
    "decode_control",
    "encode_control",
    "is_control",
]


class AddSilence(msgspec.Struct, tag_field="action", tag="add_silence", kw_only=True):
    silence: Silence


class ExpireSilence(msgspec.Struct, tag_field="action", tag="expire_silence", kw_only=True):
    id: str


class Acknowledge(msgspec.Struct, tag_field="action", tag="acknowledge", kw_only=True):
    key: str
    by: str
    source: str = "api"
    """The sink whose webhook acknowledged it (that sink is not told again), or `api`."""
    comment: str = ""


Control = AddSilence | ExpireSilence | Acknowledge

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Control).decode


def encode_control(action: Control) -> bytes:
    return _encode(action)


def decode_control(value: bytes) -> Control:
    """Raises msgspec.DecodeError / ValidationError for a message that is not one."""
    return _decode(value)


def is_control(value: bytes) -> bool:
    return value[:1] == b"{"
