"""Record versions and the last-writer-wins rule.

A version is (hlc, origin): the hybrid-logical-clock timestamp of the write and
the random 64-bit id of the node that accepted it. Versions are totally
ordered, the origin breaking ties, so every replica picks the same winner.

The apply rule: a record for a key is kept iff nothing is held for the key or
it outranks what is held. Tombstones are records and obey the same rule. In
the reserved namespace of namespaces a tombstone outranks every live record
(a namespace delete wins over a concurrent rename), so the rank there is
(tombstone, hlc, origin). Ranking by a total order makes the merge
commutative, associative and idempotent: the held record is always the
maximum of everything delivered, in any order, any number of times.
"""

from __future__ import annotations

from typing import NamedTuple


class Version(NamedTuple):
    """(hlc, origin); tuple order is version order."""

    hlc: int
    origin: int


def rank(version: Version, tombstone: bool, *, namespace_record: bool) -> tuple[int, int, int]:
    """The sort key under which the greatest record wins."""
    if namespace_record:
        return (int(tombstone), version.hlc, version.origin)
    return (0, version.hlc, version.origin)


def supersedes(
    new: Version,
    new_tombstone: bool,
    held: Version | None,
    held_tombstone: bool,
    *,
    namespace_record: bool = False,
) -> bool:
    """True iff a record with ``new`` must replace the held one (or fill an empty slot)."""
    if held is None:
        return True
    return rank(new, new_tombstone, namespace_record=namespace_record) > rank(
        held, held_tombstone, namespace_record=namespace_record
    )
