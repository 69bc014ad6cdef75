"""A backup directory: RocksDB files kept once, and one manifest per backup.

Layout of DEST::

    DEST/files/<name>.<size>.<crc32>   every file any backup holds, once
    DEST/backups/<when>-<node>.json    a manifest per backup (``Manifest``)

A RocksDB file's name is never reused for other contents within one
database (SST files are immutable; MANIFEST, OPTIONS and CURRENT are named by
size and checksum too), so a file already held is not copied again: the next
backup to the same DEST is incremental. A file enters ``files/`` only whole
and verified (written to a temporary name, its CRC-32 checked, renamed), and a
backup exists only once its manifest is written (atomically, after its
files): an interrupted backup leaves no manifest, and its files serve the
next one. ``prune`` keeps the newest backups and deletes files no kept
manifest names.
"""

from __future__ import annotations

import json
import os
import re
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

FORMAT = "rumor-backup-1"
FILES = "files"
BACKUPS = "backups"
BLOCK_BYTES = 1024 * 1024
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # RocksDB's file names


class BackupError(Exception):
    """A backup that cannot be written, read or trusted; the message says which and why."""


@dataclass(frozen=True, slots=True)
class BackupFile:
    name: str
    size: int
    crc32: int

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.name, self.size, self.crc32)

    @property
    def stored_name(self) -> str:
        return f"{self.name}.{self.size}.{self.crc32:08x}"


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a backup is of: the node, the members it counted, its durable watermarks
    (the copy holds at least these) and when it was taken; and its files."""

    node_id: str  # 16 hex digits
    name: str
    address: str
    hlc: int
    watermarks: dict[str, int]  # origin (16 hex digits) -> seq
    members: list[str]
    taken_ms: int
    files: list[BackupFile] = field(default_factory=list)
    format: str = FORMAT

    @property
    def backup_id(self) -> str:
        when = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self.taken_ms / 1000))
        return f"{when}.{self.taken_ms % 1000:03d}Z-{self.node_id}"

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str, source: str) -> Manifest:
        """A manifest from its JSON; BackupError names ``source`` if it is not one."""
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise BackupError(f"{source} is not a Rumor backup manifest ({FORMAT})")
            files = [
                BackupFile(str(f["name"]), int(f["size"]), int(f["crc32"])) for f in data["files"]
            ]
            manifest = cls(
                node_id=str(data["node_id"]),
                name=str(data["name"]),
                address=str(data["address"]),
                hlc=int(data["hlc"]),
                watermarks={str(k): int(v) for k, v in data["watermarks"].items()},
                members=[str(m) for m in data["members"]],
                taken_ms=int(data["taken_ms"]),
                files=files,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackupError(f"{source} is not a valid backup manifest: {exc!r}") from None
        for entry in files:
            check_name(entry.name, source)
        return manifest


def check_name(name: str, source: str) -> None:
    """A file name a backup may hold: RocksDB's kind, never a path."""
    if not _SAFE_NAME.match(name) or len(name) > 255:
        raise BackupError(f"{source} names a file {name!r} that is not a RocksDB file name")


def file_crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as handle:
        while block := handle.read(BLOCK_BYTES):
            crc = zlib.crc32(block, crc)
    return crc


def fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_dir(path.parent)


class IncomingFile:
    """One file arriving into ``files/``: chunks appended and checksummed, renamed when whole."""

    def __init__(self, archive: BackupDirectory, entry: BackupFile) -> None:
        self.entry = entry
        self.final = archive.files / entry.stored_name
        self.partial = archive.files / f".partial-{entry.stored_name}"
        self.crc = 0
        self.size = 0
        self._handle = self.partial.open("wb")

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        if (self.size, self.crc) != (self.entry.size, self.entry.crc32):
            self.partial.unlink(missing_ok=True)
            raise BackupError(
                f"{self.entry.name} arrived with {self.size} bytes and CRC-32 {self.crc:08x};"
                f" the node listed {self.entry.size} bytes, {self.entry.crc32:08x}"
            )
        os.replace(self.partial, self.final)

    def abandon(self) -> None:
        if not self._handle.closed:
            self._handle.close()
        self.partial.unlink(missing_ok=True)


