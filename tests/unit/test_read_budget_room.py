"""``ByteBudget.room_for``: how many reads of a size may go unestimated, one after another."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rumor.node.server.admission import ByteBudget


@given(
    capacity=st.integers(1, 10_000),
    in_flight=st.integers(0, 12_000),
    size=st.integers(1, 3_000),
)
def test_room_for_counts_the_reads_admits_would_take_one_after_another(
    capacity: int, in_flight: int, size: int
) -> None:
    budget = ByteBudget(capacity, timeout_s=0)
    budget.in_flight = in_flight
    room = budget.room_for(size)
    held = [budget.hold(size) for _ in range(room) if budget.admits(size)]
    assert len(held) == room  # each read in the run was admitted when it came
    assert not budget.admits(size) or budget.in_flight == 0  # and no more would be
