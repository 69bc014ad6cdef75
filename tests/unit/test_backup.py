"""Backups without a node: the restore rules, the backup directory, the tar stream.

The rules a restored copy follows (``replica.backup_restore``) are checked on
an in-memory store with hypothesis. The format is checked end to end without
a network: the snapshot room's real server streams a directory of files, the
real receiver (``backup.fetch``) writes a backup directory or a tar stream,
and ``backup.restore`` reads them back into a data directory.
"""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rumor.node.replication.replica import backup_restore
from rumor.node.server.backup import fetch, restore
from rumor.node.server.backup.archive import BackupDirectory, BackupError
from rumor.node.server.backup.describe import manifest_of
from rumor.node.server.snapshot.server import CHUNK_BYTES, SnapshotServer
from rumor.node.storage import MemoryStore, layout
from rumor.node.storage.store import KV, META, VAL
from rumor.v1 import admin_pb2, replication_pb2

# ---- the restore rules -------------------------------------------------------------

u64 = st.integers(min_value=1, max_value=(1 << 64) - 1)


@settings(max_examples=60, deadline=None)
@given(
    old_id=u64,
    new_id=u64,
    seq=st.integers(0, 1 << 40),
    hlc=st.integers(0, 1 << 62),
    members=st.sets(u64, max_size=5),
    seeds=st.sets(st.sampled_from(["a:1", "b:2", "c:3"])),
    marks=st.dictionaries(u64, st.integers(1, 1 << 40), max_size=5),
    records=st.dictionaries(st.binary(min_size=1, max_size=8), st.binary(max_size=8), max_size=8),
)
def test_a_restored_copy_becomes_a_new_origin_without_the_old_members(
    old_id: int,
    new_id: int,
    seq: int,
    hlc: int,
    members: set[int],
    seeds: set[str],
    marks: dict[int, int],
    records: dict[bytes, bytes],
) -> None:
    store = MemoryStore()
    batch = store.batch()
    batch.put(META, layout.META_NODE_ID, layout.pack_u64(old_id))
    batch.put(META, layout.META_MARKS, layout.pack_marks(seq, hlc))
    batch.put(META, layout.META_RESERVED, layout.pack_marks(seq + 10, hlc + 10))
    batch.put(META, layout.META_INCARNATION, layout.pack_u64(3))
    for member in members:
        batch.put(META, layout.member_key(member), b"m")
    for seed in seeds:
        batch.put(META, layout.META_JOINED_PREFIX + seed.encode(), b"1")
    for origin, mark in marks.items():
        batch.put(META, layout.watermark_key(origin), layout.pack_u64(mark))
    for key, value in records.items():
        batch.put(KV, key, b"header")
        batch.put(VAL, key, value)
    store.write(batch)

    assert backup_restore.begin_new_cluster(store, new_id) == old_id

    assert layout.unpack_u64(store.get(META, layout.META_NODE_ID) or b"") == new_id
    assert layout.unpack_marks(store.get(META, layout.META_MARKS)) == (0, hlc)  # clock kept
    assert store.get(META, layout.META_RESERVED) is None
    assert store.get(META, layout.META_INCARNATION) is None
    forgotten = backup_restore.FORGOTTEN_PREFIXES
    assert not [key for key, _ in store.scan(META, b"") if key.startswith(forgotten)]
    high = layout.unpack_high_seqs(store.get(META, layout.META_HIGH_SEQS))
    for origin, mark in marks.items():  # the watermarks vouch for the records kept
        assert layout.unpack_u64(store.get(META, layout.watermark_key(origin)) or b"") == mark
        assert high[origin] >= mark  # and no joiner clamps them away
    assert high[old_id] >= seq  # the old node's own writes: an origin nobody vouches for
    assert dict(store.scan(VAL, b"")) == records


def test_a_restored_copy_is_refused_seeds_and_names_them() -> None:
    assert backup_restore.refusal(()) is None
    message = backup_restore.refusal(("old-1:7401", "old-2:7401"))
    assert message is not None
    assert "old-1:7401, old-2:7401" in message and "without --seeds" in message


