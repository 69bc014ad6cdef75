"""Installing a downloaded snapshot: swap it in for the data directory, crash-safely.

Theory of operation. The store is open while the node runs, so a copy is
installed across a restart of the node (in the same process):

1. ``prepare`` (store still open): the copy in incoming/db is opened and
   ``install_into`` applies the rules (own id, marks, HLC, fresh members).
2. The node stops and closes its store.
3. ``begin`` writes the marker incoming/INSTALL, phase "delete", with the
   list of the data directory's own files (atomically: temporary file,
   fsync, rename).
4. ``resume`` deletes those files, rewrites the marker as phase "move",
   renames every file of incoming/db into the data directory, fsyncs it,
   and removes incoming/.
5. The node starts on the installed store and takes the tail by
   anti-entropy.

``wipe`` runs the same steps with nothing to move in: the data directory of a
node refused as removed is emptied, so it starts again as a new node.

Crash safety. ``resume`` runs at every start-up before the store opens.
Without a marker, incoming/ is a download or a preparation that did not
finish: it is removed, and the node (still empty) joins afresh. With a
marker, each phase is idempotent: "delete" removes whichever listed files
remain (no file of the copy has moved yet), "move" renames whichever files
of the copy remain; a crash in either reruns it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from rumor.node.replication.replica.snapshot_install import install_into
from rumor.node.replication.replica.state import ReplicaState
from rumor.node.storage.rocks import RocksStore

INCOMING = "incoming"
MARKER = "INSTALL"
KEEP = {"LOCK"}  # RocksDB's lock file stays where it is


def _incoming(data_dir: Path) -> Path:
    return data_dir / INCOMING


def prepare(own: ReplicaState, data_dir: str | os.PathLike[str]) -> None:
    """Apply the install rules to the downloaded copy (the node's store is still open)."""
    copy = RocksStore(_incoming(Path(data_dir)) / "db")
    try:
        install_into(own, copy)
    finally:
        copy.close()


def begin(data_dir: str | os.PathLike[str]) -> None:
    """The store is closed: record what to delete, then swap (``resume``)."""
    root = Path(data_dir)
    old = sorted(p.name for p in root.iterdir() if p.is_file() and p.name not in KEEP)
    _write_marker(root, {"phase": "delete", "old": old})
    resume(root)


def wipe(data_dir: str | os.PathLike[str]) -> None:
    """The store is closed: delete the data directory's own files, as crash-safely as an
    install (it is one, of nothing): a node refused as removed rejoins as a new node."""
    root = Path(data_dir)
    shutil.rmtree(_incoming(root), ignore_errors=True)
    _incoming(root).mkdir()
    begin(root)


def resume(data_dir: str | os.PathLike[str]) -> bool:
    """Finish an install a crash interrupted, or drop an unfinished download; True if a
    copy was installed."""
    root = Path(data_dir)
    incoming = _incoming(root)
    marker = incoming / MARKER
    if not marker.exists():
        shutil.rmtree(incoming, ignore_errors=True)
        return False
    state = json.loads(marker.read_text())
    if state["phase"] == "delete":
        for name in state["old"]:
            (root / name).unlink(missing_ok=True)
        _fsync_dir(root)
        _write_marker(root, {"phase": "move"})
    copy = incoming / "db"
    if copy.exists():
        for path in sorted(copy.iterdir()):
            if path.is_file() and path.name not in KEEP:
                os.replace(path, root / path.name)
    _fsync_dir(root)
    shutil.rmtree(incoming, ignore_errors=True)
    return True


def _write_marker(root: Path, state: dict[str, object]) -> None:
    incoming = _incoming(root)
    temporary = incoming / (MARKER + ".tmp")
    with temporary.open("w") as handle:
        json.dump(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, incoming / MARKER)
    _fsync_dir(incoming)


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