class BackupDirectory:
    """DEST: its files, its manifests; incremental adds, pruning, verification."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.files = self.root / FILES
        self.backups = self.root / BACKUPS

    def create(self) -> BackupDirectory:
        try:
            self.files.mkdir(parents=True, exist_ok=True)
            self.backups.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackupError(f"cannot write a backup to {self.root}: {exc.strerror}") from None
        for stale in self.files.glob(".partial-*"):
            stale.unlink(missing_ok=True)  # an interrupted backup's unfinished file
        return self

    def is_backup_directory(self) -> bool:
        return self.backups.is_dir()

    def manifests(self) -> list[Manifest]:
        """Every backup here, oldest first."""
        found = [
            Manifest.from_json(path.read_text(), str(path)) for path in self.backups.glob("*.json")
        ]
        return sorted(found, key=lambda manifest: manifest.taken_ms)

    def manifest(self, backup_id: str | None = None) -> Manifest:
        """The newest backup, or the one named ``backup_id``."""
        manifests = self.manifests() if self.backups.is_dir() else []
        if not manifests:
            raise BackupError(f"{self.root} holds no backup (no {BACKUPS}/*.json)")
        if backup_id is None:
            return manifests[-1]
        for manifest in manifests:
            if manifest.backup_id == backup_id:
                return manifest
        known = ", ".join(m.backup_id for m in manifests)
        raise BackupError(f"{self.root} holds no backup {backup_id}; it holds {known}")

    def held(self) -> set[tuple[str, int, int]]:
        """The files held whole (name, size, CRC-32), as the node's file list names them."""
        held = set()
        for path in self.files.iterdir() if self.files.is_dir() else ():
            name, _, rest = path.name.rpartition(".")
            stem, _, size = name.rpartition(".")
            if path.name.startswith(".") or not stem or not size.isdigit():
                continue
            try:
                held.add((stem, int(size), int(rest, 16)))
            except ValueError:
                continue
        return held

    def receive(self, entry: BackupFile) -> IncomingFile:
        return IncomingFile(self, entry)

    def path_of(self, entry: BackupFile) -> Path:
        return self.files / entry.stored_name

    def commit(self, manifest: Manifest) -> Path:
        """The backup exists from here on: every file it names is held whole."""
        missing = [e.name for e in manifest.files if not self.path_of(e).exists()]
        if missing:
            raise BackupError(f"the backup is missing files: {', '.join(missing)}")
        fsync_dir(self.files)
        path = self.backups / f"{manifest.backup_id}.json"
        write_atomically(path, manifest.to_json())
        return path

    def prune(self, keep: int) -> list[str]:
        """Keep the newest ``keep`` backups; delete the others and the files only they
        named. Returns the ids of the backups deleted."""
        manifests = self.manifests()
        doomed = manifests[: max(len(manifests) - keep, 0)]
        kept = manifests[len(doomed) :]
        for manifest in doomed:
            (self.backups / f"{manifest.backup_id}.json").unlink(missing_ok=True)
        named = {entry.stored_name for manifest in kept for entry in manifest.files}
        for path in self.files.iterdir():
            if path.name not in named:
                path.unlink(missing_ok=True)
        return [manifest.backup_id for manifest in doomed]

    def open_verified(self, manifest: Manifest) -> Iterator[tuple[BackupFile, Path]]:
        """Each file of ``manifest`` with its path, once its size and CRC-32 are checked."""
        for entry in manifest.files:
            path = self.path_of(entry)
            if not path.exists():
                raise BackupError(f"backup file {entry.name} is missing from {self.files}")
            size, crc = path.stat().st_size, file_crc32(path)
            if (size, crc) != (entry.size, entry.crc32):
                raise BackupError(
                    f"backup file {entry.name} is corrupt: {size} bytes with CRC-32"
                    f" {crc:08x}, the manifest says {entry.size} bytes, {entry.crc32:08x}"
                )
            yield entry, path