# ---- the format, end to end without a network ----------------------------------------

INFO = admin_pb2.BackupInfo(
    node_id=0xABC, name="n1", address="127.0.0.1:7401", hlc=99, watermarks={0xABC: 7},
    members=[0xABC, 0xDEF], taken_ms=1_700_000_000_000,
)  # fmt: skip


def _database(root: Path, files: dict[str, bytes]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)


def _served(
    source: Path, held: set[tuple[str, int, int]], taken_ms: int = INFO.taken_ms
) -> list[admin_pb2.BackupChunk]:
    """What Admin.Backup streams: the snapshot server's chunks of a copy of ``source``."""
    info = admin_pb2.BackupInfo()
    info.CopyFrom(INFO)
    info.taken_ms = taken_ms

    def checkpoint(directory: str) -> None:
        _database(Path(directory), {p.name: p.read_bytes() for p in source.iterdir()})

    async def collect() -> list[admin_pb2.BackupChunk]:
        server = SnapshotServer(source.parent / "node", checkpoint, lambda _: True, prefix="b-")
        chunks: list[admin_pb2.BackupChunk] = []
        async for chunk in server.stream(replication_pb2.SnapshotRequest(), frozenset(held)):
            first = not chunks
            chunks.append(admin_pb2.BackupChunk(info=info, chunk=chunk) if first else
                          admin_pb2.BackupChunk(chunk=chunk))  # fmt: skip
        await server.close()
        return chunks

    return asyncio.run(collect())


FILES = {
    "000009.sst": os.urandom(CHUNK_BYTES + 1234),  # more than one chunk
    "000010.sst": b"ten",
    "000008.log": b"",  # empty files get no chunk
    "CURRENT": b"MANIFEST-000005\n",
    "MANIFEST-000005": b"manifest",
}


def _restored(data_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in data_dir.iterdir() if p.name != restore.RESTORE_MARKER}


def test_a_second_backup_to_a_directory_copies_only_new_files(tmp_path: Path) -> None:
    db = tmp_path / "db"
    _database(db, FILES)
    sent: list[set[tuple[str, int, int]]] = []

    def chunks_for(held: set[tuple[str, int, int]]) -> Iterable[admin_pb2.BackupChunk]:
        sent.append(held)
        return _served(db, held, INFO.taken_ms + len(sent))

    first = fetch.to_directory(chunks_for, str(tmp_path / "dest"))
    assert first.bytes_sent == sum(len(v) for v in FILES.values())
    (db / "000011.sst").write_bytes(b"eleven")
    (db / "CURRENT").write_bytes(b"MANIFEST-000012\n")  # same name, new contents
    second = fetch.to_directory(chunks_for, str(tmp_path / "dest"))
    assert second.bytes_sent == len(b"eleven") + len(b"MANIFEST-000012\n")
    assert ("000009.sst", len(FILES["000009.sst"])) in {(n, s) for n, s, _ in sent[1]}

    archive = BackupDirectory(tmp_path / "dest")
    older, newer = archive.manifests()
    restore.restore_from_directory(str(tmp_path / "dest"), str(tmp_path / "r1"), older.backup_id)
    assert _restored(tmp_path / "r1") == FILES
    described = restore.restored_from(tmp_path / "r2") or {}
    assert described == {}
    restore.restore_from_directory(str(tmp_path / "dest"), str(tmp_path / "r2"))
    assert _restored(tmp_path / "r2") == {p.name: p.read_bytes() for p in db.iterdir()}
    described = restore.restored_from(tmp_path / "r2") or {}
    assert described["node_id"] == f"{0xABC:016x}" and described["members"] == [
        f"{0xABC:016x}",
        f"{0xDEF:016x}",
    ]

    assert archive.prune(1) == [older.backup_id]
    assert [m.backup_id for m in archive.manifests()] == [newer.backup_id]
    kept = {e.stored_name for e in newer.files}
    assert {p.name for p in archive.files.iterdir()} == kept  # the old CURRENT is gone


