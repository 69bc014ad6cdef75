"""A backup as one stream: a tar of ``backup.json`` then ``files/<name>`` for each file.

``rumor admin backup -`` writes it to standard output as the files arrive
(nothing is spooled), so ``| ssh host 'cat > b.tar'`` or ``| aws s3 cp - URL``
works; ``rumor admin restore -`` reads it from standard input the same way.
The manifest comes first (it holds every file's size and CRC-32), so a reader
checks each file as it passes and refuses the stream at the first mismatch. A
stream cut short has no end-of-archive blocks, no manifest-complete set of
files, and is refused.
"""

from __future__ import annotations

import tarfile
import time
import zlib
from collections.abc import Iterator
from typing import IO, BinaryIO

from rumor.node.server.backup.archive import (
    BLOCK_BYTES,
    BackupError,
    BackupFile,
    Manifest,
    check_name,
)

MANIFEST_MEMBER = "backup.json"
FILES_PREFIX = "files/"
_BLOCK = tarfile.BLOCKSIZE
MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # a manifest lists files: kilobytes, never this


class TarWriter:
    """Writes tar members to ``out`` whose sizes are known before their bytes arrive."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.bytes_written = 0

    def _emit(self, data: bytes) -> None:
        self.out.write(data)
        self.bytes_written += len(data)

    def header(self, name: str, size: int) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o600, int(time.time())
        self._emit(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def data(self, data: bytes) -> None:
        self._emit(data)

    def pad(self, size: int) -> None:
        if size % _BLOCK:
            self._emit(b"\0" * (_BLOCK - size % _BLOCK))

    def manifest(self, manifest: Manifest) -> None:
        text = manifest.to_json().encode()
        self.header(MANIFEST_MEMBER, len(text))
        self.data(text)
        self.pad(len(text))

    def close(self) -> None:
        self._emit(b"\0" * (2 * _BLOCK))
        self.out.flush()


class TarFileSink:
    """One file of the backup into the tar: header first, then its chunks, checked."""

    def __init__(self, writer: TarWriter, entry: BackupFile) -> None:
        self.writer, self.entry = writer, entry
        self.crc, self.size = 0, 0
        writer.header(FILES_PREFIX + entry.name, entry.size)

    def write(self, data: bytes) -> None:
        self.writer.data(data)
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)

    def close(self) -> None:
        if (self.size, self.crc) != (self.entry.size, self.entry.crc32):
            raise BackupError(
                f"{self.entry.name} arrived with {self.size} bytes and CRC-32 {self.crc:08x};"
                f" the node listed {self.entry.size} bytes, {self.entry.crc32:08x}"
            )
        self.writer.pad(self.size)

    def abandon(self) -> None:
        pass  # bytes already sent cannot be taken back: the stream ends unfinished


def read_stream(source: BinaryIO) -> tuple[Manifest, Iterator[tuple[BackupFile, Iterator[bytes]]]]:
    """The manifest of a backup stream, and each file with its bytes (read lazily, in
    order). The caller checks sizes and checksums as it consumes them."""
    try:
        archive = tarfile.open(fileobj=source, mode="r|")  # noqa: SIM115 (read lazily by files())
        first = archive.next()
    except tarfile.TarError as exc:
        raise BackupError(f"the input is not a Rumor backup stream (tar): {exc}") from None
    if first is None or first.name != MANIFEST_MEMBER:
        raise BackupError(
            f"the input is not a Rumor backup stream: it must start with {MANIFEST_MEMBER}"
        )
    if first.size > MAX_MANIFEST_BYTES:
        raise BackupError(f"the stream's {MANIFEST_MEMBER} is {first.size} bytes: not a manifest")
    handle = archive.extractfile(first)
    assert handle is not None
    manifest = Manifest.from_json(handle.read().decode(errors="replace"), "the stream's manifest")
    listed = {entry.name: entry for entry in manifest.files}

    def files() -> Iterator[tuple[BackupFile, Iterator[bytes]]]:
        seen: set[str] = set()
        try:
            for member in archive:
                if member is first:
                    continue  # a stream's TarFile yields again what it has read
                name = member.name.removeprefix(FILES_PREFIX)
                if not member.name.startswith(FILES_PREFIX) or not member.isfile():
                    raise BackupError(f"the stream holds {member.name!r}, not a backup file")
                check_name(name, "the stream")
                if name not in listed or name in seen:
                    raise BackupError(
                        f"the stream holds {name}, which its manifest does not list once"
                    )
                seen.add(name)
                body = archive.extractfile(member)
                assert body is not None
                yield listed[name], _blocks(body)
        except (tarfile.TarError, EOFError) as exc:
            raise BackupError(f"the backup stream is cut short or damaged: {exc}") from None
        missing = sorted(set(listed) - seen)
        if missing:
            raise BackupError(f"the backup stream ended without files: {', '.join(missing)}")

    return manifest, files()


def _blocks(body: IO[bytes]) -> Iterator[bytes]:
    """A member's bytes, block by block; a stream cut short is a BackupError."""
    try:
        while block := body.read(BLOCK_BYTES):
            yield block
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupError(f"the backup stream is cut short or damaged: {exc}") from None
