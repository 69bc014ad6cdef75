"""The upload budget without I/O: room node-wide and per connection, waiting, the clocks."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rumor.node.core.errors import Overloaded, UploadTimedOut
from rumor.node.server.upload_budget import Upload, UploadBudget

CAPACITY = 100
PER_CONNECTION = 60


def _budget(**clocks: float) -> UploadBudget:
    timeouts = {"admission_timeout_s": 0.0, "idle_timeout_s": 60.0, "total_timeout_s": 60.0}
    timeouts.update(clocks)
    return UploadBudget(CAPACITY, PER_CONNECTION, **timeouts)


# One step: (upload index, connection, bytes received) or (upload index, None, 0): it ends.
_steps = st.lists(
    st.tuples(
        st.integers(0, 5),
        st.one_of(st.none(), st.sampled_from(["", "a", "b"])),
        st.integers(0, 80),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(_steps)
def test_room_is_bounded_node_wide_and_per_connection_unless_alone(
    steps: list[tuple[int, str | None, int]],
) -> None:
    async def run() -> None:
        budget = _budget()
        open_uploads: dict[int, Upload] = {}
        stacks: dict[int, contextlib.AsyncExitStack] = {}
        for index, connection, size in steps:
            upload = open_uploads.get(index)
            if connection is None:  # the upload ends (whole, failed or its client gone)
                if upload is not None:
                    await stacks.pop(index).aclose()
                    del open_uploads[index]
                continue
            if upload is None:
                stack = contextlib.AsyncExitStack()
                upload = await stack.enter_async_context(budget.upload(connection))
                open_uploads[index], stacks[index] = upload, stack
            others = budget.in_flight - upload.held
            on_connection = budget.by_connection.get(upload.connection, 0) - upload.held
            fits_node = size == 0 or others == 0 or budget.in_flight + size <= CAPACITY
            fits_connection = (
                size == 0
                or not upload.connection
                or on_connection == 0
                or budget.by_connection.get(upload.connection, 0) + size <= PER_CONNECTION
            )
            held_before = upload.held
            try:
                await upload.received(size, size)
            except Overloaded as refused:
                assert not (fits_node and fits_connection)
                assert "nothing was written" in str(refused)
                assert upload.held == held_before  # a refusal takes nothing
                await stacks.pop(index).aclose()
                del open_uploads[index]
            else:
                assert fits_node and fits_connection
                assert upload.held == held_before + size
            # What is counted is what the open uploads hold, node-wide and per connection.
            assert budget.in_flight == sum(u.held for u in open_uploads.values())
            for name in ("a", "b"):
                held = sum(u.held for u in open_uploads.values() if u.connection == name)
                assert budget.by_connection.get(name, 0) == held
            assert all(held > 0 for held in budget.by_connection.values())
            # Beyond a bound only when one upload holds it all.
            if budget.in_flight > CAPACITY:
                assert sum(1 for u in open_uploads.values() if u.held) == 1
        for stack in stacks.values():
            await stack.aclose()
        assert budget.in_flight == 0 and budget.by_connection == {}

    asyncio.run(run())


async def test_an_upload_waits_for_room_and_is_admitted_when_another_ends() -> None:
    budget = _budget(admission_timeout_s=30.0)
    first_done = asyncio.Event()

    async def first() -> None:
        async with budget.upload("a") as upload:
            await upload.declare(90)
            await first_done.wait()

    holder = asyncio.create_task(first())
    await asyncio.sleep(0)  # let it take its room
    assert budget.in_flight == 90
    async with budget.upload("b") as second:
        waiting = asyncio.create_task(second.declare(50))
        await asyncio.sleep(0)
        assert not waiting.done()  # no room: it waits
        first_done.set()
        await asyncio.wait_for(waiting, 10)
        assert budget.in_flight == 50 and second.held == 50
    await holder
    assert budget.in_flight == 0


async def test_no_room_within_the_admission_timeout_is_refused_with_the_numbers() -> None:
    budget = _budget(admission_timeout_s=0.05)
    async with budget.upload("a") as upload:
        await upload.declare(50)
        async with budget.upload("a") as same_connection:
            with pytest.raises(Overloaded) as refused:
                await same_connection.received(20, 20)
    assert "this connection is sending 50 bytes of uploads to the node (limit 60)" in str(
        refused.value
    )
    assert budget.refused == 1 and budget.in_flight == 0


async def test_an_idle_upload_times_out_and_lets_its_room_go() -> None:
    budget = _budget(idle_timeout_s=0.05)
    with pytest.raises(UploadTimedOut) as timed_out:
        async with budget.upload("a") as upload:
            await upload.received(30, 30)
            await asyncio.Event().wait()  # the client stalls
    assert str(timed_out.value) == (
        "the upload sent nothing for 0.05 s (after 30 bytes); nothing was written"
    )
    assert budget.in_flight == 0 and budget.by_connection == {} and budget.timed_out == 1


async def test_an_upload_that_keeps_sending_is_cut_at_its_total_deadline() -> None:
    budget = _budget(idle_timeout_s=0.5, total_timeout_s=0.2)
    with pytest.raises(UploadTimedOut) as timed_out:
        async with budget.upload() as upload:
            while True:  # a trickle: never idle, never done
                await upload.received(1, 1)
                await asyncio.sleep(0.01)
    assert str(timed_out.value).startswith("the upload was not complete after 0.2 s")
    assert budget.in_flight == 0


async def test_a_client_that_goes_away_frees_its_room_at_once() -> None:
    budget = _budget()
    holding = asyncio.Event()

    async def upload() -> None:
        async with budget.upload("a") as receiving:
            await receiving.received(40, 40)
            holding.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(upload())
    await holding.wait()
    assert budget.in_flight == 40
    task.cancel()  # what grpc and aiohttp do when the client disconnects
    with pytest.raises(asyncio.CancelledError):
        await task
    assert budget.in_flight == 0 and budget.by_connection == {} and budget.timed_out == 0


async def test_bytes_counted_but_not_kept_take_no_room() -> None:
    budget = _budget()
    async with budget.upload() as upload:
        await upload.received(500, 0)  # past a limit: counted for the error, not buffered
        assert upload.total == 500 and budget.in_flight == 0
