"""When a node with a nearly full disk takes writes: the rule, apart from the I/O.

A node keeps a *reserve*: a preallocated file of ``reserve_bytes`` in its data
directory. The first write that fails for lack of space makes the node *full*:
it refuses writes and deletes the reserve, which leaves RocksDB room to
recover, to stop cleanly (its last WAL sync, closing files) and to open
again (replaying the WAL into a new table file). A full node takes writes
again only once the file system has room for the reserve and as much again
(``resume_bytes``): it makes the reserve anew, then a trial write must pass.
Deciding on free space alone, with a margin, keeps a node from flapping
between full and writable while a disk hovers at its limit.

At start, a reserve still present on a file system with less free space than
it needs to open (``open_bytes``) is deleted before the store is opened, and
the node starts full unless ``resume_bytes`` are free.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
# Without a reserve (reserve_bytes 0) a full node still waits for this much room.
MIN_RESUME_BYTES = 4 * MIB


@dataclass(frozen=True, slots=True)
class DiskSpaceRule:
    reserve_bytes: int

    def __post_init__(self) -> None:
        if self.reserve_bytes < 0:
            raise ValueError("the disk reserve cannot be negative")

    @property
    def resume_bytes(self) -> int:
        """Free bytes (the reserve not counted) a full node needs to take writes again:
        the reserve, made anew, and as much room again for writes."""
        return max(2 * self.reserve_bytes, MIN_RESUME_BYTES)

    @property
    def open_bytes(self) -> int:
        """Free bytes beside the reserve the store needs to open (replaying its WAL): as
        much as the reserve, so no node with room for writes gives its reserve away."""
        return self.resume_bytes - self.reserve_bytes

    def release_before_open(self, free_bytes: int, reserve_held: bool) -> bool:
        """Delete the reserve before opening the store: too little room to open it."""
        return reserve_held and free_bytes < self.open_bytes

    def writable(self, free_bytes: int, reserve_held: bool) -> bool:
        """May a node with ``free_bytes`` free (and its reserve held or not) take writes?"""
        if reserve_held:
            return free_bytes >= self.resume_bytes - self.reserve_bytes
        return free_bytes >= self.resume_bytes
