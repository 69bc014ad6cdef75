"""How Rumor's data maps onto the column families' keys.

- ``kv`` / ``val``: namespace (16 raw bytes) + key bytes. Byte order of the
  key is list order, and all keys of a namespace are contiguous.
- ``log``: origin (u64 big-endian) + seq (u64 big-endian), so one origin's
  records are contiguous and in seq order for anti-entropy.
- ``meta``: the fixed names below, each holding a small packed value.
"""

from __future__ import annotations

import struct

NAMESPACE_BYTES = 16
_LOG_KEY = struct.Struct(">QQ")
_U64 = struct.Struct(">Q")
_MARKS = struct.Struct(">QQ")  # seq, hlc
_COUNTERS = struct.Struct(">qq")  # live or expired records held, tombstones held

META_NODE_ID = b"node_id"
META_MARKS = b"marks"  # last seq and hlc written
META_RESERVED = b"reserved"  # seq and hlc reserved by a synced write (durability wal)
META_COUNTERS = b"counters"


def record_key(namespace: bytes, key: bytes) -> bytes:
    return namespace + key


def split_record_key(stored: bytes) -> tuple[bytes, bytes]:
    return stored[:NAMESPACE_BYTES], stored[NAMESPACE_BYTES:]


def log_key(origin: int, seq: int) -> bytes:
    return _LOG_KEY.pack(origin, seq)


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
