"""The structural rules of replicated records (rumor.node.core.record_shape), pure.

Checks that every well-formed record passes and comes back decoded, that each
rule rejects what it should and names itself (namespace length, key length,
UTF-8 and dot keys, the key shapes of the reserved namespaces, a header that
does not decode or has stray bytes, origin 0, seq 0, a tombstone with a
value, the value limit and length, metadata JSON and size), that client-write
rules such as a past expiration are not structural, and the coverage claim
rules.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rumor.node.core.namespaces import MEMBERS_NAMESPACE, RESERVED_NAMESPACE
from rumor.node.core.record import FLAG_METADATA, HEADER_FIXED_SIZE, RecordHeader
from rumor.node.core.record_shape import MalformedRecord, check, coverage_fault, well_formed
from rumor.node.core.validation import MAX_KEY_BYTES, MAX_METADATA_BYTES, MAX_VALUE_BYTES

NS = bytes.fromhex("0123456789abcdef0123456789abcdef")
U64 = st.integers(min_value=1, max_value=(1 << 64) - 1)

keys = (
    st.text(min_size=1, max_size=100).map(str.encode).filter(lambda key: key not in (b".", b".."))
)
metadata = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=5).map(
        lambda value: json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    ),
)


@st.composite
def records(draw: st.DrawFn) -> tuple[bytes, bytes, bytes, bytes]:
    tombstone = draw(st.booleans())
    value = b"" if tombstone else draw(st.binary(max_size=64))
    header = RecordHeader(
        hlc=draw(st.integers(0, (1 << 64) - 1)),
        origin=draw(U64),
        seq=draw(U64),
        expiration=draw(st.integers(-(1 << 63), (1 << 63) - 1)),
        tombstone=tombstone,
        metadata=draw(metadata),
        value_length=len(value),
    )
    return NS, draw(keys), header.encode(), value


def header(**fields: object) -> bytes:
    base: dict[str, object] = {"hlc": 5, "origin": 7, "seq": 1}
    base.update(fields)
    return RecordHeader(**base).encode()  # type: ignore[arg-type]


def broken(namespace: bytes, key: bytes, raw: bytes, value: bytes = b"") -> str:
    with pytest.raises(MalformedRecord) as raised:
        check(namespace, key, raw, value)
    assert not well_formed(namespace, key, raw, value)
    return str(raised.value)


@given(records())
def test_every_well_formed_record_passes_and_comes_back_decoded(
    record: tuple[bytes, bytes, bytes, bytes],
) -> None:
    assert check(*record) == RecordHeader.decode(record[2])
    assert well_formed(*record)


@given(records(), st.integers(0, 15) | st.integers(17, 40))
def test_a_namespace_of_any_other_length_is_rejected(
    record: tuple[bytes, bytes, bytes, bytes], length: int
) -> None:
    _, key, raw, value = record
    assert "namespace is" in broken(bytes(length), key, raw, value)


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        (b"", "key is 0 bytes"),
        (b"k" * (MAX_KEY_BYTES + 1), f"key is {MAX_KEY_BYTES + 1} bytes"),
        (b".", "key is '.'"),
        (b"..", "key is '..'"),
        (b"\xff\xfe", "not valid UTF-8"),
        (b"caf\xc3", "not valid UTF-8"),
    ],
)
def test_a_key_that_breaks_a_key_rule_is_rejected(key: bytes, rule: str) -> None:
    assert rule in broken(NS, key, header())


def test_the_longest_key_and_dotted_names_that_are_not_dot_keys_pass() -> None:
    assert well_formed(NS, "é".encode() * (MAX_KEY_BYTES // 2), header(), b"")
    assert well_formed(NS, b"...", header(), b"")
    assert well_formed(NS, b"./a", header(), b"")


def test_namespace_records_must_be_keyed_by_a_namespace_id() -> None:
    assert well_formed(RESERVED_NAMESPACE, b"0123456789abcdef0123456789abcdef", header(), b"")
    for key in (b"hello", b"0123456789ABCDEF0123456789ABCDEF", b"00" * 15 + b"01", b"0" * 31):
        assert "namespace id" in broken(RESERVED_NAMESPACE, key, header())


def test_member_records_must_be_keyed_by_a_member_id() -> None:
    assert well_formed(MEMBERS_NAMESPACE, b"0000000000000a0a", header(), b"")
    for key in (b"a0a", b"0000000000000A0A", b"0000000000000a0a0", b"node"):
        assert "member id" in broken(MEMBERS_NAMESPACE, key, header())


def test_an_unknown_reserved_namespace_follows_the_general_key_rules() -> None:
    other = bytes(15) + b"\x07"
    assert well_formed(other, b"anything", header(), b"")
    assert "key is '.'" in broken(other, b".", header())


FLAGS_AT = 32  # hlc, origin, seq, expiration: 8 bytes each


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        (b"", "does not decode"),
        (header()[:-1], "does not decode"),
        (header()[:FLAGS_AT] + b"\x80" + header()[FLAGS_AT + 1 :], "unknown flags"),
        (header() + b"x", "1 stray bytes"),
    ],
)
def test_a_header_that_does_not_decode_exactly_is_rejected(raw: bytes, rule: str) -> None:
    assert rule in broken(NS, b"k", raw)


def test_a_header_with_metadata_keeps_it_after_the_fixed_part() -> None:
    raw = header(metadata=b"{}")
    assert raw[FLAGS_AT] & FLAG_METADATA
    assert len(raw) == HEADER_FIXED_SIZE + 2
    assert well_formed(NS, b"k", raw, b"")


def test_origin_zero_and_seq_zero_are_rejected() -> None:
    assert "origin is 0" in broken(NS, b"k", header(origin=0))
    assert "seq is 0" in broken(NS, b"k", header(seq=0))


def test_a_tombstone_carries_no_value() -> None:
    assert well_formed(NS, b"k", header(tombstone=True), b"")
    assert "tombstone" in broken(NS, b"k", header(tombstone=True, value_length=1), b"v")
    assert "tombstone" in broken(NS, b"k", header(tombstone=True), b"v")


def test_the_value_must_be_within_the_limit_and_as_long_as_the_header_says() -> None:
    assert well_formed(NS, b"k", header(value_length=3), b"abc")
    assert "the header says 2" in broken(NS, b"k", header(value_length=2), b"abc")
    assert "the header says 0" in broken(NS, b"k", header(), b"abc")
    too_long = bytes(MAX_VALUE_BYTES + 1)
    assert "exceeds" in broken(NS, b"k", header(value_length=len(too_long)), too_long)
    limit = bytes(MAX_VALUE_BYTES)
    assert well_formed(NS, b"k", header(value_length=len(limit)), limit)


@pytest.mark.parametrize(
    ("metadata", "rule"),
    [
        (b"", "not valid UTF-8 JSON"),
        (b"{", "not valid UTF-8 JSON"),
        (b'{"a":NaN}', "not valid UTF-8 JSON"),
        (b'"\xff"', "not valid UTF-8 JSON"),
        (b'"' + b"x" * (MAX_METADATA_BYTES - 1) + b'"', f"metadata of {MAX_METADATA_BYTES + 1}"),
    ],
)
def test_metadata_must_be_json_within_the_limit(metadata: bytes, rule: str) -> None:
    assert rule in broken(NS, b"k", header(metadata=metadata))


def test_metadata_at_the_limit_passes() -> None:
    at_limit = b'"' + b"x" * (MAX_METADATA_BYTES - 2) + b'"'
    assert well_formed(NS, b"k", header(metadata=at_limit), b"")
    assert check(NS, b"k", header(metadata=at_limit), b"").metadata == at_limit


def test_client_write_rules_are_not_structural() -> None:
    """A past expiration, or one under any minimum TTL, still replicates."""
    assert well_formed(NS, b"k", header(expiration=1), b"")
    assert well_formed(NS, b"k", header(expiration=-5), b"")


def test_coverage_claims_must_be_ranges_of_a_real_origin_below_two_to_the_63() -> None:
    assert coverage_fault(7, 0, 0) is None
    assert coverage_fault(7, 3, 9) is None
    assert coverage_fault(7, 0, (1 << 63) - 1) is None
    assert coverage_fault(0, 0, 5) == "claim for origin 0"
    assert "not a range" in (coverage_fault(7, 6, 5) or "")
    assert "not a range" in (coverage_fault(7, -1, 5) or "")
    assert "2^63" in (coverage_fault(7, 0, 1 << 63) or "")
