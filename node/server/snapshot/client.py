"""Downloading a peer's snapshot into DATA_DIR/incoming/, resumable and verified.

Theory of operation. ``download`` calls ``FetchSnapshot`` and writes each
chunk (its CRC-32 checked) at its offset of its file under
``incoming/db/``. A broken stream is resumed with the same snapshot id from
the file and offset reached, up to ``ATTEMPTS`` times; then every file's
size and CRC-32 (computed as its chunks arrive, in order) is checked against
the list the first message gave. Writes
and checks run in a worker thread. Anything short of a verified copy raises
``SnapshotFailed`` (the engine then falls back to anti-entropy).
"""

from __future__ import annotations

import asyncio
import shutil
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc.aio

from rumor.v1 import replication_pb2 as pb

INCOMING = "incoming"
ATTEMPTS = 5
STREAM_TIMEOUT_S = 600.0

Stream = Callable[[pb.SnapshotRequest, float], AsyncIterator[pb.SnapshotChunk]]


class SnapshotFailed(Exception):
    pass


def incoming_db(data_dir: str | Path) -> Path:
    return Path(data_dir) / INCOMING / "db"


async def download(stream: Stream, sender: int, data_dir: str | Path) -> Path:
    """Fetch a whole verified copy into incoming/db; returns that directory."""
    target = incoming_db(data_dir)
    await asyncio.to_thread(shutil.rmtree, target.parent, True)
    target.mkdir(parents=True)
    snapshot_id = ""
    files: list[pb.SnapshotFile] = []
    index, offset = 0, 0
    crcs: dict[int, int] = {}  # each file's CRC-32 so far (chunks arrive in order)
    last_error = "no attempt"
    for _ in range(ATTEMPTS):
        request = pb.SnapshotRequest(
            sender=sender, snapshot_id=snapshot_id, file_index=index, offset=offset
        )
        try:
            async for chunk in stream(request, STREAM_TIMEOUT_S):
                if chunk.snapshot_id:
                    if snapshot_id and chunk.snapshot_id != snapshot_id:
                        raise SnapshotFailed("the peer answered with another snapshot")
                    snapshot_id, files = chunk.snapshot_id, list(chunk.files)
                    index, offset = _past_full(files, index, offset)
                    continue
                if chunk.file_index != index or chunk.offset != offset:
                    raise SnapshotFailed("a chunk out of order")
                if zlib.crc32(chunk.data) != chunk.crc32:
                    raise SnapshotFailed(f"a chunk of {files[index].name} fails its checksum")
                await asyncio.to_thread(_write, target / files[index].name, offset, chunk.data)
                crcs[index] = zlib.crc32(chunk.data, crcs.get(index, 0))
                index, offset = _past_full(files, index, offset + len(chunk.data))
            if snapshot_id:
                break
        except grpc.aio.AioRpcError as error:
            last_error = f"{error.code().name}: {error.details()}"
            if not snapshot_id:
                raise SnapshotFailed(last_error) from None
            await asyncio.sleep(0.2)  # a broken stream: resume from (index, offset)
    else:
        raise SnapshotFailed(f"the stream broke {ATTEMPTS} times: {last_error}")
    # Empty files get no chunk: create them.
    for entry in files:
        (target / entry.name).touch()
    bad = await asyncio.to_thread(_verify, target, files, crcs)
    if bad:
        raise SnapshotFailed(f"files fail their size or checksum: {', '.join(bad)}")
    return target


def _past_full(files: list[pb.SnapshotFile], index: int, offset: int) -> tuple[int, int]:
    """Where the next chunk starts: past every file already whole (empty files get none)."""
    while index < len(files) and offset >= files[index].size:
        index, offset = index + 1, 0
    return index, offset


def _write(path: Path, offset: int, data: bytes) -> None:
    mode = "r+b" if path.exists() else "wb"
    with path.open(mode) as handle:
        handle.seek(offset)
        handle.write(data)
        handle.truncate()


def _verify(target: Path, files: list[pb.SnapshotFile], crcs: dict[int, int]) -> list[str]:
    """The files that differ from the list in size or CRC-32 (computed as they arrived)."""
    return [
        entry.name
        for index, entry in enumerate(files)
        if (target / entry.name).stat().st_size != entry.size or crcs.get(index, 0) != entry.crc32
    ]


def grpc_stream(channel: grpc.aio.Channel, metadata: Any) -> Stream:
    """``FetchSnapshot`` on ``channel`` as a ``Stream``."""
    method = channel.unary_stream(
        "/rumor.v1.Replication/FetchSnapshot",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.SnapshotChunk.FromString,
    )

    async def call(
        request: pb.SnapshotRequest, timeout_s: float
    ) -> AsyncIterator[pb.SnapshotChunk]:
        async for chunk in method(request, timeout=timeout_s, metadata=metadata):
            yield chunk

    return call
