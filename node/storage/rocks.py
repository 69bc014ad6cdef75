"""RocksStore: the Store protocol on RocksDB, through rocksdict in raw mode.

Writes never sync by themselves (``WriteOptions.sync`` is off and the WAL is
on): the node's group commit calls ``sync_wal`` — one ``flush_wal(True)`` for
every write that finished before it started, and rocksdict releases the GIL
while it runs, so it can run on a worker thread. Opening the store reads no
keys. Memory is bounded by small write buffers and a shared block cache.

A deleted entry stays in RocksDB (a tombstone, stepped over by every scan)
until a compaction drops it; ``compact`` runs one for a column family on a
thread of its own (rocksdict releases the GIL), for a caller that has just
deleted many entries, so the event loop never waits for it.

A full disk is a state, not a crash: a write or a sync that fails for lack of
space raises ``InsufficientStorage`` (whose message names the cause, never
a path), and so does every later failure RocksDB reports as its "previous
error" until a write succeeds again (RocksDB resumes by itself once space
returns). ``close`` then skips the WAL sync it cannot make.

A store opened with ``secondary_dir`` is a RocksDB secondary instance of the
database another process writes (a worker's, beside its owner): it reads the
primary's files and replays its WAL into memtables of its own, and sees new
writes only when ``catch_up_with_primary`` runs. It writes nothing (its
``sync_wal`` has nothing to sync) and keeps a small block cache: each worker
holds one.
"""

from __future__ import annotations

import errno
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from rocksdict import (
    AccessType,
    BlockBasedOptions,
    Cache,
    Checkpoint,
    DBCompressionType,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
    WriteOptions,
)

from rumor.node.core.errors import InsufficientStorage
from rumor.node.storage.store import COLUMN_FAMILIES, KV, Batch

WRITE_BUFFER_BYTES = 16 * 1024 * 1024
RESTORED_MARKER = "RUMOR_CHECKPOINT"  # in a checkpoint: the node must take a new id
BLOCK_CACHE_BYTES = 32 * 1024 * 1024
SECONDARY_BLOCK_CACHE_BYTES = 4 * 1024 * 1024  # per worker: the owner's cache is the big one
MEMTABLE_BLOOM_RATIO = 0.1  # of the write buffer: ~1.6 MiB per kv memtable
_SKIPPED = re.compile(r"^rocksdb\.number\.iter\.skip COUNT : (\d+)$", re.MULTILINE)


NO_SPACE = "No space left on device"  # RocksDB's words for ENOSPC


def is_no_space(error: BaseException) -> bool:
    """``error`` is a write that failed for lack of space (RocksDB's or the OS's)."""
    return NO_SPACE in str(error) or getattr(error, "errno", None) == errno.ENOSPC


class StoreLocked(RuntimeError):
    """Another process holds the data directory."""


def _lock_holder(lock: Path) -> str | None:
    """The pid and command of the process holding RocksDB's LOCK file, if /proc tells."""
    target = str(lock.resolve())
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                if os.readlink(fd) == target:
                    pid = fd_dir.parent.name
                    if int(pid) == os.getpid():
                        return f"{pid}, this very process"
                    command = (fd_dir.parent / "cmdline").read_bytes().replace(b"\0", b" ")
                    return f"{pid}: {command.decode(errors='replace').strip()[:120]}"
        except OSError:
            continue
    return None


class RocksBatch:
    __slots__ = ("_handles", "batch")

    def __init__(self, handles: dict[str, object]) -> None:
        self._handles = handles
        self.batch = WriteBatch(raw_mode=True)

    def put(self, family: str, key: bytes, value: bytes) -> None:
        self.batch.put(key, value, self._handles[family])

    def delete(self, family: str, key: bytes) -> None:
        self.batch.delete(key, self._handles[family])

    def put_many(self, family: str, keys: Sequence[bytes], values: Sequence[bytes | None]) -> None:
        # The hot loop of a bulk write: rocksdict's methods bound once, no wrapper per key.
        handle = self._handles[family]
        put = self.batch.put
        if None not in values:
            for key, value in zip(keys, values, strict=True):
                put(key, value, handle)
            return
        delete = self.batch.delete
        for key, value in zip(keys, values, strict=True):
            if value is None:
                delete(key, handle)
            else:
                put(key, value, handle)

    def __len__(self) -> int:
        return int(self.batch.len())


