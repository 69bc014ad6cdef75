"""The lag bound: from members' own watermarks as heard, and this node's watermarks."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from rumor.node.replication.engine.staleness import Staleness


def marks(known: dict[int, int]) -> Callable[[int], int]:
    return lambda member: known.get(member, 0)


def test_caught_up_with_what_was_heard_lags_at_most_since_then() -> None:
    staleness = Staleness()
    staleness.heard(1, 10, 1000)
    known = {1: 10}
    assert staleness.bound_ms(1500, [1], marks(known)) == 500
    staleness.heard(1, 10, 1400)  # the same state, heard again later
    assert staleness.bound_ms(1500, [1], marks(known)) == 100


def test_behind_what_was_heard_lags_since_the_last_state_covered() -> None:
    staleness = Staleness()
    staleness.heard(1, 10, 1000)
    staleness.heard(1, 20, 2000)
    known = {1: 15}
    assert staleness.bound_ms(2500, [1], marks(known)) == 1500
    known[1] = 20
    assert staleness.bound_ms(2500, [1], marks(known)) == 500


def test_a_member_never_caught_up_with_or_never_heard_makes_the_bound_unknown() -> None:
    staleness = Staleness()
    staleness.heard(1, 10, 1000)
    assert staleness.bound_ms(1500, [1], marks({})) is None
    assert staleness.bound_ms(1500, [2], marks({2: 5})) is None
    assert staleness.bound_ms(1500, [], marks({})) == 0  # no alive member: nothing to lag


def test_the_bound_is_the_worst_member() -> None:
    staleness = Staleness()
    staleness.heard(1, 5, 1000)
    staleness.heard(2, 5, 1800)
    assert staleness.bound_ms(2000, [1, 2], marks({1: 5, 2: 5})) == 1000


@given(
    st.lists(st.tuples(st.integers(1, 5), st.integers(0, 100)), min_size=1, max_size=80),
    st.integers(0, 600),
)
def test_the_bound_is_never_below_the_truth(steps: list[tuple[int, int]], mark: int) -> None:
    """Whatever was heard (seqs that only grow, in time order), the bound is at least the
    time since the latest state this node truly covers."""
    staleness = Staleness()
    seq = 0
    heard: list[tuple[int, int]] = []
    for at, (grow, gap) in enumerate(steps):
        seq += grow - 1
        staleness.heard(1, seq, at * 10 + gap % 10)
        heard.append((seq, at * 10 + gap % 10))
    now = len(steps) * 10 + 100
    covered = [at for s, at in heard if s <= mark]
    bound = staleness.bound_ms(now, [1], marks({1: mark}))
    if not covered:
        assert bound is None
    else:
        assert bound is not None and bound >= now - max(covered)
