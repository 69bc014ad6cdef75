"""Last writer wins: every key ends at its highest acknowledged write, on every node.

For each key (with an acknowledged write or a held record), every node that
holds a record holds the same version, and that version is the highest among
the key's acknowledged writes, or a newer one a write not acknowledged may
have made. Nodes holding nothing agree with nodes holding a tombstone or an
expired record (GC purges those), not with nodes holding a live one. When no
node holds anything, what won must be purgeable: the highest acknowledged
write itself (a delete, an expired put), or a newer purgeable record known
to have existed that a write not acknowledged may have made. Why: the replicas must not only
agree, they must agree on the write the clients were told won.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rumor.experiments.properties.observation import Observation, Write, highest_acknowledged
from rumor.experiments.properties.purgeability import (
    is_live,
    is_purgeable,
    purgeable_versions,
)

NAME = "lww"


class Wrong(StrEnum):
    """How a key fails last-writer-wins."""

    DISAGREE = "nodes disagree"  # nodes holding a record hold different versions
    MISSING_LIVE = "missing live"  # some hold nothing while others hold a live record
    NOT_HIGHEST = "not the highest"  # all hold a version that is not what won
    NOTHING_HELD = "nothing held"  # nobody holds anything, and what won was not purgeable


@dataclass(frozen=True, slots=True)
class WrongKey:
    key: str
    wrong: Wrong
    best: Write | None  # the key's highest acknowledged write


def lww(observation: Observation) -> list[WrongKey]:
    """Every way each key fails the rule, in key order (a key may fail two ways)."""
    best_of = highest_acknowledged(observation)
    purgeable = purgeable_versions(observation)
    now_s = observation.now_s
    out: list[WrongKey] = []
    for key in observation.judged_keys():
        records = {node: observation.held.get((node, key)) for node in observation.nodes}
        present = [record for record in records.values() if record is not None]
        best = best_of.get(key)
        versions = {record.version for record in present}
        if len(versions) > 1:
            out.append(WrongKey(key, Wrong.DISAGREE, best))
        elif versions:
            (version,) = versions
            if len(present) < len(records) and is_live(present[0], now_s):
                out.append(WrongKey(key, Wrong.MISSING_LIVE, best))
            if best is not None and not _won(observation, key, version, best):
                out.append(WrongKey(key, Wrong.NOT_HIGHEST, best))
        elif best is not None:
            last = purgeable.get(key)
            purged = is_purgeable(best, now_s) or (
                last is not None and _won(observation, key, last, best)
            )
            if not purged:
                out.append(WrongKey(key, Wrong.NOTHING_HELD, best))
    return out


def _won(observation: Observation, key: str, version: tuple[int, int], best: Write) -> bool:
    """``version`` may be what ``key`` ends at, given its highest acknowledged write ``best``."""
    assert best.version is not None
    if version == best.version:
        return True
    return version > best.version and observation.may_have_written(key, version)