def _options(cache: Cache) -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    options.set_write_buffer_size(WRITE_BUFFER_BYTES)
    options.set_max_write_buffer_number(3)
    options.set_max_background_jobs(2)
    options.set_compression_type(DBCompressionType.lz4())
    table = BlockBasedOptions()
    table.set_block_cache(cache)
    table.set_bloom_filter(10, False)
    options.set_block_based_table_factory(table)
    return options


class RocksStore:
    """A RocksDB database in ``path`` with Rumor's column families."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        statistics: bool = False,
        secondary_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        """``statistics``: keep RocksDB's counters (``hidden_entries_stepped``); costs a
        little on every operation, so for tests and measurements. ``secondary_dir``: open
        a secondary instance of the database in ``path`` (its own files go there)."""
        self.path = Path(path)
        self.secondary = secondary_dir is not None
        if secondary_dir is None:
            self.path.mkdir(parents=True, exist_ok=True)
            access = AccessType.read_write()
        else:
            access = AccessType.secondary(str(secondary_dir))
        cache = Cache(SECONDARY_BLOCK_CACHE_BYTES if self.secondary else BLOCK_CACHE_BYTES)
        families = {name: _options(cache) for name in COLUMN_FAMILIES}
        # Every write first looks its key up in ``kv`` (a bulk write: 10,000 of them, most
        # new): a bloom filter in each memtable answers a miss without a skiplist search.
        families[KV].set_memtable_whole_key_filtering(True)
        families[KV].set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO)
        self._db_options = _options(cache)
        if statistics:
            self._db_options.enable_statistics()
        if self.secondary:
            # RocksDB keeps a secondary's table files open, and each catch-up loads the
            # table handlers with this many threads per column family, started anew: 16
            # (the default) made a catch-up cost ~2 ms of CPU even with nothing new, one
            # ~20 µs.
            self._db_options.set_max_open_files(-1)
            self._db_options.set_max_file_opening_threads(1)
        try:
            self._db = Rdict(
                str(self.path), self._db_options, column_families=families, access_type=access
            )
        except Exception as exc:
            if "lock" in str(exc).lower():
                holder = _lock_holder(self.path / "LOCK")
                by = f" (pid {holder})" if holder else ""
                raise StoreLocked(
                    f"data directory {self.path} is in use by another process{by}"
                ) from exc
            if is_no_space(exc):  # recovery writes the WAL's records to a new file
                raise InsufficientStorage(
                    "no space left on the data directory's disk to open the store: free"
                    " space and start the node again"
                ) from None
            raise
        self._families = {name: self._db.get_column_family(name) for name in COLUMN_FAMILIES}
        self._handles: dict[str, object] = {
            name: self._db.get_column_family_handle(name) for name in COLUMN_FAMILIES
        }
        self._write_options = WriteOptions()
        self._write_options.sync = False
        self._open_iterators = 0
        self._compaction_lock = threading.Lock()
        self._compactions_wanted: set[str] = set()
        self._compactor: threading.Thread | None = None
        self.compactions = 0  # finished, since open
        self.closed = False
        self.out_of_space = False  # a write failed for lack of space; none succeeded since

    def batch(self) -> RocksBatch:
        return RocksBatch(self._handles)

    def write(self, batch: Batch) -> None:
        if not isinstance(batch, RocksBatch):
            raise TypeError("RocksStore.write takes a batch made by RocksStore.batch()")
        try:
            self._db.write(batch.batch, self._write_options)
        except Exception as exc:
            if not self._no_space(exc):
                raise
            raise InsufficientStorage() from None
        self.out_of_space = False

    def sync_wal(self) -> None:
        if self.secondary:
            return  # it writes nothing: the primary syncs its own WAL
        try:
            self._db.flush_wal(True)
        except Exception as exc:
            if not self._no_space(exc):
                raise
            raise InsufficientStorage() from None

    def catch_up_with_primary(self) -> None:
        """A secondary: read what the primary wrote since (its WAL, new table files).
        Blocks for a while (it reads files); rocksdict releases the GIL meanwhile."""
        self._db.try_catch_up_with_primary()

    def latest_sequence_number(self) -> int:
        """RocksDB's sequence number of the latest write this instance sees."""
        return int(self._db.latest_sequence_number())

    def _no_space(self, error: Exception) -> bool:
        """``error`` is a failure for lack of space, or RocksDB's "previous error" after
        one (it refuses every write until it has recovered)."""
        if is_no_space(error) or (self.out_of_space and "previous error" in str(error)):
            self.out_of_space = True
            return True
        return False

    def get(self, family: str, key: bytes) -> bytes | None:
        value: bytes | None = self._families[family].get(key)
        return value

    def get_many(self, family: str, keys: list[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        values: list[bytes | None] = self._families[family].get(keys)
        return values

    def scan(
        self, family: str, start: bytes, stop: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        read_options = ReadOptions()
        if stop is not None:
            read_options.set_iterate_upper_bound(stop)
        iterator = self._families[family].iter(read_options)
        self._open_iterators += 1
        try:
            iterator.seek(start)
            while iterator.valid():
                yield iterator.key(), iterator.value()
                iterator.next()
            iterator.status()  # an I/O error ends the walk by raising, not as if at the end
        finally:
            del iterator
            self._open_iterators -= 1

    def compact(self, family: str) -> None:
        """Compact ``family`` on the compaction thread (started if none runs); returns at
        once. Requests for a family already waiting are one."""
        with self._compaction_lock:
            if self.closed:
                return
            self._compactions_wanted.add(family)
            if self._compactor is not None:
                return
            self._compactor = threading.Thread(
                target=self._compact_wanted, name="rumor-compaction", daemon=True
            )
            self._compactor.start()

    def _compact_wanted(self) -> None:
        while True:
            with self._compaction_lock:
                if not self._compactions_wanted or self.closed:
                    self._compactor = None
                    return
                family = min(self._compactions_wanted)
                self._compactions_wanted.discard(family)
                target = self._families[family]
            target.compact_range(None, None)
            self.compactions += 1

    def wait_for_compactions(self) -> None:
        """Return once no compaction is running or wanted (tests, close)."""
        with self._compaction_lock:
            compactor = self._compactor
        if compactor is not None:
            compactor.join()

    def hidden_entries_stepped(self) -> int:
        """Deleted or overwritten entries scans stepped over since open (RocksDB's
        ``number.iter.skip``); needs ``statistics=True``."""
        found = _SKIPPED.search(self._db_options.get_statistics() or "")
        if found is None:
            raise RuntimeError("RocksStore statistics are off: open it with statistics=True")
        return int(found.group(1))

    def checkpoint(self, directory: str | os.PathLike[str]) -> Path:
        """A consistent copy of the database (hard links where possible) in ``directory``,
        marked so that a node started on it takes a new id."""
        target = Path(directory)
        if target.exists():
            raise FileExistsError(f"{target} already exists")
        target.parent.mkdir(parents=True, exist_ok=True)
        Checkpoint(self._db).create_checkpoint(str(target))
        (target / RESTORED_MARKER).write_text("taken by rumor admin checkpoint\n")
        return target

    def snapshot_files(self, directory: str) -> Path:
        """A checkpoint for a peer's bootstrap (hard links, no restore marker), not opened."""
        target = Path(directory)
        if target.exists():
            raise FileExistsError(f"{target} already exists")
        target.parent.mkdir(parents=True, exist_ok=True)
        Checkpoint(self._db).create_checkpoint(str(target))
        return target

    def snapshot_copy(self, directory: str) -> RocksStore:
        """A checkpoint for bootstrapping a peer (hard links: ``directory`` must be on
        this store's file system), opened as a store; no restore marker, since the
        installing node keeps its own id."""
        target = Path(directory)
        if target.exists():
            raise FileExistsError(f"{target} already exists")
        target.parent.mkdir(parents=True, exist_ok=True)
        Checkpoint(self._db).create_checkpoint(str(target))
        return RocksStore(target)

    def _close_step(self, step: Callable[[], object]) -> None:
        try:
            step()
        except Exception as exc:
            if not self._no_space(exc):
                raise

    def close(self) -> None:
        """Flush, sync and close; releases the directory lock."""
        if self.closed:
            return
        with self._compaction_lock:
            self.closed = True  # no compaction starts from here on
            compactor = self._compactor
        if compactor is not None:
            compactor.join()  # the one under way finishes: it holds a family's handle
        # Out of space, each step fails as the WAL sync does: what was written but not
        # synced was never acknowledged, and RocksDB recovers it at the next open.
        if not self.secondary:
            self._close_step(lambda: self._db.flush_wal(True))
        self._handles.clear()
        for family in self._families.values():
            self._close_step(family.close)
        self._families.clear()
        self._close_step(self._db.close)
        del self._db
