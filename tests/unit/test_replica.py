"""The replica (rumor.node.replication.replica.replica), sans-I/O, mostly on MemoryStore.

Checks client writes and reads (values, tombstones, expiry), the sequence and
HLC each record gets (one tick and one seq per record, also in bulk and across
batches of 1,000), filled list pages in byte order with literal prefixes and
start-after paging, the held-record counters and the store's internal
consistency (kv, val and log agree), namespace records, sweeping (tombstones,
expired records and deleted namespaces only, and only once the purge rule
allows), both durability modes, and restarts — including a store that loses
every unsynced write in a power loss — after which seq and HLC continue past
everything issued and nothing else changes.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rumor.node.core import hlc as hlc_bits
from rumor.node.core import paging
from rumor.node.core.errors import InvalidRequest
from rumor.node.core.namespaces import MEMBERS_NAMESPACE, RESERVED_NAMESPACE
from rumor.node.core.record import RecordHeader
from rumor.node.replication.replica.replica import (
    MAX_BATCH_RECORDS,
    SEQ_BLOCK,
    Applied,
    Durability,
    ListPage,
    Replica,
    Write,
)
from rumor.node.storage import MemoryStore, RocksStore, Store, layout
from rumor.node.storage.store import COLUMN_FAMILIES, KV, LOG, META, VAL, Batch, prefix_end

NODE_ID = 0x1234_5678_9ABC_DEF0
OTHER_NODE_ID = 0x0FED_CBA9_8765_4321
WALL_MS = 1_700_000_000_000
NOW_S = WALL_MS / 1000
NS = bytes.fromhex("0123456789abcdef0123456789abcdef")
OTHER_NS = bytes.fromhex("fedcba9876543210fedcba9876543210")


# ---- helpers -------------------------------------------------------------------------


def put(
    key: bytes,
    value: bytes = b"v",
    *,
    namespace: bytes = NS,
    metadata: bytes | None = None,
    expiration: int = 0,
) -> Write:
    return Write(namespace, key, value, metadata=metadata, expiration=expiration)


def delete(key: bytes, *, namespace: bytes = NS) -> Write:
    return Write(namespace, key, tombstone=True)


def namespace_key(namespace: bytes) -> bytes:
    return namespace.hex().encode()


def create_namespace(replica: Replica, namespace: bytes, title: bytes, wall_ms: int) -> Applied:
    return replica.write(Write(RESERVED_NAMESPACE, namespace_key(namespace), title), wall_ms)


def delete_namespace(replica: Replica, namespace: bytes, wall_ms: int) -> Applied:
    return replica.write(
        Write(RESERVED_NAMESPACE, namespace_key(namespace), tombstone=True), wall_ms
    )


def new_replica(
    store: Store | None = None,
    *,
    durability: Durability = Durability.FSYNC,
    node_id: int = NODE_ID,
    wall_ms: int = WALL_MS,
) -> Replica:
    return Replica(
        MemoryStore() if store is None else store,
        new_node_id=node_id,
        wall_ms=wall_ms,
        durability=durability,
    )


def make_durable(replica: Replica) -> None:
    replica.store.sync_wal()
    replica.mark_durable(replica.written_ticket)


def list_all(
    replica: Replica, prefix: bytes, limit: int, now_s: float, namespace: bytes = NS
) -> list[ListPage]:
    """Every page of a listing, passing the cursor through its encoded form."""
    pages: list[ListPage] = []
    cursor = b""
    while True:
        page = replica.list_page(namespace, prefix, paging.cursor(cursor), limit, now_s)
        pages.append(page)
        if page.complete:
            return pages
        assert len(page.keys) == limit
        cursor = paging.encode_cursor(page.keys[-1][0])
        assert len(pages) < 10_000


def names(page: ListPage) -> list[bytes]:
    return [key for key, _ in page.keys]


def held(replica: Replica, namespace: bytes = NS) -> set[bytes]:
    """The keys the store holds a record for (live, expired or tombstone)."""
    start = layout.record_key(namespace, b"")
    return {
        layout.split_record_key(stored)[1]
        for stored, _ in replica.store.scan(KV, start, prefix_end(start))
    }


def assert_consistent(replica: Replica) -> None:
    """kv, val and log agree with each other and with the held-record counters."""
    records = tombstones = 0
    expected_log: dict[bytes, bytes] = {}
    expected_values: set[bytes] = set()
    for stored_key, raw in replica.store.scan(KV, b""):
        header = RecordHeader.decode(raw)
        if header.tombstone:
            tombstones += 1
        else:
            records += 1
            expected_values.add(stored_key)
        expected_log[layout.log_key(header.origin, header.seq)] = stored_key
    assert (replica.records_held, replica.tombstones_held) == (records, tombstones)
    log = dict(replica.store.scan(LOG, b""))
    # Every held record is in the log; the log also keeps the entries of replaced
    # records (until GC), each pointing at a key that holds something newer or nothing.
    assert expected_log.items() <= log.items()
    for log_key, stored_key in log.items():
        if log_key in expected_log:
            continue
        origin, seq = layout.split_log_key(log_key)
        held = replica.store.get(KV, stored_key)
        if held is not None:
            header = RecordHeader.decode(held)
            assert (header.origin, header.seq) != (origin, seq)
    assert {key for key, _ in replica.store.scan(VAL, b"")} == expected_values
    stored_counters = replica.store.get(META, layout.META_COUNTERS)
    if stored_counters is not None:  # written with the first record
        assert layout.unpack_counters(stored_counters) == (records, tombstones)


class PowerLossStore(MemoryStore):
    """A MemoryStore that, after a power loss, holds only what was synced before it."""

    def __init__(self) -> None:
        super().__init__()
        self._unsynced: list[Batch] = []
        self._synced: list[Batch] = []

    def write(self, batch: Batch) -> None:
        super().write(batch)
        self._unsynced.append(batch)

    def sync_wal(self) -> None:
        super().sync_wal()
        self._synced.extend(self._unsynced)
        self._unsynced.clear()

    def after_power_loss(self) -> PowerLossStore:
        survivor = PowerLossStore()
        for batch in self._synced:
            survivor.write(batch)
        survivor.sync_wal()
        return survivor


@pytest.fixture
def replica() -> Replica:
    return new_replica()


@pytest.fixture
def rocks_path(tmp_path: Path) -> Path:
    return tmp_path / "db"


# ---- writes and reads ------------------------------------------------------------------


def test_write_then_read_round_trip(replica: Replica) -> None:
    applied = replica.write(
        put(b"key", b"value", metadata=b'{"a":1}', expiration=int(NOW_S) + 60), WALL_MS
    )
    result = replica.read(NS, b"key", NOW_S)
    assert result is not None
    header, value = result
    assert value == b"value"
    assert header == applied.header
    assert header.origin == NODE_ID
    assert header.seq == 1
    assert header.metadata == b'{"a":1}'
    assert header.expiration == int(NOW_S) + 60
    assert header.value_length == 5
    assert not header.tombstone
    assert_consistent(replica)


def test_empty_value_reads_as_empty_not_missing(replica: Replica) -> None:
    replica.write(put(b"empty", b""), WALL_MS)
    assert replica.read(NS, b"empty", NOW_S) == (replica.header(NS, b"empty"), b"")
    assert replica.read_many(NS, [b"empty"], NOW_S)[0] is not None


def test_missing_key_reads_as_none(replica: Replica) -> None:
    assert replica.read(NS, b"missing", NOW_S) is None
    assert replica.header(NS, b"missing") is None


def test_a_put_replaces_value_metadata_and_expiration_together(replica: Replica) -> None:
    replica.write(put(b"k", b"one", metadata=b"[1]", expiration=int(NOW_S) + 100), WALL_MS)
    replica.write(put(b"k", b"two"), WALL_MS)
    result = replica.read(NS, b"k", NOW_S + 1000)
    assert result is not None
    header, value = result
    assert value == b"two"
    assert header.metadata is None
    assert header.expiration == 0
    assert_consistent(replica)


def test_namespaces_do_not_share_keys(replica: Replica) -> None:
    replica.write(put(b"k", b"in ns"), WALL_MS)
    replica.write(put(b"k", b"in other", namespace=OTHER_NS), WALL_MS)
    assert replica.read(NS, b"k", NOW_S) is not None
    assert replica.value(NS, b"k") == b"in ns"
    assert replica.value(OTHER_NS, b"k") == b"in other"
    replica.write(delete(b"k"), WALL_MS)
    assert replica.read(NS, b"k", NOW_S) is None
    assert replica.value(OTHER_NS, b"k") == b"in other"


def test_read_many_answers_in_the_order_asked(replica: Replica) -> None:
    replica.write_many(
        [
            put(b"live", b"1"),
            put(b"gone", b"2"),
            put(b"old", b"3", expiration=int(NOW_S) + 5),
            put(b"empty", b""),
        ],
        WALL_MS,
    )
    replica.write(delete(b"gone"), WALL_MS)
    results = replica.read_many(
        NS, [b"old", b"missing", b"live", b"gone", b"empty", b"live"], NOW_S + 5
    )
    values = [None if result is None else result[1] for result in results]
    assert values == [None, None, b"1", None, b"", b"1"]
    first_live = results[2]
    assert first_live is not None
    assert first_live[0] == replica.header(NS, b"live")


def test_write_many_of_nothing_writes_nothing(replica: Replica) -> None:
    assert isinstance(replica.store, MemoryStore)
    writes_before = replica.store.writes
    assert replica.write_many([], WALL_MS) == []
    assert replica.store.writes == writes_before


def test_a_key_given_twice_in_one_write_many_is_held_once(replica: Replica) -> None:
    applied = replica.write_many([put(b"twice", b"first"), put(b"twice", b"second")], WALL_MS)
    assert replica.value(NS, b"twice") == b"second"
    assert replica.header(NS, b"twice") == applied[1].header
    assert replica.records_held == 1
    held = replica.header(NS, b"twice")
    assert held is not None
    log = dict(replica.store.scan(LOG, b""))
    assert log[layout.log_key(held.origin, held.seq)] == layout.record_key(NS, b"twice")
    assert_consistent(replica)


# ---- deletes and expiry -------------------------------------------------------------------


def test_delete_of_a_missing_key_writes_a_tombstone(replica: Replica) -> None:
    applied = replica.write(delete(b"never-written"), WALL_MS)
    header = replica.header(NS, b"never-written")
    assert header is not None
    assert header.tombstone
    assert header == applied.header
    assert header.value_length == 0
    assert replica.read(NS, b"never-written", NOW_S) is None
    assert replica.value(NS, b"never-written") is None
    assert (replica.records_held, replica.tombstones_held) == (0, 1)
    assert_consistent(replica)


def test_delete_of_a_held_key_replaces_it_with_a_tombstone(replica: Replica) -> None:
    put_applied = replica.write(put(b"k", b"value", metadata=b"1"), WALL_MS)
    delete_applied = replica.write(delete(b"k"), WALL_MS)
    assert delete_applied.header.version > put_applied.header.version
    assert replica.read(NS, b"k", NOW_S) is None
    assert replica.value(NS, b"k") is None
    assert (replica.records_held, replica.tombstones_held) == (0, 1)
    assert_consistent(replica)


def test_a_put_after_a_delete_brings_the_key_back(replica: Replica) -> None:
    replica.write(put(b"k", b"one"), WALL_MS)
    replica.write(delete(b"k"), WALL_MS)
    replica.write(put(b"k", b"two"), WALL_MS)
    result = replica.read(NS, b"k", NOW_S)
    assert result is not None
    assert result[1] == b"two"
    assert (replica.records_held, replica.tombstones_held) == (1, 0)
    assert_consistent(replica)


def test_record_expires_exactly_at_its_expiration(replica: Replica) -> None:
    expiration = int(NOW_S) + 10
    replica.write(put(b"k", expiration=expiration), WALL_MS)
    assert replica.read(NS, b"k", expiration - 0.001) is not None
    assert replica.read(NS, b"k", expiration) is None
    assert replica.read(NS, b"k", expiration + 1) is None
    assert replica.read_many(NS, [b"k"], expiration) == [None]
    assert replica.header(NS, b"k") is not None  # still held until swept


def test_expiration_zero_never_expires(replica: Replica) -> None:
    replica.write(put(b"k"), WALL_MS)
    assert replica.read(NS, b"k", 1e15) is not None


# ---- sequence numbers and HLC ------------------------------------------------------------


def test_each_write_gets_the_next_seq_and_a_greater_hlc(replica: Replica) -> None:
    walls = [WALL_MS, WALL_MS, WALL_MS + 5, WALL_MS - 1000, WALL_MS + 5, WALL_MS + 6]
    headers = [replica.write(put(b"k%d" % index), wall).header for index, wall in enumerate(walls)]
    assert [header.seq for header in headers] == list(range(1, len(walls) + 1))
    hlcs = [header.hlc for header in headers]
    assert all(later > earlier for earlier, later in pairwise(hlcs))
    assert all(header.origin == NODE_ID for header in headers)


def test_hlc_follows_the_wall_clock_when_it_moves_forward(replica: Replica) -> None:
    header = replica.write(put(b"k"), WALL_MS + 10_000).header
    assert hlc_bits.wall_ms_of(header.hlc) == WALL_MS + 10_000
    assert hlc_bits.counter_of(header.hlc) == 0


def test_write_many_ticks_once_per_record(replica: Replica) -> None:
    applied = replica.write_many([put(b"k%d" % index) for index in range(10)], WALL_MS)
    hlcs = [item.header.hlc for item in applied]
    seqs = [item.header.seq for item in applied]
    assert seqs == list(range(1, 11))
    assert hlcs == list(range(hlcs[0], hlcs[0] + 10))  # the wall clock stood still
    assert len({item.ticket for item in applied}) == 1


def test_write_many_over_1000_records_uses_batches_of_at_most_1000(replica: Replica) -> None:
    assert isinstance(replica.store, MemoryStore)
    writes_before = replica.store.writes
    count = 2 * MAX_BATCH_RECORDS + 500
    applied = replica.write_many([put(b"k%05d" % index) for index in range(count)], WALL_MS)
    assert [item.header.seq for item in applied] == list(range(1, count + 1))
    hlcs = [item.header.hlc for item in applied]
    assert hlcs == list(range(hlcs[0], hlcs[0] + count))
    tickets = [item.ticket for item in applied]
    assert tickets == sorted(tickets)
    sizes = [tickets.count(ticket) for ticket in sorted(set(tickets))]
    assert sizes == [1000, 1000, 500]
    assert replica.store.writes - writes_before == 3
    assert replica.records_held == count
    assert_consistent(replica)


walls = st.integers(min_value=WALL_MS - 5_000, max_value=WALL_MS + 5_000)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(walls, st.integers(min_value=0, max_value=40)), max_size=12))
def test_seq_and_hlc_strictly_increase_over_any_writes(steps: list[tuple[int, int]]) -> None:
    replica = new_replica()
    seqs: list[int] = []
    hlcs: list[int] = []
    for wall_ms, count in steps:
        for item in replica.write_many([put(b"k%d" % index) for index in range(count)], wall_ms):
            seqs.append(item.header.seq)
            hlcs.append(item.header.hlc)
            assert item.header.hlc >= hlc_bits.pack(wall_ms, 0)
    assert seqs == list(range(1, len(seqs) + 1))
    assert all(later > earlier for earlier, later in pairwise(hlcs))


# ---- list pages -------------------------------------------------------------------------


def test_list_is_in_utf8_byte_order(replica: Replica) -> None:
    keys = [b"b", b"a", b"!", b",", b"A", "é".encode(), b"a b", b"~", "日本".encode(), b"0"]
    replica.write_many([put(key) for key in keys], WALL_MS)
    page = replica.list_page(NS, b"", None, 1000, NOW_S)
    assert names(page) == sorted(keys)
    assert page.complete


def test_list_returns_the_headers_with_metadata_and_expiration(replica: Replica) -> None:
    expiration = int(NOW_S) + 100
    replica.write(put(b"k", b"value", metadata=b'{"m":true}', expiration=expiration), WALL_MS)
    page = replica.list_page(NS, b"", None, 10, NOW_S)
    [(key, header)] = page.keys
    assert key == b"k"
    assert header.metadata == b'{"m":true}'
    assert header.expiration == expiration


def test_list_prefix_is_literal_and_case_sensitive(replica: Replica) -> None:
    keys = [b"key\\_%", b"key\\_%more", b"key_x", b"keyA", b"key\\a", b"KEY\\_%", b"ke"]
    replica.write_many([put(key) for key in keys], WALL_MS)
    assert names(replica.list_page(NS, b"key\\_%", None, 1000, NOW_S)) == [
        b"key\\_%",
        b"key\\_%more",
    ]
    assert names(replica.list_page(NS, b"key_", None, 1000, NOW_S)) == [b"key_x"]
    assert names(replica.list_page(NS, b"KEY", None, 1000, NOW_S)) == [b"KEY\\_%"]
    assert names(replica.list_page(NS, b"nothing", None, 1000, NOW_S)) == []


def test_list_stays_inside_its_namespace(replica: Replica) -> None:
    replica.write_many(
        [put(b"a"), put(b"b", namespace=OTHER_NS), put(b"c"), put(b"d", namespace=OTHER_NS)],
        WALL_MS,
    )
    create_namespace(replica, NS, b"title", WALL_MS)
    assert names(replica.list_page(NS, b"", None, 1000, NOW_S)) == [b"a", b"c"]
    assert names(replica.list_page(OTHER_NS, b"", None, 1000, NOW_S)) == [b"b", b"d"]


def test_list_with_a_multibyte_prefix_stays_inside_the_prefix(replica: Replica) -> None:
    keys = ["þ", "ÿ", "ÿz", "ÿ日", "Ā", "z"]  # þ: c3 be, ÿ: c3 bf, Ā: c4 80
    replica.write_many([put(key.encode()) for key in keys], WALL_MS)
    replica.write(put("ÿ".encode(), namespace=OTHER_NS), WALL_MS)
    page = replica.list_page(NS, "ÿ".encode(), None, 1000, NOW_S)
    assert names(page) == ["ÿ".encode(), "ÿz".encode(), "ÿ日".encode()]


def test_start_after_before_the_prefix_starts_at_the_prefix(replica: Replica) -> None:
    replica.write_many([put(b"a1"), put(b"b1"), put(b"b2"), put(b"c1")], WALL_MS)
    assert names(replica.list_page(NS, b"b", b"a9", 1000, NOW_S)) == [b"b1", b"b2"]


def test_start_after_past_the_prefix_is_an_empty_complete_page(replica: Replica) -> None:
    replica.write_many([put(b"b1"), put(b"b2"), put(b"c1")], WALL_MS)
    page = replica.list_page(NS, b"b", b"b9", 1000, NOW_S)
    assert page.keys == []
    assert page.complete


def test_start_after_excludes_that_key_and_includes_its_extensions(replica: Replica) -> None:
    replica.write_many([put(b"a"), put(b"a\x00"), put(b"ab"), put(b"b")], WALL_MS)
    assert names(replica.list_page(NS, b"", b"a", 1000, NOW_S)) == [b"a\x00", b"ab", b"b"]


def test_a_full_page_holds_limit_live_keys_skipping_deleted_and_expired(
    replica: Replica,
) -> None:
    replica.write_many([put(b"k%d" % index) for index in range(10)], WALL_MS)
    replica.write_many([delete(b"k%d" % index) for index in (1, 2, 3)], WALL_MS)
    replica.write_many(
        [put(b"k%d" % index, expiration=int(NOW_S) + 1) for index in (4, 5, 6)], WALL_MS
    )
    page = replica.list_page(NS, b"", None, 3, NOW_S + 1)
    assert names(page) == [b"k0", b"k7", b"k8"]
    assert not page.complete
    last = replica.list_page(NS, b"", b"k8", 3, NOW_S + 1)
    assert names(last) == [b"k9"]
    assert last.complete


def test_a_page_that_ends_exactly_at_the_last_live_key_is_complete(replica: Replica) -> None:
    replica.write_many([put(b"a"), put(b"b"), put(b"c")], WALL_MS)
    replica.write(delete(b"c"), WALL_MS)
    page = replica.list_page(NS, b"", None, 2, NOW_S)
    assert names(page) == [b"a", b"b"]
    assert page.complete


def test_only_dead_keys_after_the_page_make_it_complete(replica: Replica) -> None:
    replica.write_many([put(b"a"), put(b"b", expiration=int(NOW_S) + 1), put(b"c")], WALL_MS)
    replica.write(delete(b"c"), WALL_MS)
    page = replica.list_page(NS, b"", None, 1, NOW_S + 1)
    assert names(page) == [b"a"]
    assert page.complete


def test_paging_continues_correctly_after_inserts_between_pages(replica: Replica) -> None:
    replica.write_many([put(key) for key in (b"a", b"c", b"e", b"g", b"i")], WALL_MS)
    first = replica.list_page(NS, b"", None, 2, NOW_S)
    assert names(first) == [b"a", b"c"]
    replica.write_many([put(b"b"), put(b"c0"), put(b"d"), put(b"z")], WALL_MS)
    replica.write(delete(b"e"), WALL_MS)
    cursor = paging.cursor(paging.encode_cursor(names(first)[-1]))
    second = replica.list_page(NS, b"", cursor, 2, NOW_S)
    assert names(second) == [b"c0", b"d"]
    third = replica.list_page(NS, b"", names(second)[-1], 2, NOW_S)
    assert names(third) == [b"g", b"i"]
    assert not third.complete
    fourth = replica.list_page(NS, b"", names(third)[-1], 2, NOW_S)
    assert names(fourth) == [b"z"]
    assert fourth.complete


key_alphabet = st.sampled_from([b"a", b"b", b"_", b"%", b"\\", "é".encode()])
list_keys = st.lists(key_alphabet, min_size=1, max_size=4).map(b"".join)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(list_keys, st.sampled_from(["live", "deleted", "expired"]), max_size=25),
    st.lists(key_alphabet, max_size=2).map(b"".join),
)
def test_paging_with_any_limit_lists_every_live_key_exactly_once(
    keys: dict[bytes, str], prefix: bytes
) -> None:
    replica = new_replica()
    expiring = int(NOW_S) + 1
    replica.write_many(
        [put(key, expiration=expiring if state == "expired" else 0) for key, state in keys.items()],
        WALL_MS,
    )
    replica.write_many([delete(key) for key, state in keys.items() if state == "deleted"], WALL_MS)
    now_s = float(expiring)
    expected = sorted(
        key for key, state in keys.items() if state == "live" and key.startswith(prefix)
    )
    for limit in (1, 2, 1000):
        pages = list_all(replica, prefix, limit, now_s)
        listed = [key for page in pages for key in names(page)]
        assert listed == expected
        assert all(len(page.keys) == limit for page in pages[:-1])
        assert all(not page.complete for page in pages[:-1])
        assert pages[-1].complete
        assert len(pages[-1].keys) <= limit


# ---- counters -------------------------------------------------------------------------


def test_counters_follow_puts_overwrites_and_deletes(replica: Replica) -> None:
    def counters() -> tuple[int, int]:
        return replica.records_held, replica.tombstones_held

    assert counters() == (0, 0)
    replica.write(put(b"a"), WALL_MS)
    assert counters() == (1, 0)
    replica.write(put(b"a", b"again"), WALL_MS)
    assert counters() == (1, 0)
    replica.write(put(b"b", expiration=int(NOW_S) + 1), WALL_MS)
    assert counters() == (2, 0)  # an expired record is still held until purged
    replica.write(delete(b"a"), WALL_MS)
    assert counters() == (1, 1)
    replica.write(delete(b"a"), WALL_MS)
    assert counters() == (1, 1)
    replica.write(delete(b"never"), WALL_MS)
    assert counters() == (1, 2)
    replica.write(put(b"a"), WALL_MS)
    assert counters() == (2, 1)
    assert_consistent(replica)


operation = st.tuples(
    st.sampled_from(["put", "delete", "expire", "sweep"]),
    st.lists(st.sampled_from([b"a", b"b", b"c", b"d"]), min_size=1, max_size=3, unique=True),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(operation, max_size=20))
def test_counters_and_indexes_stay_consistent_over_any_operations(
    operations: list[tuple[str, list[bytes]]],
) -> None:
    replica = new_replica()
    for step, (kind, keys) in enumerate(operations):
        wall_ms = WALL_MS + step
        if kind == "put":
            replica.write_many([put(key) for key in keys], wall_ms)
        elif kind == "delete":
            replica.write_many([delete(key) for key in keys], wall_ms)
        elif kind == "expire":
            replica.write_many([put(key, expiration=int(NOW_S)) for key in keys], wall_ms)
        else:
            make_durable(replica)
            replica.purge_rule.update([replica.own_watermarks()])
            assert replica.sweep(b"", NOW_S, 1000) is None
        assert_consistent(replica)


# ---- namespaces ------------------------------------------------------------------------


def test_unknown_namespace_is_not_live(replica: Replica) -> None:
    assert replica.namespace_record(NS) is None
    assert not replica.namespace_live(NS)


def test_created_namespace_is_live_and_listed(replica: Replica) -> None:
    assert not replica.namespace_live(NS)  # caches the absence
    applied = create_namespace(replica, NS, b"my title", WALL_MS)
    assert replica.namespace_live(NS)
    assert replica.namespace_record(NS) == applied.header
    assert list(replica.namespaces()) == [(namespace_key(NS), applied.header, b"my title")]
    assert not replica.namespace_live(OTHER_NS)


def test_deleted_namespace_is_not_live_and_lists_without_title(replica: Replica) -> None:
    create_namespace(replica, NS, b"my title", WALL_MS)
    create_namespace(replica, OTHER_NS, b"other", WALL_MS)
    applied = delete_namespace(replica, NS, WALL_MS)
    assert not replica.namespace_live(NS)
    record = replica.namespace_record(NS)
    assert record is not None
    assert record.tombstone
    assert replica.namespace_live(OTHER_NS)
    listed = {key: (header, title) for key, header, title in replica.namespaces()}
    assert listed[namespace_key(NS)] == (applied.header, b"")
    assert listed[namespace_key(OTHER_NS)][1] == b"other"


def test_renamed_namespace_lists_its_new_title(replica: Replica) -> None:
    create_namespace(replica, NS, b"old", WALL_MS)
    create_namespace(replica, NS, b"new", WALL_MS)
    assert [title for _, _, title in replica.namespaces()] == [b"new"]


def test_namespace_records_are_not_data_keys(replica: Replica) -> None:
    create_namespace(replica, NS, b"title", WALL_MS)
    replica.write(put(b"k"), WALL_MS)
    assert names(replica.list_page(NS, b"", None, 1000, NOW_S)) == [b"k"]


# ---- sweeping -------------------------------------------------------------------------

EXPIRY = int(NOW_S) + 30


def sweep_fixture() -> Replica:
    """A replica holding every kind of record in NS, plus OTHER_NS data and namespace records."""
    replica = new_replica()
    create_namespace(replica, NS, b"ns", WALL_MS)
    create_namespace(replica, OTHER_NS, b"other", WALL_MS)
    replica.write_many(
        [
            put(b"live"),
            put(b"deleted"),
            put(b"expired", expiration=EXPIRY),
            put(b"expires-later", expiration=EXPIRY + 1000),
            put(b"other-live", namespace=OTHER_NS),
            put(b"other-deleted", namespace=OTHER_NS),
        ],
        WALL_MS,
    )
    replica.write_many(
        [delete(b"deleted"), delete(b"never-held"), delete(b"other-deleted", namespace=OTHER_NS)],
        WALL_MS,
    )
    return replica


def sweep_all(replica: Replica, now_s: float, budget: int = 1000) -> None:
    start: bytes | None = b""
    rounds = 0
    while start is not None:
        start = replica.sweep(start, now_s, budget)
        rounds += 1
        assert rounds < 1000


def test_sweep_purges_nothing_while_the_purge_rule_is_empty() -> None:
    replica = sweep_fixture()
    make_durable(replica)
    sweep_all(replica, EXPIRY + 1)
    assert held(replica) == {b"live", b"deleted", b"expired", b"expires-later", b"never-held"}
    assert (replica.records_held, replica.tombstones_held) == (6, 3)


def test_sweep_purges_nothing_that_is_not_durable_yet() -> None:
    replica = sweep_fixture()
    replica.purge_rule.update([replica.own_watermarks()])
    assert replica.own_watermarks() == {NODE_ID: 0}
    sweep_all(replica, EXPIRY + 1)
    assert held(replica) == {b"live", b"deleted", b"expired", b"expires-later", b"never-held"}


def test_sweep_purges_tombstones_and_expired_records_and_nothing_else() -> None:
    replica = sweep_fixture()
    make_durable(replica)
    replica.purge_rule.update([replica.own_watermarks()])
    sweep_all(replica, EXPIRY)
    assert held(replica) == {b"live", b"expires-later"}
    assert held(replica, OTHER_NS) == {b"other-live"}
    assert replica.namespace_live(NS)
    assert replica.namespace_live(OTHER_NS)
    assert (replica.records_held, replica.tombstones_held) == (2 + 2 + 1, 0)
    assert replica.value(NS, b"expired") is None
    assert_consistent(replica)


def test_sweep_before_the_expiration_keeps_the_record() -> None:
    replica = sweep_fixture()
    make_durable(replica)
    replica.purge_rule.update([replica.own_watermarks()])
    sweep_all(replica, EXPIRY - 1)
    assert b"expired" in held(replica)
    assert b"deleted" not in held(replica)


@pytest.mark.parametrize("budget", [1, 2, 3, 1000])
def test_sweep_in_slices_purges_the_same_as_one_sweep(budget: int) -> None:
    replica = sweep_fixture()
    make_durable(replica)
    replica.purge_rule.update([replica.own_watermarks()])
    sweep_all(replica, EXPIRY, budget)
    assert held(replica) == {b"live", b"expires-later"}
    assert held(replica, OTHER_NS) == {b"other-live"}
    assert_consistent(replica)


def test_sweep_returns_where_to_continue() -> None:
    replica = sweep_fixture()
    first_stop = replica.sweep(b"", NOW_S, 1)
    assert first_stop is not None
    assert first_stop > b""
    assert replica.sweep(first_stop, NOW_S, 10_000) is None


def test_sweep_keeps_tombstones_newer_than_the_purge_rule() -> None:
    replica = sweep_fixture()
    make_durable(replica)
    replica.purge_rule.update([replica.own_watermarks()])
    replica.write(delete(b"live"), WALL_MS)
    make_durable(replica)  # durable, but the rule has not been updated since
    sweep_all(replica, NOW_S)
    assert held(replica) == {b"live", b"expired", b"expires-later"}
    header = replica.header(NS, b"live")
    assert header is not None
    assert header.tombstone


def test_sweep_never_purges_namespace_tombstones() -> None:
    replica = sweep_fixture()
    delete_namespace(replica, OTHER_NS, WALL_MS)
    make_durable(replica)
    replica.purge_rule.update([replica.own_watermarks()])
    sweep_all(replica, EXPIRY)
    record = replica.namespace_record(OTHER_NS)
    assert record is not None
    assert record.tombstone
    assert held(replica, RESERVED_NAMESPACE) == {namespace_key(NS), namespace_key(OTHER_NS)}


def test_sweep_namespace_purges_every_key_of_a_deleted_namespace() -> None:
    replica = sweep_fixture()
    delete_namespace(replica, NS, WALL_MS)
    assert replica.sweep_namespace(NS, NOW_S, 1000)
    assert held(replica) == set()
    assert held(replica, OTHER_NS) == {b"other-live", b"other-deleted"}
    assert not replica.namespace_live(NS)
    assert replica.header(RESERVED_NAMESPACE, namespace_key(NS)) is not None
    # left: OTHER_NS's live record, NS's record (now a tombstone), OTHER_NS's record
    assert (replica.records_held, replica.tombstones_held) == (2, 2)
    assert_consistent(replica)


def test_sweep_namespace_in_slices_reports_when_done() -> None:
    replica = sweep_fixture()
    delete_namespace(replica, NS, WALL_MS)
    rounds = [replica.sweep_namespace(NS, NOW_S, 2)]
    while not rounds[-1]:
        rounds.append(replica.sweep_namespace(NS, NOW_S, 2))
        assert len(rounds) < 100
    assert rounds[0] is False
    assert held(replica) == set()
    assert_consistent(replica)


def test_sweep_namespace_of_a_live_namespace_keeps_live_records() -> None:
    replica = sweep_fixture()
    assert replica.sweep_namespace(NS, NOW_S, 1000)
    assert held(replica) == {b"live", b"deleted", b"expired", b"expires-later", b"never-held"}


# ---- durability ---------------------------------------------------------------------------


def test_fsync_write_is_durable_only_after_mark_durable(replica: Replica) -> None:
    applied = replica.write(put(b"k"), WALL_MS)
    assert replica.written_ticket == applied.ticket
    assert not replica.is_durable(applied.ticket)
    assert replica.durable_seq == 0
    assert replica.own_watermarks() == {NODE_ID: 0}
    replica.mark_durable(applied.ticket)
    assert replica.is_durable(applied.ticket)
    assert replica.durable_seq == applied.header.seq
    assert replica.own_watermarks() == {NODE_ID: applied.header.seq}


def test_fsync_durable_seq_advances_ticket_by_ticket(replica: Replica) -> None:
    first = replica.write(put(b"a"), WALL_MS)
    second = replica.write(put(b"b"), WALL_MS)
    assert second.ticket > first.ticket
    replica.mark_durable(first.ticket)
    assert replica.durable_seq == first.header.seq
    assert not replica.is_durable(second.ticket)
    replica.mark_durable(second.ticket)
    assert replica.durable_seq == second.header.seq
    replica.mark_durable(first.ticket)  # late, out of order: no step back
    assert replica.durable_seq == second.header.seq


def test_fsync_durable_seq_covers_whole_batches_of_a_bulk_write(replica: Replica) -> None:
    applied = replica.write_many([put(b"k%05d" % index) for index in range(2500)], WALL_MS)
    tickets = sorted({item.ticket for item in applied})
    assert len(tickets) == 3
    replica.mark_durable(tickets[1])
    assert replica.durable_seq == 2000
    replica.mark_durable(tickets[2])
    assert replica.durable_seq == 2500


def test_wal_write_is_durable_at_once() -> None:
    replica = new_replica(durability=Durability.WAL)
    applied = replica.write(put(b"k"), WALL_MS)
    assert replica.is_durable(applied.ticket)
    assert replica.durable_seq == applied.header.seq
    applied_many = replica.write_many([put(b"k%d" % index) for index in range(5)], WALL_MS)
    assert replica.durable_seq == applied_many[-1].header.seq


def test_wal_reserves_seq_and_hlc_ahead_with_few_syncs() -> None:
    store = MemoryStore()
    replica = new_replica(store, durability=Durability.WAL)
    syncs_at_start = store.syncs
    issued = [replica.write(put(b"k%d" % index), WALL_MS + index).header for index in range(200)]
    reserved_seq, reserved_hlc = layout.unpack_marks(store.get(META, layout.META_RESERVED))
    assert reserved_seq >= max(header.seq for header in issued)
    assert reserved_hlc >= max(header.hlc for header in issued)
    assert store.syncs - syncs_at_start <= 2  # 200 writes, 200 ms: one or two reservations


# ---- restarts -----------------------------------------------------------------------------


@pytest.mark.parametrize("durability", [Durability.FSYNC, Durability.WAL])
def test_restart_on_the_same_store_continues_seq_and_hlc(durability: Durability) -> None:
    store = MemoryStore()
    replica = new_replica(store, durability=durability)
    issued = [item.header for item in replica.write_many([put(b"a"), put(b"b")], WALL_MS + 50)]
    issued.append(replica.write(delete(b"a"), WALL_MS + 60).header)
    restarted = new_replica(store, durability=durability, node_id=OTHER_NODE_ID, wall_ms=WALL_MS)
    after = restarted.write(put(b"c"), WALL_MS).header
    assert after.seq > max(header.seq for header in issued)
    assert after.hlc > max(header.hlc for header in issued)
    assert after.origin == NODE_ID


def test_restart_on_a_reopened_rocks_store_continues_seq_and_hlc(rocks_path: Path) -> None:
    for durability in (Durability.FSYNC, Durability.WAL):
        store = RocksStore(rocks_path / durability.value)
        replica = new_replica(store, durability=durability)
        issued = [
            item.header
            for item in replica.write_many([put(b"k%d" % index) for index in range(1500)], WALL_MS)
        ]
        make_durable(replica)
        store.close()
        reopened = RocksStore(rocks_path / durability.value)
        try:
            restarted = new_replica(
                reopened, durability=durability, node_id=OTHER_NODE_ID, wall_ms=WALL_MS - 10_000
            )
            assert restarted.node_id == NODE_ID
            after = restarted.write(put(b"new"), WALL_MS - 10_000).header
            assert after.seq > max(header.seq for header in issued)
            assert after.hlc > max(header.hlc for header in issued)
            assert restarted.records_held == 1501
            result = restarted.read(NS, b"k1499", NOW_S)
            assert result is not None
            assert result[0] == issued[-1]
            assert_consistent(restarted)
        finally:
            reopened.close()


def test_node_id_is_kept_across_restarts_and_new_ids_ignored() -> None:
    store = MemoryStore()
    first = new_replica(store, node_id=NODE_ID)
    assert first.node_id == NODE_ID
    assert layout.unpack_u64(store.get(META, layout.META_NODE_ID) or b"") == NODE_ID
    second = new_replica(store, node_id=OTHER_NODE_ID)
    assert second.node_id == NODE_ID
    assert second.write(put(b"k"), WALL_MS).header.origin == NODE_ID


def test_node_id_survives_a_power_loss_right_after_first_start() -> None:
    store = PowerLossStore()
    new_replica(store, node_id=NODE_ID)
    restarted = new_replica(store.after_power_loss(), node_id=OTHER_NODE_ID)
    assert restarted.node_id == NODE_ID


def snapshot(replica: Replica, keys: list[bytes]) -> object:
    """Everything a client or a peer could observe of a replica."""
    return (
        replica.node_id,
        replica.records_held,
        replica.tombstones_held,
        [replica.header(NS, key) for key in keys],
        replica.read_many(NS, keys, NOW_S + 100),
        [page.keys for page in list_all(replica, b"", 2, NOW_S + 100)],
        list(replica.namespaces()),
        replica.namespace_live(NS),
        replica.namespace_live(OTHER_NS),
        list(replica.store.scan(LOG, b"")),
    )


@pytest.mark.parametrize("durability", [Durability.FSYNC, Durability.WAL])
def test_restart_from_stored_state_changes_nothing(durability: Durability) -> None:
    store = MemoryStore()
    replica = new_replica(store, durability=durability)
    create_namespace(replica, NS, b"ns", WALL_MS)
    create_namespace(replica, OTHER_NS, b"other", WALL_MS)
    delete_namespace(replica, OTHER_NS, WALL_MS)
    keys = [b"a", b"b", b"c", b"d", b"e", b"missing"]
    replica.write_many(
        [put(b"a", b"1", metadata=b"{}"), put(b"b"), put(b"c", expiration=int(NOW_S) + 50)],
        WALL_MS,
    )
    replica.write_many([delete(b"b"), delete(b"e"), put(b"d", b"")], WALL_MS)
    make_durable(replica)
    before = snapshot(replica, keys)
    restarted = new_replica(store, durability=durability, node_id=OTHER_NODE_ID)
    assert snapshot(restarted, keys) == before
    assert_consistent(restarted)


def test_restart_from_rocks_changes_nothing(rocks_path: Path) -> None:
    store = RocksStore(rocks_path)
    replica = new_replica(store)
    create_namespace(replica, NS, b"ns", WALL_MS)
    keys = [b"a", b"b", b"c"]
    replica.write_many([put(b"a", b"1"), put(b"b"), put(b"c", expiration=int(NOW_S) + 50)], WALL_MS)
    replica.write(delete(b"b"), WALL_MS)
    make_durable(replica)
    before = snapshot(replica, keys)
    store.close()
    reopened = RocksStore(rocks_path)
    try:
        assert snapshot(new_replica(reopened, node_id=OTHER_NODE_ID), keys) == before
    finally:
        reopened.close()


# ---- own seqs this store does not hold ------------------------------------------------------
# A node's own watermark covers only own writes its store holds (docs/ALGORITHM.md,
# Membership): the seqs a stale copy skips for its peers, and under durability wal the
# tail of the reserved block, stay uncovered until the engine has taken them back.


def held_own_seqs(replica: Replica) -> set[int]:
    return {
        seq
        for origin, seq in (layout.split_log_key(key) for key, _ in replica.store.scan(LOG, b""))
        if origin == replica.node_id
    }


def own_claims(replica: Replica) -> int:
    """The most this replica says of its own writes: in memory and as advertised."""
    me = replica.node_id
    return max(replica.watermarks.get(me), replica.own_watermarks()[me])


def test_seqs_skipped_before_any_own_write_are_not_claimed() -> None:
    replica = new_replica()
    replica.skip_seqs_past(6)
    make_durable(replica)
    assert replica.own_watermarks() == {NODE_ID: 0}  # a missing own mark is 0, not the seq
    assert replica.skipped_seqs == 6
    replica.mark_durable(replica.cover_skipped_seqs())
    assert replica.own_watermarks() == {NODE_ID: 6}
    assert replica.skipped_seqs == 0
    assert replica.write(put(b"k"), WALL_MS).header.seq == 7


def test_seqs_skipped_after_own_writes_are_not_claimed() -> None:
    replica = new_replica()
    replica.write_many([put(b"a"), put(b"b")], WALL_MS)
    replica.skip_seqs_past(9)
    make_durable(replica)
    assert replica.own_watermarks() == {NODE_ID: 2}
    assert replica.skipped_seqs == 7


def test_a_wal_restart_claims_the_writes_its_disk_holds_not_its_reserved_block() -> None:
    store = MemoryStore()
    replica = new_replica(store, durability=Durability.WAL)
    replica.write_many([put(b"a"), put(b"b"), put(b"c")], WALL_MS)
    restarted = new_replica(store, durability=Durability.WAL)
    assert restarted.own_watermarks() == {NODE_ID: 3}
    assert restarted.skipped_seqs >= SEQ_BLOCK  # issued by no one, or by a lost life
    restarted.cover_skipped_seqs()
    assert restarted.skipped_seqs == 0
    covered = restarted.own_watermarks()[NODE_ID]
    assert covered > 3
    assert restarted.write(put(b"d"), WALL_MS).header.seq == covered + 1
    again = new_replica(store, durability=Durability.WAL)  # the cover is kept
    assert again.own_watermarks()[NODE_ID] >= covered + 1


stale_steps = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(min_value=1, max_value=30)),
        st.tuples(st.just("restart"), st.just(0)),
        st.tuples(st.just("copy"), st.just(0)),
        st.tuples(st.just("restore"), st.just(0)),
        st.tuples(st.just("power loss"), st.just(0)),
        st.tuples(st.just("skip"), st.integers(min_value=0, max_value=40)),
    ),
    max_size=14,
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([Durability.FSYNC, Durability.WAL]), stale_steps)
def test_the_own_watermark_never_claims_an_issued_write_the_store_does_not_hold(
    durability: Durability, steps: list[tuple[str, int]]
) -> None:
    """Over own writes, restarts, power losses, stale copies of the store restored and
    peers' claims (skips): every own seq some life issued that the watermark claims is
    held (each write has its own key, so every issued seq held is in the log), but
    those the node gave up on. As the engine does, a write waits until the skipped
    seqs are covered; with no peer to take them back from, the node covers them: the
    ones issued then are given up (lost with a disk)."""
    store = PowerLossStore()
    replica = new_replica(store, durability=durability)
    issued: set[int] = set()
    given_up: set[int] = set()
    copies: list[PowerLossStore] = []
    written = 0
    for kind, amount in steps:
        if kind == "write":
            if replica.skipped_seqs:
                held = held_own_seqs(replica)
                given_up |= {seq for seq in issued if seq <= replica.state.seq} - held
                replica.cover_skipped_seqs()
            writes = [put(b"k%d" % (written + index)) for index in range(amount)]
            written += amount
            issued.update(item.header.seq for item in replica.write_many(writes, WALL_MS))
            if durability is Durability.FSYNC:  # under wal a power loss may take them
                make_durable(replica)
        elif kind == "skip":
            replica.skip_seqs_past(max(issued, default=0) - amount)
            if durability is Durability.FSYNC:
                make_durable(replica)
        elif kind == "copy":
            copies.append(store.after_power_loss())  # a copy of what is synced
        else:
            if kind == "restore" and copies:
                store = copies.pop()
            elif kind == "power loss":
                store = store.after_power_loss()
            replica = new_replica(store, durability=durability)
        claimed = own_claims(replica)
        assert {seq for seq in issued - given_up if seq <= claimed} <= held_own_seqs(replica)


# ---- power loss ---------------------------------------------------------------------------

crash_steps = st.lists(
    st.tuples(
        st.integers(min_value=-2_000, max_value=2_000),  # wall clock step, ms
        st.integers(min_value=0, max_value=60),  # records written
        st.booleans(),  # power loss after the step
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=50, deadline=None)
@given(crash_steps)
def test_wal_never_reissues_a_seq_or_hlc_after_a_power_loss(
    steps: list[tuple[int, int, bool]],
) -> None:
    store = PowerLossStore()
    wall_ms = WALL_MS
    replica = new_replica(store, durability=Durability.WAL, wall_ms=wall_ms)
    max_seq = max_hlc = 0
    for wall_step, count, crash in steps:
        wall_ms += wall_step
        for item in replica.write_many([put(b"k%d" % index) for index in range(count)], wall_ms):
            assert item.header.seq > max_seq
            assert item.header.hlc > max_hlc
            max_seq, max_hlc = item.header.seq, item.header.hlc
        if crash:
            store = store.after_power_loss()
            replica = new_replica(
                store, durability=Durability.WAL, node_id=OTHER_NODE_ID, wall_ms=wall_ms
            )
            assert replica.node_id == NODE_ID
    after = replica.write(put(b"after"), wall_ms).header
    assert after.seq > max_seq
    assert after.hlc > max_hlc


def test_wal_never_reissues_after_a_power_loss_past_a_whole_seq_block() -> None:
    store = PowerLossStore()
    replica = new_replica(store, durability=Durability.WAL)
    issued = replica.write_many([put(b"k%05d" % index) for index in range(12_000)], WALL_MS)
    restarted = new_replica(store.after_power_loss(), durability=Durability.WAL)
    after = restarted.write(put(b"after"), WALL_MS).header
    assert after.seq > issued[-1].header.seq
    assert after.hlc > issued[-1].header.hlc


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.booleans(), st.booleans()), max_size=10))
def test_fsync_power_loss_keeps_durable_records_and_never_reissues_their_seqs(
    steps: list[tuple[int, bool, bool]],
) -> None:
    store = PowerLossStore()
    replica = new_replica(store)
    durable: dict[bytes, RecordHeader] = {}
    pending: dict[bytes, RecordHeader] = {}
    written = 0  # every key is new
    for count, sync, crash in steps:
        writes = [put(b"k%d" % (written + index)) for index in range(count)]
        written += count
        for write, item in zip(writes, replica.write_many(writes, WALL_MS), strict=True):
            pending[write.key] = item.header
        if sync:
            make_durable(replica)
            durable.update(pending)
            pending.clear()
            assert replica.durable_seq == max((h.seq for h in durable.values()), default=0)
        if crash:
            store = store.after_power_loss()
            replica = new_replica(store, node_id=OTHER_NODE_ID)
            pending.clear()
            for key, header in durable.items():
                assert replica.header(NS, key) == header
            assert_consistent(replica)
    after = replica.write(put(b"after"), WALL_MS).header
    assert after.seq > max((header.seq for header in durable.values()), default=0)
    assert after.hlc > max((header.hlc for header in durable.values()), default=0)


# ---- a rejected write changes nothing ---------------------------------------------------


def everything(replica: Replica) -> object:
    """All the state a write could change: in memory and in every column family."""
    return (
        replica.state.seq,
        replica.clock.last,
        replica.records_held,
        replica.tombstones_held,
        list(replica.audit_buckets),
        replica.watermarks.vector(),
        {origin: list(spans) for origin, spans in replica.watermarks.ranges.items()},
        dict(replica.durable_watermarks),
        replica.durable_seq,
        replica.written_ticket,
        list(replica.ready_to_push),
        dict(replica.state.namespaces),
        dict(replica.state.retired),
        set(replica.namespaces_to_sweep),
        {family: list(replica.store.scan(family, b"")) for family in COLUMN_FAMILIES},
    )


UNENCODABLE = 1 << 64  # an expiration that does not fit the header's 64 bits


@pytest.mark.parametrize("durability", list(Durability))
@pytest.mark.parametrize("count", [4, 1500])  # mid-batch; in the second of two batches
def test_a_write_many_with_an_unencodable_item_changes_nothing(
    durability: Durability, count: int
) -> None:
    replica = new_replica(durability=durability)
    create_namespace(replica, OTHER_NS, b"other", WALL_MS)
    replica.write_many([put(b"a"), put(b"b"), delete(b"c")], WALL_MS)
    replica.retire(OTHER_NODE_ID, WALL_MS)
    replica.write(put(b"a", b"again"), WALL_MS + 5)
    if durability is Durability.FSYNC:
        make_durable(replica)
        replica.write(put(b"b", b"unsynced"), WALL_MS + 6)  # one batch still settling
    heard: list[object] = []
    replica.listeners.append(heard.append)
    before = everything(replica)
    writes = [put(f"k{index}".encode()) for index in range(count)]
    writes[count - 2] = put(b"bad", expiration=UNENCODABLE)
    writes[0] = Write(RESERVED_NAMESPACE, namespace_key(OTHER_NS), tombstone=True)
    writes[1] = Write(MEMBERS_NAMESPACE, f"{NODE_ID + 1:016x}".encode(), b"removed")

    with pytest.raises(InvalidRequest, match=f"Invalid expiration of {UNENCODABLE}"):
        replica.write_many(writes, WALL_MS + 10)

    assert everything(replica) == before
    assert heard == []
    assert replica.namespace_live(OTHER_NS)
    assert not replica.is_retired(NODE_ID + 1)
    seq = replica.state.seq
    applied = replica.write(put(b"next"), WALL_MS + 10)
    assert applied.header.seq == seq + 1
    assert_consistent(replica)


def test_a_single_unencodable_put_is_an_invalid_request_and_takes_no_seq(
    replica: Replica,
) -> None:
    first = replica.write(put(b"a"), WALL_MS)
    before = everything(replica)
    with pytest.raises(InvalidRequest):
        replica.write(put(b"a", expiration=-(1 << 63) - 1), WALL_MS)
    assert everything(replica) == before
    assert replica.write(put(b"a"), WALL_MS).header.seq == first.header.seq + 1
