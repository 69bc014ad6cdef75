"""The hybrid logical clock: monotonic, packed 48+16 bits, overflow carries into ms."""

from hypothesis import given
from hypothesis import strategies as st

from rumor.node.core.hlc import COUNTER_MASK, HybridClock, counter_of, pack, ticks, wall_ms_of

wall = st.integers(min_value=0, max_value=(1 << 47))
events = st.lists(
    st.tuples(st.sampled_from(["tick", "merge"]), wall, st.integers(0, (1 << 63) - 1)),
    max_size=200,
)


def test_pack_and_unpack() -> None:
    stamp = pack(1_700_000_000_123, 7)
    assert wall_ms_of(stamp) == 1_700_000_000_123
    assert counter_of(stamp) == 7


def test_tick_uses_the_wall_clock_when_it_moves_forward() -> None:
    clock = HybridClock()
    assert clock.tick(1000) == pack(1000, 0)
    assert clock.tick(1000) == pack(1000, 1)
    assert clock.tick(2000) == pack(2000, 0)


def test_tick_never_goes_back_with_the_wall_clock() -> None:
    clock = HybridClock()
    first = clock.tick(5000)
    assert clock.tick(4000) == first + 1


def test_counter_overflow_advances_the_milliseconds() -> None:
    clock = HybridClock(pack(1000, COUNTER_MASK))
    stamp = clock.tick(1000)
    assert wall_ms_of(stamp) == 1001
    assert counter_of(stamp) == 0


def test_merge_moves_past_a_remote_clock_ahead() -> None:
    clock = HybridClock()
    clock.tick(1000)
    remote = pack(9000, 3)
    assert clock.merge(remote, 1000) == remote + 1
    assert clock.tick(1000) > remote


@given(events)
def test_every_timestamp_issued_is_greater_than_everything_seen(
    steps: list[tuple[str, int, int]],
) -> None:
    clock = HybridClock()
    high = 0
    for kind, wall_ms, remote in steps:
        stamp = clock.tick(wall_ms) if kind == "tick" else clock.merge(remote, wall_ms)
        assert stamp > high
        assert stamp >= pack(wall_ms, 0)
        if kind == "merge":
            assert stamp > remote
            high = max(high, remote)
        high = max(high, stamp)


@given(st.integers(0, (1 << 62)), wall, st.integers(0, 50))
def test_ticks_are_the_timestamps_a_clock_would_issue(last: int, wall_ms: int, count: int) -> None:
    clock = HybridClock(last)
    assert list(ticks(last, wall_ms, count)) == [clock.tick(wall_ms) for _ in range(count)]
