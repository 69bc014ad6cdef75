"""What a worker must know of its owner before it serves a read itself, in shared memory.

A worker reads from its own RocksDB secondary instance (``secondary_reads``),
which sees the owner's writes only once it has caught up with the primary.
Per-node read-your-writes asks that a read starting after any acknowledged
write sees it, so the owner publishes here, in a small file of its private
socket directory that every worker maps:

- ``acknowledged_seq``: RocksDB's sequence number once a write is about to be
  acknowledged (after the group commit's sync, before its writers are
  released; under ``durability wal``, before ``durable`` returns), and on
  every tick: a worker caught up to it sees every acknowledged write;
- ``lag_bound_ms`` and ``lag_at_ms``: the engine's lag bound, and when (the
  monotonic clock, shared by every process of the machine) it was computed,
  with ``acknowledged_seq`` of that moment; a worker caught up to that seq
  may report ``lag_bound_ms + (now - lag_at_ms)``, still a true bound
  (``lag_ages`` false: the node has no member to lag, the bound stays 0);
- ``reads_refused``: the owner refuses reads now (its clock is fenced): a
  worker passes reads to it, so the refusal is the owner's own.

The owner is the only writer; readers take a consistent snapshot with a
sequence lock (a counter that is odd while a write is under way).
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = "owner-state"
# version, acknowledged seq, lag bound (-1: unknown), lag at (monotonic ms), flags
_LAYOUT = struct.Struct("<QQqqQ")
_VERSION = struct.Struct("<Q")
_FIELDS = struct.Struct("<QqqQ")
_SEQ = struct.Struct("<Q")
_SEQ_OFFSET = _VERSION.size
_REFUSED = 1
_AGES = 2
UNKNOWN_LAG = -1


def monotonic_ms() -> int:
    """The clock ``lag_at_ms`` is read on (CLOCK_MONOTONIC: the same in every process)."""
    return time.monotonic_ns() // 1_000_000


def state_path(socket_dir: str) -> Path:
    return Path(socket_dir) / STATE_FILE


@dataclass(frozen=True, slots=True)
class OwnerState:
    acknowledged_seq: int
    lag_bound_ms: int  # UNKNOWN_LAG: the owner cannot say
    lag_at_ms: int
    reads_refused: bool
    lag_ages: bool

    def lag_bound_at(self, now_ms: int) -> int | None:
        """The bound a read reports at ``now_ms`` from a view that holds every write up to
        ``acknowledged_seq`` (None: the owner could not say)."""
        if self.lag_bound_ms == UNKNOWN_LAG:
            return None
        if not self.lag_ages:
            return self.lag_bound_ms
        return self.lag_bound_ms + max(0, now_ms - self.lag_at_ms)


class _Mapped:
    def __init__(self, path: Path, writable: bool) -> None:
        descriptor = os.open(path, os.O_RDWR if writable else os.O_RDONLY)
        try:
            access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
            self.memory = mmap.mmap(descriptor, _LAYOUT.size, access=access)
        finally:
            os.close(descriptor)

    def close(self) -> None:
        self.memory.close()


class OwnerStatePublisher(_Mapped):
    """The owner's side: creates the file (0600, in its 0700 directory) and writes it."""

    def __init__(self, socket_dir: str) -> None:
        path = state_path(socket_dir)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(_LAYOUT.pack(0, 0, UNKNOWN_LAG, 0, 0))  # nothing published yet
        super().__init__(path, writable=True)
        self._version = 0

    def acknowledging(self, seq: int) -> None:
        """Writes up to ``seq`` are about to be acknowledged (the seq only grows). After
        ``close`` (the node stopping, its workers gone) there is no one to tell."""
        memory = self.memory
        if memory.closed:
            return
        if seq > _SEQ.unpack_from(memory, _SEQ_OFFSET)[0]:
            self._version += 1
            _VERSION.pack_into(memory, 0, self._version)
            _SEQ.pack_into(memory, _SEQ_OFFSET, seq)
            self._version += 1
            _VERSION.pack_into(memory, 0, self._version)

    def publish(
        self, seq: int, lag_bound_ms: int | None, at_ms: int, refused: bool, ages: bool
    ) -> None:
        """Everything at once (the owner's periodic tick): ``at_ms`` was read before the
        bound was computed, so aging from it never understates the bound."""
        memory = self.memory
        seq = max(seq, _SEQ.unpack_from(memory, _SEQ_OFFSET)[0])
        flags = (_REFUSED if refused else 0) | (_AGES if ages else 0)
        bound = UNKNOWN_LAG if lag_bound_ms is None else lag_bound_ms
        self._version += 1  # odd: a write is under way
        _VERSION.pack_into(memory, 0, self._version)
        _FIELDS.pack_into(memory, _SEQ_OFFSET, seq, bound, at_ms, flags)
        self._version += 1
        _VERSION.pack_into(memory, 0, self._version)


class OwnerStateView(_Mapped):
    """A worker's side: reads what the owner published."""

    def __init__(self, socket_dir: str) -> None:
        super().__init__(state_path(socket_dir), writable=False)

    def snapshot(self) -> OwnerState:
        memory = self.memory
        while True:
            version, seq, bound, at_ms, flags = _LAYOUT.unpack_from(memory, 0)
            if version % 2 == 0 and _VERSION.unpack_from(memory, 0)[0] == version:
                return OwnerState(seq, bound, at_ms, bool(flags & _REFUSED), bool(flags & _AGES))
