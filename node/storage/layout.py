"""How Rumor's data maps onto the column families' keys.

- ``kv`` / ``val``: namespace (16 raw bytes) + key bytes. Byte order of the
  key is list order, and all keys of a namespace are contiguous.
- ``log``: origin (u64 big-endian) + seq (u64 big-endian), so one origin's
  records are contiguous and in seq order for anti-entropy.
- ``meta``: the fixed names below, each holding a small packed value.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

NAMESPACE_BYTES = 16
_LOG_KEY = struct.Struct(">QQ")
_U64 = struct.Struct(">Q")
_MARKS = struct.Struct(">QQ")  # seq, hlc
_COUNTERS = struct.Struct(">qq")  # live or expired records held, tombstones held

META_NODE_ID = b"node_id"
META_MARKS = b"marks"  # last seq and hlc written
META_RESERVED = b"reserved"  # seq and hlc reserved by a synced write (durability wal)
META_COUNTERS = b"counters"
META_DEFERRED_COUNT = b"deferred_count"
META_INCARNATION = b"incarnation"
META_WATERMARK_PREFIX = b"wm/"  # + origin u64 -> seq u64
META_RANGES_PREFIX = b"ranges/"  # + origin u64 -> packed (start, end) u64 pairs
META_AUDIT_PREFIX = b"audit/"  # + bucket u16 -> u64
META_MEMBER_PREFIX = b"member/"  # + id u64 -> encoded member
META_JOINED_PREFIX = b"joined-seed:"  # + a seed's address: it answered a Join once
META_ALIVE = b"alive-at"  # wall ms this node last knew itself up (a housekeeping beat)
META_HIGH_SEQS = b"high-seqs"  # each origin's highest seq known: packed (origin, seq) pairs
_U16 = struct.Struct(">H")
_DEFERRED_KEY = struct.Struct(">QQQ")  # hlc, origin, seq: applied in hlc order


def record_key(namespace: bytes, key: bytes) -> bytes:
    return namespace + key


def split_record_key(stored: bytes) -> tuple[bytes, bytes]:
    return stored[:NAMESPACE_BYTES], stored[NAMESPACE_BYTES:]


def log_key(origin: int, seq: int) -> bytes:
    return _LOG_KEY.pack(origin, seq)


def log_keys(origins: Sequence[int], seqs: Sequence[int]) -> list[bytes]:
    """``log_key`` of each (origin, seq)."""
    pack = _LOG_KEY.pack
    return [pack(origin, seq) for origin, seq in zip(origins, seqs, strict=True)]


def split_log_key(stored: bytes) -> tuple[int, int]:
    origin, seq = _LOG_KEY.unpack(stored)
    return int(origin), int(seq)


def pack_u64(value: int) -> bytes:
    return _U64.pack(value)


def unpack_u64(stored: bytes) -> int:
    return int(_U64.unpack(stored)[0])


def pack_marks(seq: int, hlc: int) -> bytes:
    return _MARKS.pack(seq, hlc)


def unpack_marks(stored: bytes | None) -> tuple[int, int]:
    if stored is None:
        return 0, 0
    seq, hlc = _MARKS.unpack(stored)
    return int(seq), int(hlc)


def pack_counters(records: int, tombstones: int) -> bytes:
    return _COUNTERS.pack(records, tombstones)


def unpack_counters(stored: bytes | None) -> tuple[int, int]:
    if stored is None:
        return 0, 0
    records, tombstones = _COUNTERS.unpack(stored)
    return int(records), int(tombstones)


def watermark_key(origin: int) -> bytes:
    return META_WATERMARK_PREFIX + _U64.pack(origin)


def ranges_key(origin: int) -> bytes:
    return META_RANGES_PREFIX + _U64.pack(origin)


def audit_key(bucket: int) -> bytes:
    return META_AUDIT_PREFIX + _U16.pack(bucket)


def pack_u64s(values: Iterable[int]) -> list[bytes]:
    """``pack_u64`` of each value."""
    return list(map(_U64.pack, values))


def member_key(member_id: int) -> bytes:
    return META_MEMBER_PREFIX + _U64.pack(member_id)


def suffix_u64(stored: bytes, prefix: bytes) -> int:
    return int(_U64.unpack(stored[len(prefix) :])[0])


def suffix_u16(stored: bytes, prefix: bytes) -> int:
    return int(_U16.unpack(stored[len(prefix) :])[0])


def deferred_key(hlc: int, origin: int, seq: int) -> bytes:
    return _DEFERRED_KEY.pack(hlc, origin, seq)


def pack_high_seqs(high_seqs: dict[int, int]) -> bytes:
    return b"".join(_LOG_KEY.pack(origin, seq) for origin, seq in high_seqs.items())


def unpack_high_seqs(stored: bytes | None) -> dict[int, int]:
    return {origin: seq for origin, seq in _LOG_KEY.iter_unpack(stored or b"")}
