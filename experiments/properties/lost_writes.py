"""No acknowledged write is lost.

Every acknowledged write w (put or delete) survives on every node n: n holds,
for w's key, a record whose version is >= w's. A newer record that hides w
counts even when it has since expired (the put is hidden, not lost). A node
may hold *nothing* for the key only when garbage collection may have purged
what covered w: a purgeable record at least as new as w known to have
existed (``purgeability``), w itself when it is a delete or an expired put.
Why: an acknowledgement is a promise; losing an acknowledged write is the
worst failure of a store.
"""

from __future__ import annotations

from dataclasses import dataclass

from rumor.experiments.properties.observation import Observation, Record, Version, Write
from rumor.experiments.properties.purgeability import purgeable_versions

NAME = "lost-writes"


@dataclass(frozen=True, slots=True)
class Behind:
    """``node`` does not hold ``write``: it holds ``holds`` (None: nothing) instead."""

    write: Write
    node: str
    holds: Record | None


def behind(
    observation: Observation, write: Write, purgeable: dict[str, Version] | None = None
) -> list[Behind]:
    """The nodes on which ``write`` is neither held, nor hidden, nor purged, in node order.

    ``purgeable`` is ``purgeable_versions(observation)``, computed once by a
    caller asking about many writes.
    """
    if write.version is None:
        raise ValueError("a write without a known version cannot be looked for")
    if purgeable is None:
        purgeable = purgeable_versions(observation)
    covered = purgeable.get(write.key)
    out: list[Behind] = []
    for node in observation.nodes:
        record = observation.held.get((node, write.key))
        if record is not None:
            if record.version >= write.version:
                continue
        elif covered is not None and covered >= write.version:
            continue
        out.append(Behind(write, node, record))
    return out


def lost_writes(observation: Observation) -> list[Behind]:
    """Every (acknowledged write, node) that breaks the rule, in write then node order."""
    purgeable = purgeable_versions(observation)
    out: list[Behind] = []
    for write in observation.acknowledged:
        out += behind(observation, write, purgeable)
    return out
