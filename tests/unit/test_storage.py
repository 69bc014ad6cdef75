"""The Store contract, run against both RocksStore and MemoryStore.

Checks atomic batches (nothing visible before ``write``, everything after,
operations applied in order), point reads and multi-gets, scans in byte order
with inclusive start and exclusive stop, ``prefix_end`` (including the 0xff
edge cases), independent column families, a model-based comparison of both
stores against a dict, MemoryStore scans that stay correct while the store
changes under them, and RocksStore's directory lock and persistence.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rumor.node.storage import COLUMN_FAMILIES, MemoryStore, RocksStore, Store, StoreLocked
from rumor.node.storage.store import DEFERRED, KV, LOG, META, VAL, prefix_end


def open_store(kind: str, path: Path) -> Store:
    return MemoryStore() if kind == "memory" else RocksStore(path)


@pytest.fixture(params=["memory", "rocks"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(request.param, tmp_path / "db")
    yield opened
    opened.close()


def put(store: Store, family: str, *pairs: tuple[bytes, bytes]) -> None:
    batch = store.batch()
    for key, value in pairs:
        batch.put(family, key, value)
    store.write(batch)


def keys_of(
    store: Store, family: str, start: bytes = b"", stop: bytes | None = None
) -> list[bytes]:
    return [key for key, _ in store.scan(family, start, stop)]


# ---- batches -------------------------------------------------------------------


def test_missing_key_reads_as_none(store: Store) -> None:
    assert store.get(KV, b"missing") is None


def test_batch_is_invisible_until_written(store: Store) -> None:
    put(store, KV, (b"old", b"1"))
    batch = store.batch()
    batch.put(KV, b"new", b"2")
    batch.put(VAL, b"new", b"value")
    batch.delete(KV, b"old")
    assert len(batch) == 3
    assert store.get(KV, b"new") is None
    assert store.get(VAL, b"new") is None
    assert store.get(KV, b"old") == b"1"
    store.write(batch)
    assert store.get(KV, b"new") == b"2"
    assert store.get(VAL, b"new") == b"value"
    assert store.get(KV, b"old") is None


def test_batch_operations_apply_in_order(store: Store) -> None:
    put(store, KV, (b"deleted-then-put", b"0"))
    batch = store.batch()
    batch.put(KV, b"put-then-deleted", b"1")
    batch.delete(KV, b"put-then-deleted")
    batch.delete(KV, b"deleted-then-put")
    batch.put(KV, b"deleted-then-put", b"2")
    batch.put(KV, b"put-twice", b"first")
    batch.put(KV, b"put-twice", b"second")
    store.write(batch)
    assert store.get(KV, b"put-then-deleted") is None
    assert store.get(KV, b"deleted-then-put") == b"2"
    assert store.get(KV, b"put-twice") == b"second"
    assert keys_of(store, KV) == [b"deleted-then-put", b"put-twice"]


def test_deleting_a_missing_key_is_harmless(store: Store) -> None:
    put(store, KV, (b"a", b"1"))
    batch = store.batch()
    batch.delete(KV, b"never-written")
    store.write(batch)
    assert keys_of(store, KV) == [b"a"]


def test_empty_value_is_stored_and_not_confused_with_absent(store: Store) -> None:
    put(store, VAL, (b"empty", b""))
    assert store.get(VAL, b"empty") == b""
    assert store.get_many(VAL, [b"empty", b"absent"]) == [b"", None]
    assert list(store.scan(VAL, b"")) == [(b"empty", b"")]
    batch = store.batch()
    batch.delete(VAL, b"empty")
    store.write(batch)
    assert store.get(VAL, b"empty") is None
    assert keys_of(store, VAL) == []


def test_overwrite_replaces_the_value(store: Store) -> None:
    put(store, KV, (b"k", b"1"))
    put(store, KV, (b"k", b"2"))
    assert store.get(KV, b"k") == b"2"
    assert keys_of(store, KV) == [b"k"]


def test_empty_batch_writes_nothing(store: Store) -> None:
    batch = store.batch()
    assert len(batch) == 0
    store.write(batch)
    assert all(keys_of(store, family) == [] for family in COLUMN_FAMILIES)


def test_sync_wal_keeps_the_data(store: Store) -> None:
    put(store, KV, (b"k", b"v"))
    store.sync_wal()
    assert store.get(KV, b"k") == b"v"


def test_each_store_rejects_the_others_batches(tmp_path: Path) -> None:
    memory = MemoryStore()
    rocks = RocksStore(tmp_path / "db")
    try:
        with pytest.raises(TypeError):
            memory.write(rocks.batch())
        with pytest.raises(TypeError):
            rocks.write(memory.batch())
    finally:
        rocks.close()


# ---- point reads -----------------------------------------------------------------


def test_get_many_keeps_the_order_of_the_keys_asked(store: Store) -> None:
    put(store, KV, (b"a", b"1"), (b"b", b"2"), (b"c", b"3"))
    assert store.get_many(KV, [b"c", b"missing", b"a", b"c"]) == [b"3", None, b"1", b"3"]


def test_get_many_of_no_keys_is_empty(store: Store) -> None:
    assert store.get_many(KV, []) == []


# ---- scans -------------------------------------------------------------------------

SCAN_KEYS = [b"\x00", b"!", b",", b"0", b"A", b"_", b"a", b"a\x00", b"ab", b"b", b"\x7f", b"\xff"]


def test_scan_returns_keys_in_byte_order(store: Store) -> None:
    """Byte order, not text order: b"!" (0x21) before b"," (0x2c) before b"0", b"A", b"_"."""
    put(store, KV, *((key, key * 2) for key in reversed(SCAN_KEYS)))
    assert list(store.scan(KV, b"")) == [(key, key * 2) for key in sorted(SCAN_KEYS)]


def test_scan_start_is_inclusive_and_stop_exclusive(store: Store) -> None:
    put(store, KV, *((key, b"") for key in SCAN_KEYS))
    assert keys_of(store, KV, b"!", b"0") == [b"!", b","]
    assert keys_of(store, KV, b"a", b"b") == [b"a", b"a\x00", b"ab"]
    assert keys_of(store, KV, b"a\x00", b"ab") == [b"a\x00"]
    assert keys_of(store, KV, b"a\x01") == [b"ab", b"b", b"\x7f", b"\xff"]


def test_scan_start_between_keys_begins_at_the_next_key(store: Store) -> None:
    put(store, KV, *((key, b"") for key in SCAN_KEYS))
    assert keys_of(store, KV, b"\x01", b"0") == [b"!", b","]
    assert keys_of(store, KV, b"\x80") == [b"\xff"]


def test_scan_with_empty_or_inverted_range_is_empty(store: Store) -> None:
    put(store, KV, *((key, b"") for key in SCAN_KEYS))
    assert keys_of(store, KV, b"a", b"a") == []
    assert keys_of(store, KV, b"b", b"a") == []
    assert keys_of(store, KV, b"\xff\x00") == []


def test_scan_of_a_prefix_with_prefix_end_holds_exactly_the_prefixed_keys(store: Store) -> None:
    keys = [b"a", b"a\xff", b"a\xff\xff", b"a\xff\xffz", b"b", b"\xfe", b"\xfe\xff", b"\xff"]
    put(store, KV, *((key, b"") for key in keys))
    assert keys_of(store, KV, b"a\xff", prefix_end(b"a\xff")) == [
        b"a\xff",
        b"a\xff\xff",
        b"a\xff\xffz",
    ]
    assert keys_of(store, KV, b"\xfe", prefix_end(b"\xfe")) == [b"\xfe", b"\xfe\xff"]
    assert keys_of(store, KV, b"\xff", prefix_end(b"\xff")) == [b"\xff"]


def test_scan_of_an_empty_family_is_empty(store: Store) -> None:
    assert list(store.scan(LOG, b"")) == []


def test_abandoned_scan_does_not_block_writes(store: Store) -> None:
    put(store, KV, (b"a", b"1"), (b"b", b"2"))
    scan = store.scan(KV, b"")
    assert next(scan) == (b"a", b"1")
    del scan
    put(store, KV, (b"c", b"3"))
    assert keys_of(store, KV) == [b"a", b"b", b"c"]


# ---- column families -------------------------------------------------------------


def test_column_families_are_independent(store: Store) -> None:
    batch = store.batch()
    for family in COLUMN_FAMILIES:
        batch.put(family, b"same-key", family.encode())
    store.write(batch)
    for family in COLUMN_FAMILIES:
        assert store.get(family, b"same-key") == family.encode()
    batch = store.batch()
    batch.delete(VAL, b"same-key")
    store.write(batch)
    assert store.get(VAL, b"same-key") is None
    for family in (KV, LOG, DEFERRED, META):
        assert store.get(family, b"same-key") == family.encode()
        assert keys_of(store, family) == [b"same-key"]
    assert keys_of(store, VAL) == []


def test_the_five_column_families() -> None:
    assert set(COLUMN_FAMILIES) == {"kv", "val", "log", "deferred", "meta"}


# ---- prefix_end -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        (b"", None),
        (b"\xff", None),
        (b"\xff\xff\xff", None),
        (b"a", b"b"),
        (b"ab", b"ac"),
        (b"a\xff", b"b"),
        (b"a\xff\xff", b"b"),
        (b"\x00", b"\x01"),
        (b"\x00\xff", b"\x01"),
        (b"\xfe", b"\xff"),
        (b"\xfe\xff", b"\xff"),
        (b"a\xfeb", b"a\xfec"),
        (bytes(16), bytes(15) + b"\x01"),
    ],
)
def test_prefix_end(prefix: bytes, end: bytes | None) -> None:
    assert prefix_end(prefix) == end


@given(st.binary(max_size=6), st.binary(max_size=8))
def test_prefix_end_bounds_exactly_the_keys_with_the_prefix(prefix: bytes, key: bytes) -> None:
    end = prefix_end(prefix)
    in_range = key >= prefix and (end is None or key < end)
    assert in_range == key.startswith(prefix)


@given(st.binary(max_size=6))
def test_prefix_end_is_none_only_when_nothing_bounds_the_prefix(prefix: bytes) -> None:
    end = prefix_end(prefix)
    assert (end is None) == (prefix.rstrip(b"\xff") == b"")
    if end is not None:
        assert end > prefix
        assert not end.startswith(prefix)


# ---- model-based: both stores agree with a dict -------------------------------------

small_keys = st.binary(max_size=3) | st.sampled_from([b"!", b",", b"\xff", b"\xff\xff", b"a"])
operations = st.tuples(
    st.sampled_from([KV, VAL]),
    small_keys,
    st.none() | st.binary(max_size=4),  # None: delete
)
batches = st.lists(st.lists(operations, max_size=8), max_size=6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches, small_keys, st.none() | small_keys)
def test_both_stores_agree_with_a_dict_model(
    writes: list[list[tuple[str, bytes, bytes | None]]], start: bytes, stop: bytes | None
) -> None:
    model: dict[str, dict[bytes, bytes]] = {KV: {}, VAL: {}}
    with tempfile.TemporaryDirectory() as directory:
        stores: list[Store] = [MemoryStore(), RocksStore(Path(directory) / "db")]
        try:
            for operations_in_batch in writes:
                for candidate in stores:
                    batch = candidate.batch()
                    for family, key, value in operations_in_batch:
                        if value is None:
                            batch.delete(family, key)
                        else:
                            batch.put(family, key, value)
                    candidate.write(batch)
                for family, key, value in operations_in_batch:
                    if value is None:
                        model[family].pop(key, None)
                    else:
                        model[family][key] = value
            for candidate in stores:
                for family in (KV, VAL):
                    table = model[family]
                    expected = sorted(
                        (key, value)
                        for key, value in table.items()
                        if key >= start and (stop is None or key < stop)
                    )
                    assert list(candidate.scan(family, start, stop)) == expected
                    probe = [start, *table, b"never"]
                    assert candidate.get_many(family, probe) == [table.get(key) for key in probe]
        finally:
            for candidate in stores:
                candidate.close()


# ---- MemoryStore: scanning while writing --------------------------------------------


def test_memory_scan_sees_writes_made_ahead_of_it_and_not_behind() -> None:
    store = MemoryStore()
    put(store, KV, (b"a", b""), (b"c", b""), (b"e", b""), (b"g", b""))
    seen = []
    for key, _ in store.scan(KV, b""):
        seen.append(key)
        if key == b"c":
            batch = store.batch()
            batch.put(KV, b"b", b"")  # behind: not seen
            batch.put(KV, b"d", b"")  # ahead: seen
            batch.delete(KV, b"e")  # ahead, deleted: not seen
            store.write(batch)
    assert seen == [b"a", b"c", b"d", b"g"]


def test_memory_scan_survives_deleting_the_current_key() -> None:
    store = MemoryStore()
    put(store, KV, (b"a", b""), (b"b", b""), (b"c", b""))
    seen = []
    for key, _ in store.scan(KV, b""):
        seen.append(key)
        batch = store.batch()
        batch.delete(KV, key)
        store.write(batch)
    assert seen == [b"a", b"b", b"c"]
    assert keys_of(store, KV) == []


def test_memory_scan_sees_a_key_appended_after_the_last_one() -> None:
    store = MemoryStore()
    put(store, KV, (b"a", b""))
    seen = []
    for key, _ in store.scan(KV, b""):
        seen.append(key)
        if key == b"a":
            put(store, KV, (b"z", b""))
    assert seen == [b"a", b"z"]


def test_memory_scan_stays_within_its_stop_bound_while_writing() -> None:
    store = MemoryStore()
    put(store, KV, (b"a", b""), (b"b", b""))
    seen = []
    for key, _ in store.scan(KV, b"", b"c"):
        seen.append(key)
        put(store, KV, (b"c", b""), (b"bb", b""))
    assert seen == [b"a", b"b", b"bb"]


step_writes = st.lists(st.tuples(small_keys, st.booleans()), max_size=4)  # (key, delete?)


@settings(max_examples=150)
@given(st.sets(small_keys, max_size=12), st.lists(step_writes, max_size=14))
def test_memory_scan_under_random_writes_is_ordered_and_misses_no_stable_key(
    initial: set[bytes], writes_per_step: list[list[tuple[bytes, bool]]]
) -> None:
    store = MemoryStore()
    put(store, KV, *((key, b"") for key in initial))
    touched: set[bytes] = set()
    seen: list[bytes] = []
    for step, (key, _) in enumerate(store.scan(KV, b"")):
        seen.append(key)
        assert store.get(KV, key) is not None or key in touched
        if step < len(writes_per_step):
            batch = store.batch()
            for written, delete in writes_per_step[step]:
                touched.add(written)
                if delete:
                    batch.delete(KV, written)
                else:
                    batch.put(KV, written, b"")
            store.write(batch)
    assert seen == sorted(set(seen))  # strictly increasing: no repeats, no going back
    untouched = initial - touched
    assert untouched <= set(seen)


def test_memory_store_counts_writes_and_syncs() -> None:
    store = MemoryStore()
    put(store, KV, (b"a", b""))
    store.sync_wal()
    store.sync_wal()
    assert store.writes == 1
    assert store.syncs == 2


# ---- RocksStore: lock, close, persistence -----------------------------------------


def test_rocks_data_survives_close_and_reopen(tmp_path: Path) -> None:
    first = RocksStore(tmp_path / "db")
    batch = first.batch()
    for family in COLUMN_FAMILIES:
        batch.put(family, b"k", family.encode())
    batch.put(VAL, b"empty", b"")
    first.write(batch)
    first.close()
    second = RocksStore(tmp_path / "db")
    try:
        for family in COLUMN_FAMILIES:
            assert second.get(family, b"k") == family.encode()
        assert second.get(VAL, b"empty") == b""
        assert keys_of(second, VAL) == [b"empty", b"k"]
    finally:
        second.close()


def test_rocks_open_twice_raises_store_locked(tmp_path: Path) -> None:
    first = RocksStore(tmp_path / "db")
    try:
        with pytest.raises(StoreLocked) as caught:
            RocksStore(tmp_path / "db")
        assert str(tmp_path / "db") in str(caught.value)
        put(first, KV, (b"still", b"usable"))
        assert first.get(KV, b"still") == b"usable"
    finally:
        first.close()


def test_rocks_close_releases_the_directory_lock(tmp_path: Path) -> None:
    for round_number in range(3):
        store = RocksStore(tmp_path / "db")
        put(store, META, (f"round-{round_number}".encode(), b""))
        store.close()
    final = RocksStore(tmp_path / "db")
    try:
        assert keys_of(final, META) == [b"round-0", b"round-1", b"round-2"]
    finally:
        final.close()


def test_rocks_close_is_idempotent(tmp_path: Path) -> None:
    store = RocksStore(tmp_path / "db")
    store.close()
    store.close()
    assert store.closed
    reopened = RocksStore(tmp_path / "db")
    reopened.close()


def test_rocks_store_creates_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "data"
    store = RocksStore(path)
    try:
        assert path.is_dir()
    finally:
        store.close()


def test_put_many_puts_and_deletes_in_order(store: Store) -> None:
    put(store, VAL, (b"gone", b"old"), (b"kept", b"old"))
    batch = store.batch()
    batch.put_many(VAL, [b"a", b"gone", b"a", b"b"], [b"1", None, b"2", b"3"])
    batch.put_many(KV, [b"a"], [b"header"])
    batch.put_many(LOG, [], [])
    store.write(batch)
    assert store.get_many(VAL, [b"a", b"b", b"gone", b"kept"]) == [b"2", b"3", None, b"old"]
    assert store.get(KV, b"a") == b"header"
    assert store.get(KV, b"b") is None
