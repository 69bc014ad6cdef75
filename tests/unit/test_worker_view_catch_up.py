"""A worker view's catch-ups, and what the owner publishes for them.

``CatchUps``: a read whose seq the view already holds waits for nothing;
reads waiting together share one catch-up; a read that needs more than the
catch-up under way covers waits for the next one, which covers what is
published when it starts; a failed catch-up fails the reads that waited and
the next read tries again. ``OwnerStatePublisher``/``OwnerStateView``: what
the owner writes is what a worker reads, the seq only grows, and the lag bound
ages with the time since it was computed (not when the node has no member).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rumor.node.server.workers.catch_up import CatchUps
from rumor.node.server.workers.owner_state import (
    OwnerState,
    OwnerStatePublisher,
    OwnerStateView,
    monotonic_ms,
)


class Primary:
    """The owner's published seq and a catch-up the test lets finish."""

    def __init__(self) -> None:
        self.published = 0
        self.seen_at_start: list[int] = []  # the published seq when each catch-up began
        self.gates: list[asyncio.Event] = []
        self.fail_next = False

    async def catch_up(self) -> None:
        self.seen_at_start.append(self.published)
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise OSError("the primary's files went away")

    def release(self) -> None:
        self.gates[-1].set()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_read_the_view_already_covers_waits_for_no_catch_up() -> None:
    primary = Primary()
    catch_ups = CatchUps(primary.catch_up, lambda: primary.published, reached=7)
    await catch_ups.reach(7)
    await catch_ups.reach(3)
    assert primary.seen_at_start == []
    assert catch_ups.count == 0


async def test_reads_waiting_together_share_one_catch_up() -> None:
    primary = Primary()
    catch_ups = CatchUps(primary.catch_up, lambda: primary.published, reached=0)
    primary.published = 5
    reads = [asyncio.create_task(catch_ups.reach(5)) for _ in range(10)]
    await _settle()
    assert len(primary.seen_at_start) == 1
    primary.release()
    await asyncio.gather(*reads)
    assert catch_ups.count == 1
    assert catch_ups.reached == 5


async def test_a_read_needing_more_than_the_catch_up_under_way_waits_for_the_next() -> None:
    primary = Primary()
    catch_ups = CatchUps(primary.catch_up, lambda: primary.published, reached=0)
    primary.published = 5
    first = asyncio.create_task(catch_ups.reach(5))
    await _settle()
    primary.published = 9  # acknowledged while the first catch-up runs
    later = [asyncio.create_task(catch_ups.reach(9)) for _ in range(3)]
    again = asyncio.create_task(catch_ups.reach(5))  # covered by the one under way
    await _settle()
    primary.release()
    await asyncio.gather(first, again)
    assert not any(read.done() for read in later)
    await _settle()
    assert primary.seen_at_start == [5, 9]  # one more, shared by the three
    primary.release()
    await asyncio.gather(*later)
    assert catch_ups.reached == 9
    assert catch_ups.count == 2


async def test_the_next_catch_up_covers_what_is_published_when_it_starts() -> None:
    primary = Primary()
    catch_ups = CatchUps(primary.catch_up, lambda: primary.published, reached=0)
    primary.published = 4
    read = asyncio.create_task(catch_ups.reach(4))
    await _settle()
    primary.published = 12
    primary.release()
    await read
    assert catch_ups.reached == 4  # 12 came after that catch-up began
    read = asyncio.create_task(catch_ups.reach(6))
    await _settle()
    primary.release()
    await read
    assert catch_ups.reached == 12


async def test_a_failed_catch_up_fails_its_reads_and_the_next_read_tries_again() -> None:
    primary = Primary()
    catch_ups = CatchUps(primary.catch_up, lambda: primary.published, reached=0)
    primary.published = 3
    primary.fail_next = True
    reads = [asyncio.create_task(catch_ups.reach(3)) for _ in range(2)]
    await _settle()
    primary.release()
    for read in reads:
        with pytest.raises(OSError):
            await read
    assert catch_ups.reached == 0
    retry = asyncio.create_task(catch_ups.reach(3))
    await _settle()
    primary.release()
    await retry
    assert catch_ups.reached == 3


def test_what_the_owner_publishes_a_worker_reads(tmp_path: Path) -> None:
    publisher = OwnerStatePublisher(str(tmp_path))
    view = OwnerStateView(str(tmp_path))
    try:
        assert view.snapshot().acknowledged_seq == 0
        assert view.snapshot().lag_bound_at(monotonic_ms()) is None  # nothing known yet
        publisher.acknowledging(41)
        assert view.snapshot().acknowledged_seq == 41
        # An older seq never goes back.
        publisher.publish(40, 120, monotonic_ms(), refused=True, ages=True)
        state = view.snapshot()
        assert state.acknowledged_seq == 41
        assert state.reads_refused
        assert state.lag_bound_ms == 120
        publisher.publish(50, None, monotonic_ms(), refused=False, ages=True)
        state = view.snapshot()
        assert (state.acknowledged_seq, state.reads_refused) == (50, False)
        assert state.lag_bound_at(monotonic_ms()) is None
    finally:
        view.close()
        publisher.close()
    assert (tmp_path / "owner-state").stat().st_mode & 0o777 == 0o600
    publisher.acknowledging(60)  # a write acknowledged while the node stops: nothing to tell


def test_a_lag_bound_ages_from_when_it_was_computed_unless_there_is_no_member() -> None:
    computed = OwnerState(9, 30, lag_at_ms=1_000, reads_refused=False, lag_ages=True)
    assert computed.lag_bound_at(1_000) == 30
    assert computed.lag_bound_at(1_250) == 280
    alone = OwnerState(9, 0, lag_at_ms=1_000, reads_refused=False, lag_ages=False)
    assert alone.lag_bound_at(9_000) == 0
