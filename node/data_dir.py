"""The data directory before a node opens its store, and what a copy of it must change.

``prepare`` settles what an earlier process left: a restored backup started
with seeds is refused (it starts a new cluster, alone), checkpoints an earlier
process served are removed, an interrupted snapshot install is finished.
``open_store`` opens RocksDB once the disk has room (the space reserve is
released when it has not; ``InsufficientStorage`` when even that is not
enough). ``adopt_copy`` runs on the opened store: a node started on a
checkpoint or a copy takes a new id (it must not claim the original's), and a
restored backup's first start makes it the first node of a new cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import structlog

from rumor.node.core.disk_space import MIB, DiskSpaceRule
from rumor.node.replication.replica import backup_restore
from rumor.node.server.backup import restore as backup_restore_files
from rumor.node.server.driver import disk_space
from rumor.node.server.snapshot import swap as snapshot_swap
from rumor.node.server.snapshot.server import remove_all
from rumor.node.startup import new_node_id
from rumor.node.storage import RocksStore, layout
from rumor.node.storage.rocks import RESTORED_MARKER
from rumor.node.storage.store import META

log = structlog.get_logger(__name__)


def prepare(data_dir: str, seeds: Sequence[str]) -> str | None:
    """Settle what an earlier process left in ``data_dir``; why the node must not start
    (a restored backup given seeds), or None."""
    if backup_restore_files.restored_from(data_dir) is not None:
        refused = backup_restore.refusal(seeds)
        if refused is not None:
            return refused
    remove_all(data_dir)  # checkpoints served by an earlier process
    if snapshot_swap.resume(data_dir):
        log.info("snapshot.installed", message="an interrupted install was finished")
    return None


def open_store(data_dir: str, reserve_mb: int) -> RocksStore:
    """The store, opened once the disk has room for it (``InsufficientStorage`` if not)."""
    disk_space.before_open(Path(data_dir), DiskSpaceRule(reserve_mb * MIB))
    return RocksStore(data_dir)


def adopt_copy(store: RocksStore) -> None:
    """A store that is a copy: a new id for a checkpoint, a new cluster for a backup."""
    _take_new_id_if_restored(store)
    _begin_cluster_if_restored_from_backup(store)


def _take_new_id_if_restored(store: RocksStore) -> None:
    """A node started on a checkpoint (or a copy) must not claim the original's id."""
    marker = store.path / RESTORED_MARKER
    if not marker.exists():
        return
    old = store.get(META, layout.META_NODE_ID)
    _, hlc = layout.unpack_marks(store.get(META, layout.META_MARKS))
    batch = store.batch()
    batch.put(META, layout.META_NODE_ID, layout.pack_u64(new_node_id()))
    batch.put(META, layout.META_MARKS, layout.pack_marks(0, hlc))  # a new origin: seq 0
    batch.delete(META, layout.META_RESERVED)
    batch.delete(META, layout.META_INCARNATION)
    store.write(batch)
    store.sync_wal()
    marker.unlink()
    log.info(
        "node.restored",
        previous_id=None if old is None else f"{layout.unpack_u64(old):016x}",
    )


def _begin_cluster_if_restored_from_backup(store: RocksStore) -> None:
    """A restored backup's first start: the first node of a new cluster."""
    described = backup_restore_files.restored_from(store.path)
    if described is None:
        return
    previous = backup_restore.begin_new_cluster(store, new_node_id())
    backup_restore_files.clear_marker(store.path)
    log.info(
        "node.restored_from_backup",
        previous_id=None if previous is None else f"{previous:016x}",
        backup_taken_ms=described.get("taken_ms"),
    )
