"""The disk reserve and the full-disk state: the I/O around ``core.disk_space``.

``DiskGuard`` owns the reserve file (``RESERVE_NAME`` in the data directory,
preallocated with ``posix_fallocate`` so its blocks are really taken) and
says whether the node is *full*. The store reports a write that failed for
lack of space (``out_of_space``); ``watch`` notices it within ``PROBE_S``,
deletes the reserve and marks the node full. While full it probes every
``PROBE_S`` on a worker thread (``statvfs``, making the reserve anew, one trial
write), never on the event loop, and marks the node writable once the probe
passes. The driver reads ``full`` on every tick and tells the engine, which
makes the protocol's decisions (refuse client writes and peers' records,
say so in every envelope).

``before_open`` runs before the store opens: it deletes the reserve when the
file system has too little room left to open the store, so a node stopped
while full starts again (read-only) instead of failing in RocksDB's recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Protocol

import structlog

from rumor.node.core.disk_space import MIB, DiskSpaceRule
from rumor.node.core.errors import InsufficientStorage
from rumor.node.storage.store import META, Batch

log = structlog.get_logger(__name__)

RESERVE_NAME = "SPACE-RESERVE"
PROBE_S = 0.5
_TRIAL_KEY = b"disk-trial-write"  # a meta key nothing reads: the trial write's target


class TrialStore(Protocol):
    out_of_space: bool

    def batch(self) -> Batch: ...

    def write(self, batch: Batch) -> None: ...


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged process may still write on ``directory``'s file system."""
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def before_open(directory: Path, rule: DiskSpaceRule) -> bool:
    """Delete the reserve if the store could not open beside it; True if deleted."""
    reserve = directory / RESERVE_NAME
    if not reserve.exists():
        return False
    if not rule.release_before_open(free_bytes(directory), reserve_held=True):
        return False
    reserve.unlink()
    log.warning(
        "disk.reserve_released",
        reason="too little space to open the store beside the reserve",
        free_mib=round(free_bytes(directory) / MIB, 1),
    )
    return True


class DiskGuard:
    def __init__(self, directory: Path, rule: DiskSpaceRule, store: TrialStore) -> None:
        self.directory = directory
        self.rule = rule
        self.store = store
        self.reserve = directory / RESERVE_NAME
        self.full = False
        self.full_since = 0.0  # time.time() the node became full
        self.probes = 0  # while full, since start
        self._probe: asyncio.Future[bool] | None = None

    @property
    def reason(self) -> str:
        """Why writes are refused ("" while writable)."""
        return "disk full: no space left on this node's disk" if self.full else ""

    def start(self) -> None:
        """After the store opened: writable if there is room (the reserve made), else full."""
        try:
            if self._room_for_writes():
                return
        except OSError as error:  # the space went between the look and the reserve
            log.warning("disk.reserve_not_made", error=str(error))
        self.full, self.full_since = True, time.time()
        log.warning(
            "disk.full",
            reason="too little free space at start: serving reads only",
            free_mib=round(free_bytes(self.directory) / MIB, 1),
            resume_mib=round(self.rule.resume_bytes / MIB, 1),
        )

    def no_space(self) -> None:
        """A write failed for lack of space: refuse writes, and release the reserve."""
        if self.full:
            return
        self.full, self.full_since = True, time.time()
        released = False
        with contextlib.suppress(FileNotFoundError):
            self.reserve.unlink()
            released = True
        log.warning(
            "disk.full",
            reason="a write failed: no space left on device",
            reserve_released=released,
            resume_mib=round(self.rule.resume_bytes / MIB, 1),
        )

    async def watch(self) -> None:
        """Notice a failed write; while full, probe for space (off the loop)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(PROBE_S)
            if not self.full:
                if self.store.out_of_space:
                    self.no_space()
                continue
            self._probe = loop.run_in_executor(None, self._writable_again)
            try:
                writable = await asyncio.shield(self._probe)
            except Exception as error:  # the store refused otherwise: probe again later
                log.warning("disk.probe_failed", error=repr(error))
                writable = False
            finally:
                self._probe = None
            self.probes += 1
            if writable:
                self.full = False
                log.info(
                    "disk.writable",
                    seconds_full=round(time.time() - self.full_since, 1),
                    free_mib=round(free_bytes(self.directory) / MIB, 1),
                )

    async def stop(self) -> None:
        """Wait for a probe under way (it writes to the store, which closes next)."""
        probe = self._probe
        if probe is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(probe), 10)

    # ---- on a worker thread ---------------------------------------------------

    def _writable_again(self) -> bool:
        """Room for the reserve and for writes, the reserve made, and a trial write passed."""
        try:
            if not self._room_for_writes():
                return False
            batch = self.store.batch()
            batch.put(META, _TRIAL_KEY, b"%d" % time.time_ns())
            self.store.write(batch)  # refused until RocksDB has recovered from the error
        except (InsufficientStorage, OSError) as error:
            log.debug("disk.probe_failed", error=str(error))
            return False
        return True

    def _room_for_writes(self) -> bool:
        """Enough free space to take writes; makes the reserve if it is missing."""
        held = self.reserve.exists()
        if not self.rule.writable(free_bytes(self.directory), reserve_held=held):
            return False
        if not held and self.rule.reserve_bytes:
            self._make_reserve()
        return True

    def _make_reserve(self) -> None:
        partial = self.reserve.with_name(RESERVE_NAME + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.posix_fallocate(fd, 0, self.rule.reserve_bytes)
            os.fsync(fd)
        except OSError:
            os.close(fd)
            partial.unlink(missing_ok=True)
            raise
        os.close(fd)
        partial.rename(self.reserve)
