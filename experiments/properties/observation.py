"""The observer-neutral shape every property is judged on.

An observer (the lab's history of real nodes, the simulator's cluster)
reduces what it saw to: the nodes, every write clients issued, what each
node holds at the end, and whatever else it knows existed. Rules:

- a version is ``(hlc, origin)`` and compares as a tuple; greater wins;
- an expiration is absolute wall-clock seconds (``None``: never), judged at
  ``Observation.now_s``, when the final state was read;
- a write is ``acknowledged`` when the client was told it happened *and*
  the observer holds the store to it; any other write may or may not have
  happened, and its version may be unknown (``None``: any version);
- ``seen`` holds records known to have existed on some node besides the
  final state (Watch events, other nodes' holdings): evidence that garbage
  collection may have purged them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Version = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Write:
    """A write a client issued: a put (``deleted`` False) or a delete."""

    key: str
    version: Version | None  # None: not known (the client got no answer)
    deleted: bool
    expiration: float | None
    acknowledged: bool
    index: int = 0  # its place in the observer's own record, to name it in messages


@dataclass(frozen=True, slots=True)
class Record:
    """A version of a key as a node holds it (tombstones included)."""

    key: str
    version: Version
    deleted: bool
    expiration: float | None


@dataclass(frozen=True, slots=True)
class Applied:
    """``node`` applied ``version`` of ``key`` at ``at`` (any clock the observer shares)."""

    node: str
    key: str
    version: Version
    deleted: bool
    at: float


@dataclass(frozen=True, slots=True)
class Observation:
    """What one observer saw of one run, reduced to what the properties judge."""

    nodes: tuple[str, ...]
    writes: tuple[Write, ...]
    held: Mapping[tuple[str, str], Record]  # (node, key) -> the record it holds at the end
    now_s: float
    seen: tuple[Record, ...] = ()
    _unsure: dict[str, list[Version | None]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        for write in self.writes:
            if not write.acknowledged:
                self._unsure.setdefault(write.key, []).append(write.version)

    @property
    def acknowledged(self) -> list[Write]:
        """The acknowledged writes whose version is known, in the observer's order."""
        return [w for w in self.writes if w.acknowledged and w.version is not None]

    def judged_keys(self) -> list[str]:
        """Every key with an acknowledged write or a held record, sorted."""
        keys = {write.key for write in self.acknowledged}
        keys.update(key for _, key in self.held)
        return sorted(keys)

    def may_have_written(self, key: str, version: Version) -> bool:
        """Whether a write not acknowledged may have made ``version`` of ``key``."""
        return any(v is None or v == version for v in self._unsure.get(key, ()))


def highest_acknowledged(observation: Observation) -> dict[str, Write]:
    """Per key, its acknowledged write with the highest version."""
    best: dict[str, Write] = {}
    for write in observation.acknowledged:
        current = best.get(write.key)
        if current is None or _version(write) > _version(current):
            best[write.key] = write
    return best


def _version(write: Write) -> Version:
    assert write.version is not None  # acknowledged writes have one
    return write.version
