"""A RocksStore opened as a secondary instance of another's database (a worker's view).

It reads what the primary wrote before it opened; it sees later writes only
after ``catch_up_with_primary`` (column families, deletions and table files a
flush made included); ``latest_sequence_number`` follows the primary's; it
refuses writes, its ``sync_wal`` does nothing, and it closes without
touching the primary.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rumor.node.storage import RocksStore
from rumor.node.storage.store import KV, VAL


def _put(store: RocksStore, family: str, key: bytes, value: bytes) -> None:
    batch = store.batch()
    batch.put(family, key, value)
    store.write(batch)


def test_a_secondary_sees_the_primary_s_writes_once_it_catches_up(tmp_path: Path) -> None:
    primary = RocksStore(tmp_path / "db")
    secondary = None
    try:
        _put(primary, KV, b"before", b"1")
        secondary = RocksStore(tmp_path / "db", secondary_dir=tmp_path / "view")
        assert secondary.get(KV, b"before") == b"1"
        assert secondary.latest_sequence_number() == primary.latest_sequence_number()
        _put(primary, VAL, b"after", b"2")
        deleted = primary.batch()
        deleted.delete(KV, b"before")
        primary.write(deleted)
        assert secondary.get(VAL, b"after") is None
        secondary.catch_up_with_primary()
        assert secondary.get(VAL, b"after") == b"2"
        assert secondary.get(KV, b"before") is None
        assert secondary.latest_sequence_number() == primary.latest_sequence_number()
        secondary.sync_wal()  # nothing to sync
        with pytest.raises(Exception, match="secondary"):
            _put(secondary, KV, b"x", b"y")
    finally:
        if secondary is not None:
            secondary.close()
        primary.close()


def test_a_secondary_follows_the_primary_s_table_files(tmp_path: Path) -> None:
    primary = RocksStore(tmp_path / "db")
    secondary = RocksStore(tmp_path / "db", secondary_dir=tmp_path / "view")
    try:
        for round_ in range(3):
            for i in range(200):
                _put(primary, KV, b"k%04d" % i, b"r%d" % round_)
            primary.compact(KV)  # flushes the memtable into a table file, then compacts
            primary.wait_for_compactions()
            secondary.catch_up_with_primary()
            assert secondary.get_many(KV, [b"k0000", b"k0199"]) == [b"r%d" % round_] * 2
            assert [key for key, _ in secondary.scan(KV, b"k")][-1] == b"k0199"
    finally:
        secondary.close()
        primary.close()
