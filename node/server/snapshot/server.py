"""Serving a consistent copy of this node's store: checkpoints streamed in checksummed chunks.

Theory of operation. ``FetchSnapshot`` from an admitted joiner (the engine's
decision, ``SnapshotJoin.may_serve``) with no snapshot id makes a RocksDB
checkpoint (hard links) under DATA_DIR/snapshots/<id>/, apart from
``rumor admin checkpoint``'s directory; a request with an id resumes that
one from a file and an offset. The first message lists the files (name,
size, CRC-32), then come chunks of ``CHUNK_BYTES`` with their CRC-32. The
checkpoint, the checksums and every read run in a worker thread, so the
event loop only forwards bytes.

``Admin.Backup`` streams backups through a server of its own (``prefix``
"backup-", every caller admitted: the Admin service's authorisation is the
gate), and names the files the caller holds already (``skip``): they are
listed, and their chunks are not sent.

Rules:
- At most ``MAX_SERVED_AT_ONCE`` checkpoints exist at once (each pins files).
- A checkpoint is removed when its stream has sent the last chunk, when no
  stream has used it for ``IDLE_S`` (a broken stream may resume until then),
  and at start-up (``remove_all``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from rumor.node.core.errors import Unavailable
from rumor.node.replication.replica.snapshot_install import MAX_SERVED_AT_ONCE
from rumor.v1 import replication_pb2 as pb

CHUNK_BYTES = 1024 * 1024
IDLE_S = 30.0
SNAPSHOTS = "snapshots"


def file_crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            crc = zlib.crc32(block, crc)
    return crc


@dataclass(slots=True)
class _Served:
    directory: Path
    files: list[pb.SnapshotFile]
    last_used: float = field(default_factory=time.monotonic)
    streams: int = 0


def remove_all(data_dir: str | os.PathLike[str]) -> None:
    """At start-up: no checkpoint outlives the process that served it."""
    shutil.rmtree(Path(data_dir) / SNAPSHOTS, ignore_errors=True)


class SnapshotServer:
    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        make_checkpoint: Callable[[str], object],
        may_serve: Callable[[int], bool],
        *,
        prefix: str = "",
    ) -> None:
        self.root = Path(data_dir) / SNAPSHOTS
        self.prefix = prefix
        self.make_checkpoint = make_checkpoint
        self.may_serve = may_serve
        self.served: dict[str, _Served] = {}
        self._lock = asyncio.Lock()

    async def stream(
        self,
        request: pb.SnapshotRequest,
        skip: frozenset[tuple[str, int, int]] = frozenset(),
    ) -> AsyncIterator[pb.SnapshotChunk]:
        """The file list, then the chunks of every file not in ``skip`` (name, size, CRC-32)."""
        if not self.may_serve(request.sender):
            raise Unavailable("not admitted for a snapshot: send Admit first")
        await self._expire()
        snapshot_id = request.snapshot_id or await self._make()
        served = self.served.get(snapshot_id)
        if served is None:
            raise Unavailable(f"snapshot {snapshot_id} is gone: ask for a new one")
        served.streams += 1
        served.last_used = time.monotonic()
        finished = False
        try:
            yield pb.SnapshotChunk(snapshot_id=snapshot_id, files=served.files)
            index, offset = request.file_index, request.offset
            while index < len(served.files):
                entry = served.files[index]
                path = served.directory / entry.name
                if (entry.name, entry.size, entry.crc32) in skip:
                    offset = entry.size
                while offset < entry.size:
                    data = await asyncio.to_thread(_read, path, offset)
                    if not data:
                        raise Unavailable(f"snapshot file {entry.name} is shorter than listed")
                    yield pb.SnapshotChunk(
                        file_index=index, offset=offset, data=data, crc32=zlib.crc32(data)
                    )
                    offset += len(data)
                    served.last_used = time.monotonic()
                index, offset = index + 1, 0
            finished = True
        finally:
            served.streams -= 1
            served.last_used = time.monotonic()
            if finished:
                await self._remove(snapshot_id)

    async def _make(self) -> str:
        async with self._lock:
            if len(self.served) >= MAX_SERVED_AT_ONCE:
                raise Unavailable(f"already serving {MAX_SERVED_AT_ONCE} snapshots: retry later")
            snapshot_id = f"{self.prefix}{time.time_ns():x}"
            directory = self.root / snapshot_id
            self.root.mkdir(parents=True, exist_ok=True)
            files = await asyncio.to_thread(self._checkpoint, directory)
            self.served[snapshot_id] = _Served(directory, files)
            return snapshot_id

    def _checkpoint(self, directory: Path) -> list[pb.SnapshotFile]:
        self.make_checkpoint(str(directory))
        return [
            pb.SnapshotFile(name=path.name, size=path.stat().st_size, crc32=file_crc32(path))
            for path in sorted(directory.iterdir())
            if path.is_file()
        ]

    async def _expire(self) -> None:
        now = time.monotonic()
        for snapshot_id, served in list(self.served.items()):
            if served.streams == 0 and now - served.last_used > IDLE_S:
                await self._remove(snapshot_id)

    async def _remove(self, snapshot_id: str) -> None:
        served = self.served.pop(snapshot_id, None)
        if served is not None:
            await asyncio.to_thread(shutil.rmtree, served.directory, True)

    async def close(self) -> None:
        for snapshot_id in list(self.served):
            with contextlib.suppress(OSError):
                await self._remove(snapshot_id)


def _read(path: Path, offset: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(CHUNK_BYTES)
