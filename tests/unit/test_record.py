"""The record header codec and its expiry semantics (rumor.node.core.record).

Checks that every header survives encode/decode (metadata absent, empty and
present are three different things), that the hot-path ``decode_version``
agrees with the full decode, that a record is expired exactly when
``0 < expiration <= now``, and that corrupt or short header bytes raise
CorruptRecord rather than decoding into nonsense.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rumor.node.core.errors import InvalidRequest
from rumor.node.core.record import (
    FLAG_METADATA,
    FLAG_TOMBSTONE,
    HEADER_FIXED_SIZE,
    CorruptRecord,
    RecordHeader,
    decode_version,
    gone,
    header_ids,
)
from rumor.node.core.version import Version

U64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
I64 = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
U32 = st.integers(min_value=0, max_value=(1 << 32) - 1)
FLAGS_OFFSET = 32  # hlc, origin, seq, expiration: four 8-byte fields

headers = st.builds(
    RecordHeader,
    hlc=U64,
    origin=U64,
    seq=U64,
    expiration=I64,
    tombstone=st.booleans(),
    metadata=st.none() | st.just(b"") | st.binary(max_size=1100),
    value_length=U32,
)


@given(headers)
def test_every_header_survives_encode_and_decode(header: RecordHeader) -> None:
    assert RecordHeader.decode(header.encode()) == header


@given(headers)
def test_encoded_size_is_fixed_part_plus_metadata(header: RecordHeader) -> None:
    extra = 0 if header.metadata is None else len(header.metadata)
    assert len(header.encode()) == HEADER_FIXED_SIZE + extra


@given(headers)
def test_decode_version_agrees_with_decode(header: RecordHeader) -> None:
    encoded = header.encode()
    decoded = RecordHeader.decode(encoded)
    assert decode_version(encoded) == (decoded.version, decoded.tombstone)
    assert decode_version(encoded) == (Version(header.hlc, header.origin), header.tombstone)


@given(headers, st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_the_sweepers_fast_checks_agree_with_decode(header: RecordHeader, now_s: float) -> None:
    encoded = header.encode()
    assert header_ids(encoded) == (header.hlc, header.origin, header.seq)
    assert gone(encoded, now_s) == (not header.live(now_s))


def test_the_fast_checks_refuse_a_short_header() -> None:
    with pytest.raises(CorruptRecord):
        header_ids(b"\x00" * (HEADER_FIXED_SIZE - 1))
    with pytest.raises(CorruptRecord):
        gone(b"", 0.0)


def test_header_is_37_bytes_before_metadata() -> None:
    assert HEADER_FIXED_SIZE == 37
    assert len(RecordHeader(hlc=1, origin=2, seq=3).encode()) == 37


def test_absent_empty_and_present_metadata_stay_distinct() -> None:
    absent = RecordHeader(hlc=1, origin=2, seq=3, metadata=None)
    empty = RecordHeader(hlc=1, origin=2, seq=3, metadata=b"")
    present = RecordHeader(hlc=1, origin=2, seq=3, metadata=b'{"a":1}')
    assert absent.encode() != empty.encode()
    assert RecordHeader.decode(absent.encode()).metadata is None
    assert RecordHeader.decode(empty.encode()).metadata == b""
    assert RecordHeader.decode(present.encode()).metadata == b'{"a":1}'


def test_flags_byte_records_tombstone_and_metadata() -> None:
    plain = RecordHeader(hlc=1, origin=2, seq=3).encode()
    both = RecordHeader(hlc=1, origin=2, seq=3, tombstone=True, metadata=b"").encode()
    assert plain[FLAGS_OFFSET] == 0
    assert both[FLAGS_OFFSET] == FLAG_TOMBSTONE | FLAG_METADATA


def test_fields_are_big_endian_so_hlc_leads() -> None:
    encoded = RecordHeader(hlc=0x0102030405060708, origin=9, seq=10).encode()
    assert encoded[:8] == bytes([1, 2, 3, 4, 5, 6, 7, 8])


def test_version_is_hlc_then_origin() -> None:
    header = RecordHeader(hlc=100, origin=7, seq=1)
    assert header.version == Version(100, 7)
    assert header.version.hlc == 100
    assert header.version.origin == 7


@pytest.mark.parametrize("expiration", [1 << 63, (1 << 64) + 5, -(1 << 63) - 1])
def test_an_expiration_beyond_64_bits_is_an_invalid_request_not_a_struct_error(
    expiration: int,
) -> None:
    header = RecordHeader(hlc=1, origin=2, seq=3, expiration=expiration)
    with pytest.raises(InvalidRequest, match=f"Invalid expiration of {expiration}"):
        header.encode()


def test_the_widest_expiration_still_encodes() -> None:
    header = RecordHeader(hlc=1, origin=2, seq=3, expiration=(1 << 63) - 1)
    assert RecordHeader.decode(header.encode()) == header


# ---- expiry ----------------------------------------------------------------


def test_expiration_zero_never_expires() -> None:
    header = RecordHeader(hlc=1, origin=1, seq=1, expiration=0)
    assert not header.expired(0)
    assert not header.expired(1e18)
    assert header.live(1e18)


def test_record_is_live_before_its_expiration() -> None:
    header = RecordHeader(hlc=1, origin=1, seq=1, expiration=1000)
    assert not header.expired(999.999)
    assert header.live(999.999)


def test_record_expires_exactly_at_its_expiration() -> None:
    header = RecordHeader(hlc=1, origin=1, seq=1, expiration=1000)
    assert header.expired(1000)
    assert not header.live(1000)
    assert header.expired(1000.5)


def test_tombstone_is_never_live() -> None:
    tombstone = RecordHeader(hlc=1, origin=1, seq=1, tombstone=True)
    assert not tombstone.live(0)
    assert not tombstone.expired(0)  # deleted, not expired


@given(I64, st.floats(min_value=-1e19, max_value=1e19, allow_nan=False), st.booleans())
def test_expired_and_live_follow_the_documented_rule(
    expiration: int, now_s: float, tombstone: bool
) -> None:
    header = RecordHeader(hlc=1, origin=1, seq=1, expiration=expiration, tombstone=tombstone)
    expected_expired = 0 < expiration <= now_s
    assert header.expired(now_s) == expected_expired
    assert header.live(now_s) == (not tombstone and not expected_expired)


# ---- corrupt headers ---------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 8, 32, 36])
def test_short_header_raises_corrupt_record(length: int) -> None:
    encoded = RecordHeader(hlc=5, origin=6, seq=7).encode()[:length]
    with pytest.raises(CorruptRecord):
        RecordHeader.decode(encoded)


@pytest.mark.parametrize("flags", [0x04, 0x08, 0x80, 0xFF, 0x05])
def test_unknown_flags_raise_corrupt_record(flags: int) -> None:
    encoded = bytearray(RecordHeader(hlc=5, origin=6, seq=7).encode())
    encoded[FLAGS_OFFSET] = flags
    with pytest.raises(CorruptRecord):
        RecordHeader.decode(bytes(encoded))


def test_corrupt_record_is_a_value_error() -> None:
    assert issubclass(CorruptRecord, ValueError)


@pytest.mark.parametrize("length", [0, 8, 36])
def test_decode_version_of_a_short_header_raises_corrupt_record(length: int) -> None:
    encoded = RecordHeader(hlc=5, origin=6, seq=7).encode()[:length]
    with pytest.raises(CorruptRecord):
        decode_version(encoded)


@given(st.binary(max_size=80))
def test_arbitrary_bytes_decode_or_raise_corrupt_record(data: bytes) -> None:
    try:
        header = RecordHeader.decode(data)
    except CorruptRecord:
        return
    assert len(data) >= HEADER_FIXED_SIZE
    # What decodes re-encodes to the same bytes, unless metadata was absent but
    # bytes trailed the fixed part (those are ignored).
    if header.metadata is not None:
        assert header.encode() == data
    else:
        assert header.encode() == data[:HEADER_FIXED_SIZE]
