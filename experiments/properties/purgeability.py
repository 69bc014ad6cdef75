"""What garbage collection may purge, and so what a node may hold nothing of.

GC purges tombstones and expired puts once every member has seen them
(docs/ALGORITHM.md, "Safe garbage collection"), and with such a record goes
the only trace of the older writes it replaced. So a node that holds
nothing for a key has lost nothing at least as old as the highest purgeable
version known to have existed for that key: an acknowledged delete or
expired put, or a tombstone or expired record the observer saw (a Watch
event, another node's holding). A write not acknowledged is no evidence: it
may never have been made durable anywhere.
"""

from __future__ import annotations

from rumor.experiments.properties.observation import Observation, Record, Version, Write


def is_expired(expiration: float | None, now_s: float) -> bool:
    """Workers KV: a key is expired when ``expiration <= now``."""
    return expiration is not None and expiration <= now_s


def is_purgeable(item: Write | Record, now_s: float) -> bool:
    """A tombstone or an expired put: what GC purges."""
    return item.deleted or is_expired(item.expiration, now_s)


def is_live(record: Record, now_s: float) -> bool:
    """What a read returns: neither a tombstone nor expired."""
    return not is_purgeable(record, now_s)


def purgeable_versions(observation: Observation) -> dict[str, Version]:
    """Per key, the highest version of a purgeable record known to have existed."""
    highest: dict[str, Version] = {}
    evidence: list[tuple[str, Version]] = [
        (write.key, write.version)
        for write in observation.acknowledged
        if write.version is not None and is_purgeable(write, observation.now_s)
    ]
    evidence += [
        (record.key, record.version)
        for record in observation.seen
        if is_purgeable(record, observation.now_s)
    ]
    for key, version in evidence:
        if key not in highest or version > highest[key]:
            highest[key] = version
    return highest
