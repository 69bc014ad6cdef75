"""No deleted or expired key comes back.

Two forms, each judged on what the observer has:

- final state (``revived``): a key whose highest acknowledged write is a
  delete, or a put that has expired, is live (neither a tombstone nor
  expired) on no node at the end, unless a write not acknowledged may have
  made that newer live version;
- apply order (``applied_after_tombstone``): once a node has applied a
  tombstone of version T for a key, it never applies a version < T of that
  key later.

Why: the final-state form catches a deleted key that came back; the
apply-order form also catches one that came back and went away again before
the end (for example, a tombstone purged before every member had seen it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rumor.experiments.properties.observation import (
    Applied,
    Observation,
    Record,
    Write,
    highest_acknowledged,
)
from rumor.experiments.properties.purgeability import is_live, is_purgeable

NAME = "no-resurrection"


@dataclass(frozen=True, slots=True)
class Revived:
    """``node`` holds ``record`` live, though ``gone_by`` deleted (or expired) its key."""

    key: str
    gone_by: Write
    node: str
    record: Record


@dataclass(frozen=True, slots=True)
class Reapplied:
    """``event`` came on its node after the node had applied the newer ``tombstone``."""

    event: Applied
    tombstone: Applied


def gone_keys(observation: Observation) -> dict[str, Write]:
    """Keys whose highest acknowledged write is a delete or an expired put, with that write."""
    return {
        key: write
        for key, write in sorted(highest_acknowledged(observation).items())
        if is_purgeable(write, observation.now_s)
    }


def revived(observation: Observation) -> list[Revived]:
    """Every (gone key, node) where the key reads live at the end, in key then node order."""
    out: list[Revived] = []
    for key, best in gone_keys(observation).items():
        assert best.version is not None
        for node in observation.nodes:
            record = observation.held.get((node, key))
            if record is None or not is_live(record, observation.now_s):
                continue
            if record.version > best.version and observation.may_have_written(key, record.version):
                continue  # a newer write, not acknowledged, may have revived it
            out.append(Revived(key, best, node, record))
    return out


def applied_after_tombstone(events: Iterable[Applied]) -> list[Reapplied]:
    """Per node and key, every version applied after a newer tombstone, by node and key."""
    streams: dict[tuple[str, str], list[Applied]] = defaultdict(list)
    for event in events:
        streams[(event.node, event.key)].append(event)
    out: list[Reapplied] = []
    for _, stream in sorted(streams.items()):
        tombstone: Applied | None = None
        for event in sorted(stream, key=lambda applied: applied.at):
            if tombstone is not None and event.version < tombstone.version:
                out.append(Reapplied(event, tombstone))
            if event.deleted and (tombstone is None or event.version > tombstone.version):
                tombstone = event
    return out
