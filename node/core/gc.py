"""When a tombstone or an expired record may be purged without resurrection.

A purged record leaves no trace, so if an older version of its key arrived
afterwards it would be applied and the key would come back. A record (o, s)
is *stable* once every member that is not removed has seen it: s <= C[o],
where C is the componentwise minimum of the members' watermark vectors (a
member whose vector is unknown counts as all zeros, so a silent member
blocks GC — the price of never resurrecting).

With a single member, the vector is the node's own durable watermarks, so
every durable record is stable at once: a single node purges immediately.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


def stable_vector(vectors: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """The componentwise minimum of watermark vectors (a missing origin is 0)."""
    vectors = list(vectors)
    if not vectors:
        return {}
    origins = set().union(*(vector.keys() for vector in vectors))
    return {origin: min(vector.get(origin, 0) for vector in vectors) for origin in origins}


@dataclass(slots=True)
class PurgeRule:
    """Answers "may (origin, seq) be purged?" from the members' watermark vectors."""

    stable: dict[int, int] = field(default_factory=dict)

    def update(self, vectors: Iterable[Mapping[int, int]]) -> None:
        self.stable = stable_vector(vectors)

    def purgeable(self, origin: int, seq: int) -> bool:
        return seq <= self.stable.get(origin, 0)
