"""The disk guard on an ordinary temporary directory: the reserve, the full state, the
probe (free space faked, so no root and no full disk are needed; the loop-mounted
file system of tests/integration/test_full_disk.py is the real thing)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rumor.node.core.disk_space import MIB, DiskSpaceRule
from rumor.node.core.errors import InsufficientStorage
from rumor.node.server.driver import disk_space
from rumor.node.server.driver.disk_space import RESERVE_NAME, DiskGuard, before_open
from rumor.node.storage.memory import MemoryStore
from rumor.node.storage.store import META, Batch


class FlakyStore(MemoryStore):
    """A store whose writes fail for lack of space while ``refusing``."""

    def __init__(self) -> None:
        super().__init__()
        self.out_of_space = False
        self.refusing = False

    def write(self, batch: Batch) -> None:
        if self.refusing:
            self.out_of_space = True
            raise InsufficientStorage()
        super().write(batch)
        self.out_of_space = False


@pytest.fixture
def free(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The free bytes the guard sees (settable)."""
    seen = [1 << 40]
    monkeypatch.setattr(disk_space, "free_bytes", lambda directory: seen[0])
    return seen


def test_a_node_with_room_makes_its_reserve_and_releases_it_when_a_write_fails(
    tmp_path: Path, free: list[int]
) -> None:
    store = FlakyStore()
    guard = DiskGuard(tmp_path, DiskSpaceRule(2 * MIB), store)
    guard.start()
    reserve = tmp_path / RESERVE_NAME
    assert not guard.full and reserve.stat().st_size == 2 * MIB
    assert reserve.stat().st_blocks * 512 >= 2 * MIB  # allocated, not a sparse file
    guard.no_space()
    assert guard.full and guard.reason.startswith("disk full")
    assert not reserve.exists()


def test_a_full_node_takes_writes_again_only_with_room_and_a_passing_trial_write(
    tmp_path: Path, free: list[int]
) -> None:
    store = FlakyStore()
    rule = DiskSpaceRule(2 * MIB)
    guard = DiskGuard(tmp_path, rule, store)
    guard.no_space()
    free[0] = rule.resume_bytes - 1
    assert not guard._writable_again()
    assert not (tmp_path / RESERVE_NAME).exists()  # no room: not made
    free[0] = rule.resume_bytes
    store.refusing = True  # RocksDB has not recovered yet
    assert not guard._writable_again()
    store.refusing = False
    assert guard._writable_again()
    assert (tmp_path / RESERVE_NAME).stat().st_size == 2 * MIB
    assert store.get(META, b"disk-trial-write") is not None


def test_the_watch_notices_a_failed_write_and_the_space_coming_back(
    tmp_path: Path, free: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(disk_space, "PROBE_S", 0.01)
    store = FlakyStore()
    rule = DiskSpaceRule(MIB)
    guard = DiskGuard(tmp_path, rule, store)
    guard.start()

    async def run() -> None:
        watch = asyncio.create_task(guard.watch())
        try:
            store.refusing, free[0] = True, 0
            with pytest.raises(InsufficientStorage):
                store.write(store.batch())
            await until(lambda: guard.full)
            assert not (tmp_path / RESERVE_NAME).exists()
            await until(lambda: guard.probes >= 3)
            assert guard.full  # no room: it stays full, probing
            store.refusing, free[0] = False, rule.resume_bytes
            await until(lambda: not guard.full)
        finally:
            watch.cancel()
            await guard.stop()

    asyncio.run(run())


def test_before_open_releases_the_reserve_only_without_room_to_open(
    tmp_path: Path, free: list[int]
) -> None:
    rule = DiskSpaceRule(4 * MIB)
    reserve = tmp_path / RESERVE_NAME
    reserve.write_bytes(b"\0" * 1024)
    free[0] = rule.open_bytes
    assert not before_open(tmp_path, rule) and reserve.exists()
    free[0] = rule.open_bytes - 1
    assert before_open(tmp_path, rule) and not reserve.exists()
    assert not before_open(tmp_path, rule)  # nothing left to release


async def until(condition: object, timeout_s: float = 10.0) -> None:
    assert callable(condition)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
