"""When a tombstone or an expired record may be purged without resurrection.

A purged record leaves no trace, so if an older version of its key arrived
afterwards it would be applied and the key would come back. A record (o, s)
is *stable* once every member that is not removed has seen it: s <= C[o],
where C is the componentwise minimum of the members' watermark vectors (a
member whose vector is unknown counts as all zeros, so a silent member
blocks GC — the price of never resurrecting).

With a single member, the vector is the node's own durable watermarks, so
every durable record is stable at once: a single node purges immediately.
With several, stability is not enough: ``SafeGc`` adds the second phase.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rumor.node.core.watermarks import dominates, origins


def stable_vector(vectors: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """The componentwise minimum of watermark vectors (a missing origin is 0)."""
    vectors = list(vectors)
    if not vectors:
        return {}
    return {origin: min(vector.get(origin, 0) for vector in vectors) for origin in origins(vectors)}


@dataclass(slots=True)
class PurgeRule:
    """Answers "may (origin, seq) be purged?" from the members' watermark vectors."""

    stable: dict[int, int] = field(default_factory=dict)

    def update(self, vectors: Iterable[Mapping[int, int]]) -> None:
        self.stable = stable_vector(vectors)

    def purgeable(self, origin: int, seq: int) -> bool:
        return seq <= self.stable.get(origin, 0)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Phase 1 at time ``at_ms``: what was stable (C), each member's own mark (S), who."""

    stable: dict[int, int]
    own: dict[int, int]
    at_ms: int
    members: frozenset[int]


@dataclass(slots=True)
class SafeGc:
    """The two-phase rule that feeds ``PurgeRule``.

    1. Stable: C = the componentwise minimum of the vectors of every member that
       is not removed (unknown vector: zeros). Note S = {m: vector_m[m]} and t.
    2. Safe: C may be used for purging once every member's vector dominates S
       (every write its origin made before covering those records has been seen
       everywhere, so an older version arriving later is dropped unread), at
       least ``grace_ms`` after t, and no member joined since t.

    A node alone (no other member, ever counted) has nothing that could deliver
    an older version, so its own vector is safe at once.
    """

    grace_ms: int
    checkpoint_every_ms: int = 1000
    max_checkpoints: int = 64
    rule: PurgeRule = field(default_factory=PurgeRule)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    in_force: frozenset[int] = frozenset()  # the members the rule in force was decided for

    def update(
        self,
        vectors: Mapping[int, Mapping[int, int]],
        now_ms: int,
        issued: Mapping[int, int] | None = None,
    ) -> None:
        """``issued``: each member's own seq as it last said it had issued (durable or
        not): S. Without it, S is each member's own watermark, which lags its writes
        in flight — a write issued before its origin covered a tombstone but made
        durable only after the checkpoint would escape phase 2."""
        members = frozenset(vectors)
        stable = stable_vector(vectors.values())
        if len(members) <= 1:
            self.rule.stable = stable
            self.in_force = members
            self.checkpoints.clear()
            return
        if not members <= self.in_force:
            # Someone joined since the rule in force was decided: it no longer holds.
            self.rule.stable = {}
            self.in_force = frozenset()
        if not self.checkpoints or now_ms - self.checkpoints[-1].at_ms >= self.checkpoint_every_ms:
            own = {
                member: max(vectors[member].get(member, 0), (issued or {}).get(member, 0))
                for member in members
            }
            self.checkpoints.append(Checkpoint(stable, own, now_ms, members))
            del self.checkpoints[: -self.max_checkpoints]
        safe_index = -1
        for index, checkpoint in enumerate(self.checkpoints):
            if now_ms < checkpoint.at_ms + self.grace_ms:
                break
            if not members <= checkpoint.members:
                continue
            if all(dominates(vectors[m], checkpoint.own) for m in members):
                safe_index = index
        if safe_index >= 0:
            self.rule.stable = self.checkpoints[safe_index].stable
            self.in_force = self.checkpoints[safe_index].members
            del self.checkpoints[:safe_index]
