"""Restoring a backup into a new data directory, verified, for a node of a new cluster.

``restore`` copies the files of one backup (a backup directory's newest, or
the one named, or a stream read from standard input) into DATA_DIR, which
must be absent or empty, checking each file's size and CRC-32 against the
manifest. Only when every file is whole does it write ``RESTORE_MARKER``
(the manifest, without its file list) and sync the directory. Anything else
— a corrupt or missing file, a damaged stream — raises ``BackupError`` and
removes what it wrote: the data directory is as it was.

The node started on DATA_DIR finds the marker and, before anything else,
applies the rules of ``replica.backup_restore`` (a new id, no members: the
first node of a new cluster); started with ``--seeds`` it is refused and
nothing changes.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

from rumor.node.server.backup.archive import (
    BLOCK_BYTES,
    BackupDirectory,
    BackupError,
    BackupFile,
    Manifest,
    fsync_dir,
    write_atomically,
)
from rumor.node.server.backup.tar_stream import read_stream

RESTORE_MARKER = "RUMOR_RESTORED"  # in a data dir: a restored backup, not started yet


def restore_from_directory(source: str, data_dir: str, backup_id: str | None = None) -> Manifest:
    archive = BackupDirectory(source)
    if not archive.is_backup_directory():
        raise BackupError(f"{source} is not a backup directory (no backups/ in it)")
    manifest = archive.manifest(backup_id)

    def files() -> Iterable[tuple[BackupFile, Iterable[bytes]]]:
        for entry in manifest.files:
            path = archive.path_of(entry)
            if not path.exists():
                raise BackupError(f"backup file {entry.name} is missing from {archive.files}")
            yield entry, _blocks(path)

    return _install(manifest, files(), Path(data_dir))


def restore_from_stream(source: BinaryIO, data_dir: str) -> Manifest:
    manifest, files = read_stream(source)
    return _install(manifest, files, Path(data_dir))


def _blocks(path: Path) -> Iterable[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(BLOCK_BYTES):
            yield block


def _install(
    manifest: Manifest, files: Iterable[tuple[BackupFile, Iterable[bytes]]], target: Path
) -> Manifest:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"the data directory {target} is not empty: restore into a new directory")
    created = not target.exists()
    try:
        target.mkdir(parents=True, exist_ok=True)
        for entry, blocks in files:
            _copy_checked(entry, blocks, target / entry.name)
        missing = [e.name for e in manifest.files if not (target / e.name).exists()]
        if missing:
            raise BackupError(f"the backup lacks files its manifest lists: {', '.join(missing)}")
        fsync_dir(target)
        described = {k: v for k, v in asdict(manifest).items() if k != "files"}
        write_atomically(target / RESTORE_MARKER, json.dumps(described, indent=1))
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        else:
            for path in target.iterdir():
                path.unlink(missing_ok=True)
        raise
    return manifest


def _copy_checked(entry: BackupFile, blocks: Iterable[bytes], destination: Path) -> None:
    crc = size = 0
    with destination.open("wb") as handle:
        for block in blocks:
            handle.write(block)
            crc = zlib.crc32(block, crc)
            size += len(block)
        handle.flush()
        os.fsync(handle.fileno())
    if (size, crc) != (entry.size, entry.crc32):
        raise BackupError(
            f"backup file {entry.name} is corrupt: {size} bytes with CRC-32 {crc:08x}, the"
            f" manifest says {entry.size} bytes, {entry.crc32:08x}; nothing was restored"
        )


def restored_from(data_dir: str | os.PathLike[str]) -> dict[str, object] | None:
    """The marker a restore left in ``data_dir`` (what the backup was of), or None."""
    marker = Path(data_dir) / RESTORE_MARKER
    if not marker.exists():
        return None
    described: dict[str, object] = json.loads(marker.read_text())
    return described


def clear_marker(data_dir: str | os.PathLike[str]) -> None:
    (Path(data_dir) / RESTORE_MARKER).unlink(missing_ok=True)
    fsync_dir(Path(data_dir))
