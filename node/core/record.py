"""The record: what is stored and replicated for one key.

A record is a header (version, origin's write counter, expiration, flags,
metadata, value length) and, apart from it, the value bytes. Headers are
small and stored in their own column family so that listing reads headers
only, never values.

Header encoding (big-endian), 37 bytes then the metadata:
    hlc u64 | origin u64 | seq u64 | expiration i64 | flags u8 | value_length u32 | metadata
``expiration`` is absolute seconds since the epoch, 0 for "never". A record is
expired when ``0 < expiration <= now``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

from rumor.node.core.errors import InvalidRequest
from rumor.node.core.version import Version

_HEADER = struct.Struct(">QQQqBI")
HEADER_FIXED_SIZE = _HEADER.size

FLAG_TOMBSTONE = 0x01
FLAG_METADATA = 0x02
_KNOWN_FLAGS = FLAG_TOMBSTONE | FLAG_METADATA


class CorruptRecord(ValueError):
    """Stored or received header bytes that do not decode."""


class RecordHeader(NamedTuple):
    """Everything about a record except its value."""

    hlc: int
    origin: int
    seq: int
    expiration: int = 0
    tombstone: bool = False
    metadata: bytes | None = None  # compact JSON text
    value_length: int = 0

    @property
    def version(self) -> Version:
        return Version(self.hlc, self.origin)

    def expired(self, now_s: float) -> bool:
        """True when the record has an expiration and it is not in the future."""
        return 0 < self.expiration <= now_s

    def live(self, now_s: float) -> bool:
        """True when the key reads as present: neither deleted nor expired."""
        return not self.tombstone and not self.expired(now_s)

    def encode(self) -> bytes:
        """The header's bytes; InvalidRequest if a field does not fit its width."""
        flags = (FLAG_TOMBSTONE if self.tombstone else 0) | (
            FLAG_METADATA if self.metadata is not None else 0
        )
        try:
            fixed = _HEADER.pack(
                self.hlc, self.origin, self.seq, self.expiration, flags, self.value_length
            )
        except struct.error:
            raise InvalidRequest(self._unencodable()) from None
        return fixed + self.metadata if self.metadata is not None else fixed

    def _unencodable(self) -> str:
        if not -(1 << 63) <= self.expiration < 1 << 63:
            return (
                f"Invalid expiration of {self.expiration}. Please specify a number of"
                " seconds since the UNIX epoch that fits in 64 bits."
            )
        if not 0 <= self.value_length < 1 << 32:
            return f"Value length of {self.value_length} does not fit in a record."
        return f"The record header (hlc, origin, seq) {self.version}, {self.seq} does not fit."

    @classmethod
    def decode(cls, data: bytes) -> RecordHeader:
        if len(data) < HEADER_FIXED_SIZE:
            raise CorruptRecord(f"record header of {len(data)} bytes is too short")
        hlc, origin, seq, expiration, flags, value_length = _HEADER.unpack_from(data)
        if flags & ~_KNOWN_FLAGS:
            raise CorruptRecord(f"record header has unknown flags {flags:#x}")
        metadata = bytes(data[HEADER_FIXED_SIZE:]) if flags & FLAG_METADATA else None
        return cls(
            hlc=hlc,
            origin=origin,
            seq=seq,
            expiration=expiration,
            tombstone=bool(flags & FLAG_TOMBSTONE),
            metadata=metadata,
            value_length=value_length,
        )


def encode_headers(headers: Sequence[RecordHeader]) -> list[bytes]:
    """``encode`` of every header (a bulk write's hot path); raises what ``encode`` raises."""
    pack = _HEADER.pack
    encoded: list[bytes] = []
    append = encoded.append
    try:
        for hlc, origin, seq, expiration, tombstone, metadata, value_length in headers:
            flags = FLAG_TOMBSTONE if tombstone else 0
            if metadata is None:
                append(pack(hlc, origin, seq, expiration, flags, value_length))
            else:
                flags |= FLAG_METADATA
                append(pack(hlc, origin, seq, expiration, flags, value_length) + metadata)
    except struct.error:
        for header in headers:
            header.encode()  # raises InvalidRequest, worded for the first that does not fit
        raise
    return encoded


def header_ids(data: bytes) -> tuple[int, int, int]:
    """(hlc, origin, seq) of an encoded header, without decoding the rest."""
    if len(data) < HEADER_FIXED_SIZE:
        raise CorruptRecord(f"record header of {len(data)} bytes is too short")
    hlc, origin, seq, _expiration, _flags, _length = _HEADER.unpack_from(data)
    return hlc, origin, seq


def gone(data: bytes, now_s: float) -> bool:
    """Whether an encoded header is a tombstone or expired (the sweeper's hot path)."""
    if len(data) < HEADER_FIXED_SIZE:
        raise CorruptRecord(f"record header of {len(data)} bytes is too short")
    _hlc, _origin, _seq, expiration, flags, _length = _HEADER.unpack_from(data)
    return bool(flags & FLAG_TOMBSTONE) or 0 < expiration <= now_s


def decode_version(data: bytes) -> tuple[Version, bool]:
    """Only the version and tombstone flag of an encoded header (the hot path of apply)."""
    if len(data) < HEADER_FIXED_SIZE:
        raise CorruptRecord(f"record header of {len(data)} bytes is too short")
    hlc, origin, _seq, _expiration, flags, _length = _HEADER.unpack_from(data)
    return Version(hlc, origin), bool(flags & FLAG_TOMBSTONE)