def test_a_corrupt_backup_file_is_refused_and_nothing_is_restored(tmp_path: Path) -> None:
    db = tmp_path / "db"
    _database(db, FILES)
    fetch.to_directory(lambda held: _served(db, held), str(tmp_path / "dest"))
    archive = BackupDirectory(tmp_path / "dest")
    (entry,) = [e for e in archive.manifest().files if e.name == "000009.sst"]
    path = archive.path_of(entry)
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BackupError, match=r"000009\.sst is corrupt"):
        restore.restore_from_directory(str(tmp_path / "dest"), str(tmp_path / "restored"))
    assert not (tmp_path / "restored").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BackupError, match="corrupt"):
        restore.restore_from_directory(str(tmp_path / "dest"), str(empty))
    assert list(empty.iterdir()) == []


def test_a_chunk_that_fails_its_checksum_ends_the_backup_without_a_manifest(
    tmp_path: Path,
) -> None:
    db = tmp_path / "db"
    _database(db, FILES)
    chunks = _served(db, set())
    chunks[1].chunk.data = b"x" + chunks[1].chunk.data[1:]
    with pytest.raises(BackupError, match="checksum"):
        fetch.to_directory(lambda held: chunks, str(tmp_path / "dest"))
    assert list((tmp_path / "dest" / "backups").iterdir()) == []


def test_the_tar_stream_round_trips_and_a_damaged_one_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "db"
    _database(db, FILES)
    out = io.BytesIO()
    taken = fetch.to_stream(lambda held: _served(db, held), out)
    assert taken.bytes_sent == sum(len(v) for v in FILES.values())
    stream = out.getvalue()
    with tarfile.open(fileobj=io.BytesIO(stream)) as archive:  # a plain tar, for tar(1)
        assert archive.getnames()[0] == "backup.json"
    restore.restore_from_stream(io.BytesIO(stream), str(tmp_path / "r"))
    assert _restored(tmp_path / "r") == FILES

    damaged = bytearray(stream)
    damaged[len(stream) // 2] ^= 0xFF  # inside 000009.sst's bytes
    with pytest.raises(BackupError, match="corrupt"):
        restore.restore_from_stream(io.BytesIO(bytes(damaged)), str(tmp_path / "r2"))
    assert not (tmp_path / "r2").exists()
    with pytest.raises(BackupError):
        restore.restore_from_stream(io.BytesIO(stream[: len(stream) // 3]), str(tmp_path / "r3"))
    assert not (tmp_path / "r3").exists()
    with pytest.raises(BackupError, match="not a Rumor backup stream"):
        restore.restore_from_stream(io.BytesIO(b"hello" * 200), str(tmp_path / "r4"))


@pytest.mark.parametrize("name", ["../escape", "files/x", "/etc/passwd", ".hidden", ""])
def test_a_stream_naming_a_path_is_refused(tmp_path: Path, name: str) -> None:
    manifest = manifest_of(INFO, [])
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        text = manifest.to_json().encode()
        info = tarfile.TarInfo("backup.json")
        info.size = len(text)
        archive.addfile(info, io.BytesIO(text))
        member = tarfile.TarInfo("files/" + name)
        member.size = 1
        archive.addfile(member, io.BytesIO(b"x"))
    with pytest.raises(BackupError):
        restore.restore_from_stream(io.BytesIO(out.getvalue()), str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()
    assert not (tmp_path / "escape").exists()


def test_restore_refuses_a_data_directory_that_holds_anything(tmp_path: Path) -> None:
    db = tmp_path / "db"
    _database(db, FILES)
    fetch.to_directory(lambda held: _served(db, held), str(tmp_path / "dest"))
    used = tmp_path / "used"
    used.mkdir()
    (used / "CURRENT").write_text("mine")
    with pytest.raises(BackupError, match="not empty"):
        restore.restore_from_directory(str(tmp_path / "dest"), str(used))
    assert (used / "CURRENT").read_text() == "mine"
    with pytest.raises(BackupError, match="not a backup directory"):
        restore.restore_from_directory(str(tmp_path / "db"), str(tmp_path / "r"))
