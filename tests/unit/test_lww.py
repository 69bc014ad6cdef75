"""The last-writer-wins rule (rumor.node.core.version: ``supersedes`` and ``rank``).

A replica folds delivered records into the one it holds: it applies a record
iff it supersedes what is held. These properties check that this fold is a
join: whatever the records (random versions, tombstones or not, duplicates),
whatever the delivery order and however often each is delivered, every
replica ends up holding the same record — the maximum by rank. So the merge
is commutative, associative and idempotent. In the reserved namespace of
namespaces a tombstone beats every live record whatever its version.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from rumor.node.core.version import Version, rank, supersedes


@dataclass(frozen=True)
class Delivered:
    """A record as the merge sees it: its version, its tombstone flag and a payload."""

    version: Version
    tombstone: bool
    payload: int


def fold(
    held: Delivered | None, deliveries: list[Delivered], *, namespace_record: bool
) -> Delivered | None:
    """Apply each delivered record iff it supersedes the held one."""
    for record in deliveries:
        if supersedes(
            record.version,
            record.tombstone,
            None if held is None else held.version,
            False if held is None else held.tombstone,
            namespace_record=namespace_record,
        ):
            held = record
    return held


def rank_of(record: Delivered, *, namespace_record: bool) -> tuple[int, int, int]:
    return rank(record.version, record.tombstone, namespace_record=namespace_record)


hlcs = st.integers(min_value=0, max_value=(1 << 64) - 1)
small_hlcs = st.integers(min_value=0, max_value=6)  # collide often
origins = st.integers(min_value=0, max_value=(1 << 64) - 1)
small_origins = st.integers(min_value=0, max_value=3)
versions = st.builds(Version, hlcs | small_hlcs, origins | small_origins)


@st.composite
def distinct_records(draw: st.DrawFn) -> list[Delivered]:
    """Records with pairwise distinct versions: one version is one write, one content."""
    chosen = draw(st.lists(versions, min_size=1, max_size=12, unique=True))
    return [
        Delivered(version, draw(st.booleans()), payload) for payload, version in enumerate(chosen)
    ]


@st.composite
def deliveries_of(draw: st.DrawFn, records: list[Delivered]) -> list[Delivered]:
    """Every record at least once, some several times, in any order."""
    extra = draw(st.lists(st.sampled_from(records), max_size=2 * len(records)))
    return draw(st.permutations(records + extra))


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[Delivered], list[Delivered], list[Delivered], bool]:
    records = draw(distinct_records())
    first = draw(deliveries_of(records))
    second = draw(deliveries_of(records))
    return records, first, second, draw(st.booleans())


@settings(max_examples=300)
@given(scenario())
def test_every_delivery_order_ends_with_the_maximum_by_rank(
    case: tuple[list[Delivered], list[Delivered], list[Delivered], bool],
) -> None:
    records, first, second, namespace_record = case
    expected = max(records, key=lambda record: rank_of(record, namespace_record=namespace_record))
    assert fold(None, first, namespace_record=namespace_record) == expected
    assert fold(None, second, namespace_record=namespace_record) == expected


@settings(max_examples=200)
@given(distinct_records(), st.data(), st.booleans())
def test_merge_is_associative_across_replicas(
    records: list[Delivered], data: st.DataObject, namespace_record: bool
) -> None:
    """Splitting deliveries over replicas and then merging their held records changes nothing."""
    deliveries = data.draw(deliveries_of(records))
    cut_one = data.draw(st.integers(0, len(deliveries)))
    cut_two = data.draw(st.integers(cut_one, len(deliveries)))
    parts = [deliveries[:cut_one], deliveries[cut_one:cut_two], deliveries[cut_two:]]
    held_by_part = [fold(None, part, namespace_record=namespace_record) for part in parts]
    # (a + b) + c
    left = fold(
        fold(
            None, [h for h in held_by_part[:2] if h is not None], namespace_record=namespace_record
        ),
        [h for h in held_by_part[2:] if h is not None],
        namespace_record=namespace_record,
    )
    # a + (b + c)
    right_tail = fold(
        None, [h for h in held_by_part[1:] if h is not None], namespace_record=namespace_record
    )
    right = fold(
        held_by_part[0],
        [] if right_tail is None else [right_tail],
        namespace_record=namespace_record,
    )
    whole = fold(None, deliveries, namespace_record=namespace_record)
    assert left == right == whole


@given(distinct_records(), st.booleans())
def test_merge_is_idempotent(records: list[Delivered], namespace_record: bool) -> None:
    once = fold(None, records, namespace_record=namespace_record)
    again = fold(once, records, namespace_record=namespace_record)
    assert again == once
    assert fold(once, [] if once is None else [once], namespace_record=namespace_record) == once


@given(versions, st.booleans(), versions, st.booleans())
def test_merge_of_two_records_is_commutative(
    version_a: Version, tombstone_a: bool, version_b: Version, tombstone_b: bool
) -> None:
    a = Delivered(version_a, tombstone_a, 1)
    b = Delivered(version_b, tombstone_b, 2)
    if version_a == version_b:
        b = Delivered(version_a, tombstone_a, 1)  # same version: same write
    for namespace_record in (False, True):
        assert fold(None, [a, b], namespace_record=namespace_record) == fold(
            None, [b, a], namespace_record=namespace_record
        )


# ---- the pairwise rule -------------------------------------------------------


@given(versions, st.booleans(), st.booleans())
def test_anything_fills_an_empty_slot(
    version: Version, tombstone: bool, namespace_record: bool
) -> None:
    assert supersedes(version, tombstone, None, False, namespace_record=namespace_record)
    assert supersedes(version, tombstone, None, True, namespace_record=namespace_record)


@given(versions, st.booleans(), st.booleans())
def test_same_version_never_replaces(version: Version, new: bool, held: bool) -> None:
    """Outside the namespace of namespaces, a version tie is never broken by the flags."""
    assert not supersedes(version, new, version, held)
    assert not supersedes(version, new, version, held, namespace_record=False)


@given(versions, st.booleans())
def test_same_record_never_replaces_itself_in_the_namespace_of_namespaces(
    version: Version, tombstone: bool
) -> None:
    assert not supersedes(version, tombstone, version, tombstone, namespace_record=True)


@given(versions, st.booleans(), versions, st.booleans())
def test_data_records_follow_the_version_order_alone(
    new: Version, new_tombstone: bool, held: Version, held_tombstone: bool
) -> None:
    assert supersedes(new, new_tombstone, held, held_tombstone) == (new > held)


@given(versions, st.booleans(), versions, st.booleans(), st.booleans())
def test_supersedes_is_antisymmetric(
    a: Version, a_tombstone: bool, b: Version, b_tombstone: bool, namespace_record: bool
) -> None:
    assert not (
        supersedes(a, a_tombstone, b, b_tombstone, namespace_record=namespace_record)
        and supersedes(b, b_tombstone, a, a_tombstone, namespace_record=namespace_record)
    )


def test_origin_breaks_a_tie_between_equal_hlcs() -> None:
    assert supersedes(Version(100, 2), False, Version(100, 1), False)
    assert not supersedes(Version(100, 1), False, Version(100, 2), False)


def test_hlc_outranks_origin() -> None:
    assert supersedes(Version(101, 0), False, Version(100, 1 << 63), False)


def test_a_newer_live_record_beats_an_older_tombstone_for_data() -> None:
    assert supersedes(Version(200, 1), False, Version(100, 1), True)
    assert not supersedes(Version(100, 1), True, Version(200, 1), False)


@given(versions, versions)
def test_namespace_tombstone_beats_any_live_namespace_record(
    tombstone_version: Version, live_version: Version
) -> None:
    assert supersedes(tombstone_version, True, live_version, False, namespace_record=True)
    assert not supersedes(live_version, False, tombstone_version, True, namespace_record=True)


@given(versions, versions)
def test_namespace_records_of_the_same_kind_follow_the_version_order(
    a: Version, b: Version
) -> None:
    for tombstone in (False, True):
        assert supersedes(a, tombstone, b, tombstone, namespace_record=True) == (a > b)


def test_namespace_tombstone_wins_over_a_concurrent_newer_rename() -> None:
    deleted = Delivered(Version(100, 1), True, 1)
    renamed = Delivered(Version(900, 2), False, 2)
    assert fold(None, [deleted, renamed], namespace_record=True) == deleted
    assert fold(None, [renamed, deleted], namespace_record=True) == deleted
    assert fold(None, [deleted, renamed], namespace_record=False) == renamed


@given(versions, st.booleans())
def test_rank_ignores_the_tombstone_outside_the_namespace_of_namespaces(
    version: Version, tombstone: bool
) -> None:
    assert rank(version, tombstone, namespace_record=False) == (0, version.hlc, version.origin)
    assert rank(version, tombstone, namespace_record=True) == (
        int(tombstone),
        version.hlc,
        version.origin,
    )
