"""Taking a backup of a running node: ``Admin.Backup`` into a directory or a stream.

``to_directory`` names the files DEST already holds, so the node sends only
the others (incremental); each arrives into ``files/`` verified, and the
manifest is written last. ``to_stream`` writes the whole backup as a tar to a
binary stream (standard output) as it arrives. Both check every chunk's
CRC-32 and every file's size and CRC-32 against the node's list; anything
short of a whole, verified backup raises ``BackupError`` (a directory is left
without a new manifest: its previous backups stand).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import grpc

from rumor.node.server.backup.archive import BackupDirectory, BackupError, BackupFile, Manifest
from rumor.node.server.backup.describe import manifest_of
from rumor.node.server.backup.tar_stream import TarFileSink, TarWriter
from rumor.node.server.security import SECRET_HEADER
from rumor.v1 import admin_pb2, replication_pb2

BACKUP_TIMEOUT_S = 3600.0


class FileSink(Protocol):
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abandon(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Taken:
    """A backup written: its manifest, and what this run moved."""

    manifest: Manifest
    files_sent: int
    bytes_sent: int
    where: str


def call_backup(
    endpoint: str, secret: str | None, held: set[tuple[str, int, int]]
) -> Iterable[admin_pb2.BackupChunk]:
    """``Admin.Backup`` on ``endpoint`` with the cluster secret, as chunks."""
    channel = grpc.insecure_channel(
        endpoint, options=[("grpc.max_receive_message_length", 64 << 20)]
    )
    method = channel.unary_stream(
        "/rumor.v1.Admin/Backup",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=admin_pb2.BackupChunk.FromString,
    )
    request = admin_pb2.BackupRequest(
        have=[replication_pb2.SnapshotFile(name=n, size=s, crc32=c) for n, s, c in sorted(held)]
    )
    metadata = ((SECRET_HEADER, secret),) if secret else ()
    try:
        yield from method(request, timeout=BACKUP_TIMEOUT_S, metadata=metadata)
    finally:
        channel.close()


def receive(
    chunks: Iterable[admin_pb2.BackupChunk],
    held: set[tuple[str, int, int]],
    start: Callable[[Manifest], None],
    open_file: Callable[[BackupFile], FileSink],
) -> tuple[Manifest, int, int]:
    """Walk the stream: ``start`` with the manifest, then each file not ``held`` through
    its sink, in order (empty files get no chunk). Returns (manifest, files, bytes)."""
    manifest: Manifest | None = None
    pending: list[int] = []  # indexes of the files to receive, in order
    current: tuple[int, FileSink] | None = None
    offset = files_sent = bytes_sent = 0

    def finish_through(index: int) -> None:
        """Close the open file and every empty file before ``index``."""
        nonlocal current
        if current is not None:
            current[1].close()
            current = None
        while pending and pending[0] < index:
            entry = manifest.files[pending.pop(0)] if manifest else None
            if entry is None or entry.size:
                raise BackupError(f"the node sent no bytes of {entry.name if entry else '?'}")
            open_file(entry).close()

    try:
        for message in chunks:
            chunk = message.chunk
            if manifest is None:
                if not message.HasField("info") or not chunk.files:
                    raise BackupError("the node's first message is not a backup's description")
                manifest = manifest_of(message.info, chunk.files)
                pending = [i for i, e in enumerate(manifest.files) if e.key not in held]
                start(manifest)
                continue
            if zlib.crc32(chunk.data) != chunk.crc32:
                raise BackupError(f"a chunk of file {chunk.file_index} fails its checksum")
            if current is None or current[0] != chunk.file_index:
                finish_through(chunk.file_index)
                if not pending or pending[0] != chunk.file_index:
                    raise BackupError(f"the node sent file {chunk.file_index} out of order")
                pending.pop(0)
                current, offset = (chunk.file_index, open_file(manifest.files[chunk.file_index])), 0
                files_sent += 1
            if chunk.offset != offset:
                raise BackupError("a chunk out of order")
            current[1].write(chunk.data)
            offset += len(chunk.data)
            bytes_sent += len(chunk.data)
        if manifest is None:
            raise BackupError("the node sent no backup")
        finish_through(len(manifest.files))
    except grpc.RpcError as error:
        if current is not None:
            current[1].abandon()
        raise BackupError(
            f"the node stopped the backup: {error.code().name}: {error.details()}"
        ) from None
    except BaseException:
        if current is not None:
            current[1].abandon()
        raise
    return manifest, files_sent, bytes_sent


def to_directory(
    chunks_for: Callable[[set[tuple[str, int, int]]], Iterable[admin_pb2.BackupChunk]], dest: str
) -> Taken:
    """A backup into the backup directory ``dest`` (made if absent), incremental."""
    archive = BackupDirectory(dest).create()
    held = archive.held()
    manifest, files, sent = receive(chunks_for(held), held, lambda _: None, archive.receive)
    path = archive.commit(manifest)
    return Taken(manifest, files, sent, str(path))


def to_stream(
    chunks_for: Callable[[set[tuple[str, int, int]]], Iterable[admin_pb2.BackupChunk]],
    out: BinaryIO,
) -> Taken:
    """A whole backup as a tar stream on ``out``."""
    writer = TarWriter(out)
    manifest, files, sent = receive(
        chunks_for(set()), set(), writer.manifest, lambda entry: TarFileSink(writer, entry)
    )
    writer.close()
    return Taken(manifest, files, sent, "standard output")
