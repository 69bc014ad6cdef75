"""The bulk write's hot path does what the per-record path does, a column at a time.

``audit.fold`` against ``bucket_of`` + ``record_hash``; ``encode_headers``
against ``RecordHeader.encode`` (and its error); ``all_keys_and_values_valid``
against ``validation.key`` and ``value_length`` one by one (UTF-8 cut at a key's
edge included); ``plain_columns`` only for requests whose items set nothing but a
key and a value; ``write_all`` against ``write_many`` on two replicas (same
records, log, counters, buckets); a bulk write that repeats a key or replaces
held records and tombstones.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rumor.node.core import audit, validation
from rumor.node.core.errors import InvalidRequest
from rumor.node.core.record import RecordHeader, encode_headers
from rumor.node.replication import Replica
from rumor.node.replication.replica.replica import Write
from rumor.node.server.grpc.bulk_put_request import plain_columns
from rumor.node.storage import MemoryStore
from rumor.node.storage.store import KV, LOG, META, VAL
from rumor.v1 import kv_pb2

NAMESPACE = b"\x01" * 16
WALL_MS = 1_700_000_000_000


@given(
    st.lists(
        st.tuples(st.binary(max_size=40), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
        max_size=30,
    )
)
def test_fold_xors_each_record_hash_into_its_bucket(records: list[tuple[bytes, int, int]]) -> None:
    expected: dict[int, int] = {}
    for stored_key, hlc, origin in records:
        bucket = audit.bucket_of(stored_key)
        expected[bucket] = expected.get(bucket, 0) ^ audit.record_hash(stored_key, hlc, origin)
    folded: dict[int, int] = {}
    keys, hlcs, origins = [r[0] for r in records], [r[1] for r in records], [r[2] for r in records]
    audit.fold(folded, keys, hlcs, origins)
    assert folded == expected


@given(st.binary(max_size=40), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_record_hash_is_blake2b_of_key_and_version(
    stored_key: bytes, hlc: int, origin: int
) -> None:
    # Peers compare buckets: a record's hash must never change.
    version = hlc.to_bytes(8, "big") + origin.to_bytes(8, "big")
    digest = hashlib.blake2b(stored_key + version, digest_size=8).digest()
    assert audit.record_hash(stored_key, hlc, origin) == int.from_bytes(digest, "big")


@given(
    st.lists(
        st.builds(
            RecordHeader,
            hlc=st.integers(0, 2**64 - 1),
            origin=st.integers(0, 2**64 - 1),
            seq=st.integers(0, 2**64 - 1),
            expiration=st.integers(0, 2**31),
            tombstone=st.booleans(),
            metadata=st.none() | st.binary(max_size=20),
            value_length=st.integers(0, 2**32 - 1),
        ),
        max_size=10,
    )
)
def test_encode_headers_is_encode_of_each(headers: list[RecordHeader]) -> None:
    assert encode_headers(headers) == [header.encode() for header in headers]


def test_encode_headers_raises_what_encode_raises() -> None:
    headers = [RecordHeader(1, 2, 3), RecordHeader(1, 2, 4, expiration=2**64)]
    with pytest.raises(InvalidRequest) as raised:
        encode_headers(headers)
    with pytest.raises(InvalidRequest) as single:
        headers[1].encode()
    assert str(raised.value) == str(single.value)


def _each_valid(keys: list[bytes], values: list[bytes]) -> bool:
    try:
        for key in keys:
            validation.key(key)
        for value in values:
            validation.value_length(len(value))
    except InvalidRequest:
        return False
    return True


KEY_BYTES = st.sampled_from([b"a", b".", b"\xc3", b"\xa9", b"\xc3\xa9", b"\xed\xa0\x80", b"\n"])


@given(st.lists(st.lists(KEY_BYTES, max_size=4).map(b"".join), max_size=6))
def test_all_keys_valid_agrees_with_key_one_by_one(keys: list[bytes]) -> None:
    values = [b"v"] * len(keys)
    assert validation.all_keys_and_values_valid(keys, values) == _each_valid(keys, values)


def test_all_keys_and_values_valid_checks_lengths() -> None:
    big = b"x" * (validation.MAX_VALUE_BYTES + 1)
    assert validation.all_keys_and_values_valid([b"k" * 512], [b""])
    assert not validation.all_keys_and_values_valid([b"k" * 513], [b""])
    assert not validation.all_keys_and_values_valid([b"k", b".."], [b"", b""])
    assert not validation.all_keys_and_values_valid([b"k"], [big])
    assert validation.all_keys_and_values_valid([], [])


def _replica() -> Replica:
    return Replica(MemoryStore(), new_node_id=9, wall_ms=WALL_MS)


def _contents(replica: Replica) -> dict[str, object]:
    store = replica.state.store
    return {family: list(store.scan(family, b"")) for family in (KV, VAL, LOG, META)} | {
        "records": replica.records_held,
        "tombstones": replica.tombstones_held,
        "buckets": list(replica.audit_buckets),
        "seq": replica.seq,
        "written": replica.state.written,
    }


def _writes(start: int, count: int, *, tombstone_every: int = 0) -> list[Write]:
    return [
        Write(NAMESPACE, b"k%05d" % i, tombstone=True)
        if tombstone_every and i % tombstone_every == 0
        else Write(NAMESPACE, b"k%05d" % i, b"v%d" % i, b'{"m":1}' if i % 7 == 0 else None)
        for i in range(start, start + count)
    ]


def test_write_all_matches_write_many_and_returns_the_last_ticket() -> None:
    many, bulk = _replica(), _replica()
    rounds = [
        _writes(0, 2500),
        _writes(1000, 2500, tombstone_every=3),  # replaces records, adds tombstones
        _writes(500, 10, tombstone_every=2) + _writes(500, 10),  # a key twice in one batch
        [],
    ]
    for writes in rounds:
        applied = many.write_many(writes, WALL_MS)
        ticket = bulk.write_all(writes, WALL_MS)
        assert ticket == (applied[-1].ticket if applied else 0)
        assert _contents(bulk) == _contents(many)


def _request(items: list[kv_pb2.PutRequest], namespace_id: str) -> kv_pb2.BulkPutRequest:
    encoded = kv_pb2.BulkPutRequest(namespace_id=namespace_id, items=items).SerializeToString()
    return kv_pb2.BulkPutRequest.FromString(encoded)


PLAIN_ITEMS = {
    "small": [
        kv_pb2.PutRequest(key=b"k%d" % i, value=b"v" * (i * 997 % 20_000 + 1)) for i in range(40)
    ],
    "long lengths": [kv_pb2.PutRequest(key=b"k" * 600, value=b"v" * (3 << 20))],
    "none": [],
}
NOT_PLAIN_ITEMS = {
    "expiration 0": [kv_pb2.PutRequest(key=b"a", value=b"b", expiration=0)],
    "ttl": [
        kv_pb2.PutRequest(key=b"a", value=b"b"),
        kv_pb2.PutRequest(key=b"c", value=b"d", expiration_ttl=60),
    ],
    "empty metadata": [kv_pb2.PutRequest(key=b"a", value=b"b", metadata=b"")],
    "item namespace": [kv_pb2.PutRequest(key=b"a", value=b"b", namespace_id="x")],
    "min_replicas": [kv_pb2.PutRequest(key=b"a", value=b"b", min_replicas=2)],
    "empty value": [kv_pb2.PutRequest(key=b"a", value=b"")],
    "empty key": [kv_pb2.PutRequest(key=b"", value=b"b")],
}


@pytest.mark.parametrize("namespace_id", ["", "n" * 200])
@pytest.mark.parametrize("name", sorted(PLAIN_ITEMS))
def test_plain_columns_reads_keys_and_values(name: str, namespace_id: str) -> None:
    items = PLAIN_ITEMS[name]
    columns = plain_columns(_request(items, namespace_id))
    assert columns == ([i.key for i in items], [i.value for i in items])


@pytest.mark.parametrize("name", sorted(NOT_PLAIN_ITEMS))
def test_plain_columns_refuses_an_item_that_sets_more(name: str) -> None:
    assert plain_columns(_request(NOT_PLAIN_ITEMS[name], "abc")) is None
