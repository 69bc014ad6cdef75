"""Watermarks (rumor.node.core.watermarks): which (origin, seq) pairs a node has seen.

Properties, checked against a model that is simply the set of seqs marked or
covered per origin:

- with ranges large enough never to be dropped, ``seen(o, s)`` is True exactly
  for the seqs marked or covered, ``wm[o]`` is the largest n such that 1..n
  are all seen, and the seen ranges hold exactly the seen seqs above it;
- the watermark never decreases;
- the ranges stay sorted, disjoint, non-adjacent and strictly above wm + 1;
- the order of marks does not matter;
- with a small ``max_ranges``, dropping ranges only forgets: ``seen`` never
  claims a seq that was not marked or covered, and a cover is never forgotten;
- ``pack_ranges`` / ``load_ranges`` round-trip.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rumor.node.core.watermarks import Watermarks, dominates, origins

ORIGINS = (7, 1 << 63, (1 << 64) - 1)
MAX_SEQ = 60
PROBE_LIMIT = MAX_SEQ + 5
UNBOUNDED_RANGES = 10_000

Operation = tuple[str, int, int]

operations = st.lists(
    st.tuples(
        st.sampled_from(["mark", "mark", "mark", "cover"]),
        st.sampled_from(ORIGINS),
        st.integers(min_value=1, max_value=MAX_SEQ),
    ),
    max_size=80,
)


def apply(watermarks: Watermarks, operation: Operation) -> None:
    kind, origin, seq = operation
    if kind == "mark":
        watermarks.mark(origin, seq)
    else:
        watermarks.cover(origin, seq)


def model_apply(model: dict[int, set[int]], operation: Operation) -> None:
    kind, origin, seq = operation
    seen = model.setdefault(origin, set())
    if kind == "mark":
        seen.add(seq)
    else:
        seen.update(range(1, seq + 1))


def contiguous_prefix(seen: set[int]) -> int:
    """The largest n such that 1..n are all in ``seen``."""
    n = 0
    while n + 1 in seen:
        n += 1
    return n


def assert_ranges_well_formed(watermarks: Watermarks) -> None:
    for origin, spans in watermarks.ranges.items():
        mark = watermarks.get(origin)
        previous_end: int | None = None
        for start, end in spans:
            assert start <= end, spans
            assert start > mark + 1, (mark, spans)  # never touching the watermark
            if previous_end is not None:
                assert start > previous_end + 1, spans  # sorted, disjoint, non-adjacent
            previous_end = end
        assert len(spans) <= watermarks.max_ranges


def range_members(watermarks: Watermarks, origin: int) -> set[int]:
    return {
        seq for start, end in watermarks.ranges.get(origin, []) for seq in range(start, end + 1)
    }


# ---- examples ---------------------------------------------------------------------------


def test_empty_watermarks_have_seen_nothing() -> None:
    watermarks = Watermarks()
    assert watermarks.get(7) == 0
    assert not watermarks.seen(7, 1)
    assert watermarks.vector() == {}


def test_marking_the_next_seq_advances_the_watermark() -> None:
    watermarks = Watermarks()
    for seq in range(1, 4):
        watermarks.mark(7, seq)
    assert watermarks.get(7) == 3
    assert watermarks.ranges.get(7, []) == []
    assert watermarks.seen(7, 3)
    assert not watermarks.seen(7, 4)


def test_a_gap_is_remembered_as_a_range_and_filling_it_swallows_the_range() -> None:
    watermarks = Watermarks()
    watermarks.mark(7, 1)
    watermarks.mark(7, 3)
    watermarks.mark(7, 4)
    watermarks.mark(7, 6)
    assert watermarks.get(7) == 1
    assert watermarks.ranges[7] == [(3, 4), (6, 6)]
    assert not watermarks.seen(7, 2)
    assert not watermarks.seen(7, 5)
    watermarks.mark(7, 2)
    assert watermarks.get(7) == 4
    assert watermarks.ranges[7] == [(6, 6)]
    watermarks.mark(7, 5)
    assert watermarks.get(7) == 6
    assert 7 not in watermarks.ranges


def test_a_mark_between_two_ranges_joins_them() -> None:
    watermarks = Watermarks()
    watermarks.mark(7, 3)
    watermarks.mark(7, 5)
    watermarks.mark(7, 4)
    assert watermarks.ranges[7] == [(3, 5)]
    assert watermarks.get(7) == 0


def test_cover_raises_the_watermark_and_swallows_touching_ranges() -> None:
    watermarks = Watermarks()
    watermarks.mark(7, 5)
    watermarks.mark(7, 6)
    watermarks.mark(7, 9)
    watermarks.cover(7, 4)
    assert watermarks.get(7) == 6
    assert watermarks.ranges[7] == [(9, 9)]
    watermarks.cover(7, 2)  # lower: no effect
    assert watermarks.get(7) == 6
    watermarks.cover(7, 20)
    assert watermarks.get(7) == 20
    assert 7 not in watermarks.ranges


def test_origins_are_independent() -> None:
    watermarks = Watermarks()
    watermarks.cover(1, 10)
    watermarks.mark(2, 3)
    assert watermarks.seen(1, 10)
    assert not watermarks.seen(2, 1)
    assert watermarks.seen(2, 3)
    assert not watermarks.seen(3, 1)
    assert watermarks.vector() == {1: 10}


def test_dominates_compares_every_origin_of_the_other_vector() -> None:
    watermarks = Watermarks()
    watermarks.cover(1, 5)
    watermarks.cover(2, 3)
    assert watermarks.dominates({1: 5, 2: 3})
    assert watermarks.dominates({1: 4})
    assert watermarks.dominates({})
    assert not watermarks.dominates({1: 6})
    assert not watermarks.dominates({3: 1})
    assert watermarks.dominates({3: 0})
    assert dominates({1: 5}, {1: 5, 2: 0})
    assert not dominates({1: 5}, {2: 1})
    assert origins([{1: 1}, {2: 2, 3: 0}, {}]) == {1, 2, 3}


def test_the_highest_ranges_are_forgotten_first() -> None:
    watermarks = Watermarks(max_ranges=2)
    for seq in (10, 20, 30):
        watermarks.mark(7, seq)
    assert watermarks.ranges[7] == [(10, 10), (20, 20)]
    watermarks.mark(7, 5)
    assert watermarks.ranges[7] == [(5, 5), (10, 10)]
    assert not watermarks.seen(7, 20)
    assert not watermarks.seen(7, 30)


# ---- properties ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(operations)
def test_seen_is_exactly_what_was_marked_or_covered(steps: list[Operation]) -> None:
    watermarks = Watermarks(max_ranges=UNBOUNDED_RANGES)
    model: dict[int, set[int]] = {}
    previous = {origin: 0 for origin in ORIGINS}
    for step in steps:
        apply(watermarks, step)
        model_apply(model, step)
        for origin in ORIGINS:
            seen = model.get(origin, set())
            mark = watermarks.get(origin)
            assert mark >= previous[origin], "the watermark went down"
            previous[origin] = mark
            assert mark == contiguous_prefix(seen)
            assert range_members(watermarks, origin) == {seq for seq in seen if seq > mark}
            for seq in range(1, PROBE_LIMIT):
                assert watermarks.seen(origin, seq) == (seq in seen), (origin, seq)
        assert_ranges_well_formed(watermarks)
    assert watermarks.vector() == {
        origin: contiguous_prefix(seen)
        for origin, seen in model.items()
        if contiguous_prefix(seen) > 0
    }


@settings(max_examples=100, deadline=None)
@given(
    st.sets(st.integers(min_value=1, max_value=MAX_SEQ), max_size=40).flatmap(
        lambda seqs: st.tuples(st.just(sorted(seqs)), st.permutations(sorted(seqs)))
    )
)
def test_marks_in_any_order_give_the_same_state(orders: tuple[list[int], list[int]]) -> None:
    in_order, shuffled = orders
    first = Watermarks(max_ranges=UNBOUNDED_RANGES)
    second = Watermarks(max_ranges=UNBOUNDED_RANGES)
    for seq in in_order:
        first.mark(7, seq)
    for seq in shuffled:
        second.mark(7, seq)
    assert first.get(7) == second.get(7)
    assert first.ranges.get(7, []) == second.ranges.get(7, [])


@settings(max_examples=200, deadline=None)
@given(operations, st.integers(min_value=0, max_value=3))
def test_dropping_ranges_only_forgets(steps: list[Operation], max_ranges: int) -> None:
    watermarks = Watermarks(max_ranges=max_ranges)
    model: dict[int, set[int]] = {}
    covered = {origin: 0 for origin in ORIGINS}
    previous = {origin: 0 for origin in ORIGINS}
    for step in steps:
        apply(watermarks, step)
        model_apply(model, step)
        kind, origin, seq = step
        if kind == "cover":
            covered[origin] = max(covered[origin], seq)
        for probe_origin in ORIGINS:
            seen = model.get(probe_origin, set())
            mark = watermarks.get(probe_origin)
            assert mark >= previous[probe_origin], "the watermark went down"
            previous[probe_origin] = mark
            assert mark >= covered[probe_origin], "a cover was forgotten"
            assert mark <= contiguous_prefix(seen)
            for probe in range(1, PROBE_LIMIT):
                if watermarks.seen(probe_origin, probe):
                    assert probe in seen, f"claims ({probe_origin}, {probe}) never marked"
        assert_ranges_well_formed(watermarks)


@settings(max_examples=100, deadline=None)
@given(operations)
def test_pack_and_load_ranges_round_trip(steps: list[Operation]) -> None:
    watermarks = Watermarks(max_ranges=UNBOUNDED_RANGES)
    for step in steps:
        apply(watermarks, step)
    restored = Watermarks(marks=dict(watermarks.marks), max_ranges=UNBOUNDED_RANGES)
    for origin in ORIGINS:
        packed = watermarks.pack_ranges(origin)
        assert len(packed) == 16 * len(watermarks.ranges.get(origin, []))
        restored.load_ranges(origin, packed)
        assert restored.pack_ranges(origin) == packed
        assert restored.ranges.get(origin, []) == watermarks.ranges.get(origin, [])
        for seq in range(1, PROBE_LIMIT):
            assert restored.seen(origin, seq) == watermarks.seen(origin, seq)


def test_load_ranges_of_nothing_adds_no_origin() -> None:
    watermarks = Watermarks()
    watermarks.load_ranges(7, b"")
    assert watermarks.ranges == {}
    assert watermarks.pack_ranges(7) == b""
