"""The node's own backups: every ``--backup-interval`` seconds into ``--backup-dir``.

Each run makes a checkpoint (hard links) under DATA_DIR/snapshots/, adds to
the backup directory the files it does not hold yet (the same format and
the same incremental rule as ``rumor admin backup DEST``), writes the
manifest, keeps the newest ``--backup-keep`` backups, and removes the
checkpoint. Everything but reading the watermarks runs in a worker thread.
A failed run is logged (``backup.failed``) and the next one tries again; the
first run is one interval after the start. A stop waits for a run under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import structlog

from rumor.node.server.backup.archive import (
    BLOCK_BYTES,
    BackupDirectory,
    BackupFile,
    Manifest,
    file_crc32,
)
from rumor.node.server.snapshot.server import SNAPSHOTS

log = structlog.get_logger(__name__)


class ScheduledBackups:
    def __init__(
        self,
        data_dir: str,
        backup_dir: str,
        interval_s: float,
        keep: int,
        make_checkpoint: Callable[[str], object],
        describe: Callable[[], Manifest],
    ) -> None:
        self.checkpoints = Path(data_dir) / SNAPSHOTS
        self.archive = BackupDirectory(backup_dir)
        self.interval_s = interval_s
        self.keep = keep
        self.make_checkpoint = make_checkpoint
        self.describe = describe
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scheduled-backups")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task  # a run under way finishes: it holds the store's files

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)
            if self._stopping.is_set():
                return
            started = time.monotonic()
            described = self.describe()  # before the checkpoint: the copy holds at least it
            try:
                manifest, copied = await asyncio.to_thread(self.take, described)
            except Exception as error:
                log.error("backup.failed", backup_dir=str(self.archive.root), error=repr(error))
                continue
            log.info(
                "backup.written",
                backup=manifest.backup_id,
                files=len(manifest.files),
                bytes=manifest.total_bytes,
                bytes_copied=copied,
                seconds=round(time.monotonic() - started, 3),
            )

    def take(self, described: Manifest) -> tuple[Manifest, int]:
        """One backup (in a worker thread): returns its manifest and the bytes copied."""
        checkpoint = self.checkpoints / f"scheduled-{time.time_ns():x}"
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        try:
            self.make_checkpoint(str(checkpoint))
            files = [
                BackupFile(path.name, path.stat().st_size, file_crc32(path))
                for path in sorted(checkpoint.iterdir())
                if path.is_file()
            ]
            archive = self.archive.create()
            held = archive.held()
            copied = 0
            for entry in files:
                if entry.key in held:
                    continue
                incoming = archive.receive(entry)
                try:
                    with (checkpoint / entry.name).open("rb") as source:
                        while block := source.read(BLOCK_BYTES):
                            incoming.write(block)
                    incoming.close()
                except BaseException:
                    incoming.abandon()
                    raise
                copied += entry.size
            manifest = replace(described, files=files)
            archive.commit(manifest)
            archive.prune(self.keep)
            return manifest, copied
        finally:
            shutil.rmtree(checkpoint, ignore_errors=True)
