"""Audit buckets: a cheap fingerprint of the records a node holds.

4,096 buckets; a record for stored key K with version V lands in bucket
crc32(K) mod 4096 (so every version of a key lands in the same bucket) and
XORs a 64-bit hash of (K, V) into it. Holding a record XORs it in, replacing
or purging it XORs it out, so two nodes holding the same live records have
equal buckets, whatever order they applied things in. Tombstones are left
out: a tombstone is purged by GC at slightly different times on different
nodes, and a missing delete still shows, as the live record it failed to
replace.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

BUCKETS = 4096
_VERSION = struct.Struct(">QQ")
_BUCKET = struct.Struct(">Q")
# Copying a keyless 8-byte blake2b costs less than setting one up for every record.
_HASHER = hashlib.blake2b(digest_size=8)


def bucket_of(stored_key: bytes) -> int:
    return zlib.crc32(stored_key) & (BUCKETS - 1)


def record_hash(stored_key: bytes, hlc: int, origin: int) -> int:
    hasher = _HASHER.copy()
    hasher.update(stored_key)
    hasher.update(_VERSION.pack(hlc, origin))
    return int.from_bytes(hasher.digest(), "big")


def fold(
    xors: dict[int, int], stored_keys: Sequence[bytes], hlcs: Sequence[int], origins: Sequence[int]
) -> None:
    """XOR each record's ``record_hash`` into its bucket's entry of ``xors`` (many records:
    the same result as one ``bucket_of`` and ``record_hash`` each, without their calls)."""
    copy = _HASHER.copy
    pack = _VERSION.pack
    crc32 = zlib.crc32
    from_bytes = int.from_bytes
    held = xors.get
    mask = BUCKETS - 1
    for stored_key, hlc, origin in zip(stored_keys, hlcs, origins, strict=True):
        hasher = copy()
        hasher.update(stored_key)
        hasher.update(pack(hlc, origin))
        bucket = crc32(stored_key) & mask
        xors[bucket] = held(bucket, 0) ^ from_bytes(hasher.digest(), "big")


def pack_buckets(buckets: list[int]) -> bytes:
    return b"".join(_BUCKET.pack(value) for value in buckets)


def unpack_buckets(packed: bytes) -> list[int]:
    if len(packed) != BUCKETS * _BUCKET.size:
        raise ValueError(f"audit buckets must be {BUCKETS * _BUCKET.size} bytes")
    return [int(v) for (v,) in _BUCKET.iter_unpack(packed)]


def differing(mine: list[int], theirs: list[int]) -> list[int]:
    return [index for index, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b]


def digest(buckets: list[int]) -> int:
    """One 64-bit summary of all buckets: equal digests mean equal buckets (whp)."""
    return int.from_bytes(hashlib.blake2b(pack_buckets(buckets), digest_size=8).digest(), "big")


@dataclass(frozen=True, slots=True)
class Agreement:
    """Whether members' audit digests agree. ``common`` is the digest more than half
    of the known members hold (None without such a majority), ``differ`` the known
    members without it (all of them without a majority), ``unknown`` the members
    with no digest known yet."""

    agree: bool
    common: int | None
    differ: tuple[int, ...]
    unknown: tuple[int, ...]


def agreement(digests: Mapping[int, int | None]) -> Agreement:
    """Compare the digests of members (id -> digest, None when not known).

    They agree when every member's digest is known and all are equal.
    """
    known = {member: value for member, value in digests.items() if value is not None}
    unknown = tuple(sorted(member for member, value in digests.items() if value is None))
    if not known:
        return Agreement(False, None, (), unknown)
    value, count = Counter(known.values()).most_common(1)[0]
    common = value if 2 * count > len(known) else None
    differ = tuple(sorted(member for member, held in known.items() if held != common))
    return Agreement(not differ and not unknown, common, differ, unknown)
