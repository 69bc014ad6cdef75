"""Safe-GC arithmetic (rumor.node.core.gc): the stable vector and the purge rule.

The stable vector is the componentwise minimum of the members' watermark
vectors, an origin missing from a vector counting as 0 (a member that has
seen nothing of an origin blocks purging that origin's records). A record
(origin, seq) is purgeable iff seq <= stable[origin].
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rumor.node.core.gc import PurgeRule, stable_vector

origins = st.integers(min_value=0, max_value=(1 << 64) - 1) | st.integers(0, 5)
marks = st.integers(min_value=0, max_value=(1 << 64) - 1) | st.integers(0, 20)
vectors = st.dictionaries(origins, marks, max_size=6)


def test_no_vectors_give_an_empty_stable_vector() -> None:
    assert stable_vector([]) == {}


def test_a_single_vector_is_its_own_stable_vector() -> None:
    assert stable_vector([{1: 5, 2: 9}]) == {1: 5, 2: 9}


def test_stable_vector_takes_the_minimum_per_origin() -> None:
    assert stable_vector([{1: 5, 2: 9}, {1: 7, 2: 3}]) == {1: 5, 2: 3}


def test_an_origin_missing_from_one_vector_is_zero() -> None:
    assert stable_vector([{1: 5, 2: 9}, {1: 7}]) == {1: 5, 2: 0}


def test_an_empty_vector_blocks_every_origin() -> None:
    assert stable_vector([{1: 5, 2: 9}, {}]) == {1: 0, 2: 0}


def test_stable_vector_accepts_a_generator_and_does_not_modify_inputs() -> None:
    first = {1: 5}
    second = {1: 3, 2: 4}
    assert stable_vector(vector for vector in (first, second)) == {1: 3, 2: 0}
    assert first == {1: 5}
    assert second == {1: 3, 2: 4}


@given(st.lists(vectors, min_size=1, max_size=6))
def test_stable_vector_is_the_componentwise_minimum(members: list[dict[int, int]]) -> None:
    stable = stable_vector(members)
    every_origin = {origin for vector in members for origin in vector}
    assert set(stable) == every_origin
    for origin in every_origin:
        assert stable[origin] == min(vector.get(origin, 0) for vector in members)
        assert all(stable[origin] <= vector.get(origin, 0) for vector in members)


@given(
    st.lists(vectors, min_size=1, max_size=6).flatmap(
        lambda m: st.tuples(st.just(m), st.permutations(m))
    )
)
def test_stable_vector_ignores_member_order(
    members_and_shuffled: tuple[list[dict[int, int]], list[dict[int, int]]],
) -> None:
    members, shuffled = members_and_shuffled
    assert stable_vector(shuffled) == stable_vector(members)


@given(st.lists(vectors, min_size=1, max_size=5), vectors)
def test_adding_a_member_never_raises_the_stable_vector(
    members: list[dict[int, int]], newcomer: dict[int, int]
) -> None:
    before = stable_vector(members)
    after = stable_vector([*members, newcomer])
    for origin, mark in before.items():
        assert after[origin] <= mark


# ---- purge rule ---------------------------------------------------------------


def test_new_purge_rule_purges_nothing() -> None:
    rule = PurgeRule()
    assert not rule.purgeable(1, 1)
    assert not rule.purgeable(12345, 1)


def test_purgeable_up_to_and_including_the_stable_mark() -> None:
    rule = PurgeRule()
    rule.update([{7: 10}, {7: 12, 8: 3}])
    assert rule.stable == {7: 10, 8: 0}
    assert rule.purgeable(7, 1)
    assert rule.purgeable(7, 10)
    assert not rule.purgeable(7, 11)
    assert not rule.purgeable(8, 1)
    assert not rule.purgeable(9, 1)


def test_update_replaces_the_previous_stable_vector() -> None:
    rule = PurgeRule()
    rule.update([{7: 10}])
    assert rule.purgeable(7, 10)
    rule.update([{7: 10}, {7: 2}])  # a member that has seen less joins
    assert not rule.purgeable(7, 10)
    assert rule.purgeable(7, 2)


def test_single_member_purges_all_its_durable_records() -> None:
    rule = PurgeRule()
    rule.update([{42: 1000}])
    assert all(rule.purgeable(42, seq) for seq in range(1, 1001))
    assert not rule.purgeable(42, 1001)


@given(st.lists(vectors, min_size=1, max_size=6), origins, marks)
def test_purgeable_iff_every_member_has_seen_the_record(
    members: list[dict[int, int]], origin: int, seq: int
) -> None:
    rule = PurgeRule()
    rule.update(members)
    seen_everywhere = all(seq <= vector.get(origin, 0) for vector in members)
    assert rule.purgeable(origin, seq) == seen_everywhere
