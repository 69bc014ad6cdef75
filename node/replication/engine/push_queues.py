"""Per-peer push queues: what each peer will be sent in its next Push.

Records are keyed by namespace + key, so a queued record superseded before it
was sent is replaced by the newer one (a peer never gets a version it would
immediately overwrite). Each queue is bounded in bytes (records of any size
cost what they weigh); what does not fit is counted in ``dropped`` and left to
anti-entropy, which repairs anything a push missed. A dead member's queue is
dropped whole (``forget``): anti-entropy brings it what it missed when it
comes back.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from rumor.node.replication.replica.delta import WireRecord

PUSH_BATCH_BYTES = 1024 * 1024
QUEUE_BYTES_PER_PEER = 8 * 1024 * 1024


class PushQueues:
    def __init__(self, limit_bytes_per_peer: int = QUEUE_BYTES_PER_PEER) -> None:
        self.limit_bytes = limit_bytes_per_peer
        self.queues: dict[int, OrderedDict[bytes, WireRecord]] = {}
        self.queued_bytes: dict[int, int] = {}
        self.dropped = 0

    def offer(self, records: Iterable[WireRecord], peers: Iterable[int]) -> None:
        """Queue ``records`` for each of ``peers``."""
        records = list(records)
        for peer in peers:
            queue = self.queues.setdefault(peer, OrderedDict())
            size = self.queued_bytes.get(peer, 0)
            for record in records:
                stored_key = record.stored_key
                previous = queue.pop(stored_key, None)
                if previous is not None:
                    size -= previous.size()
                    if previous.ids() > record.ids():
                        record = previous  # noqa: PLW2901 - keep the newer one
                elif size + record.size() > self.limit_bytes:
                    self.dropped += 1
                    continue
                queue[stored_key] = record
                size += record.size()
            self.queued_bytes[peer] = size

    def pending(self, peer: int) -> int:
        return self.queued_bytes.get(peer, 0)

    def take(self, peer: int, max_bytes: int = PUSH_BATCH_BYTES) -> list[WireRecord]:
        """The oldest queued records for ``peer`` up to ``max_bytes`` (at least one)."""
        queue = self.queues.get(peer)
        if not queue:
            return []
        batch: list[WireRecord] = []
        used = 0
        while queue:
            stored_key, record = next(iter(queue.items()))
            size = record.size()
            if batch and used + size > max_bytes:
                break
            del queue[stored_key]
            batch.append(record)
            used += size
        if queue:
            self.queued_bytes[peer] -= used
        else:  # only peers with something queued keep an entry: flushes look at those
            del self.queues[peer]
            del self.queued_bytes[peer]
        return batch

    def peers(self) -> list[int]:
        """The peers with a queue (possibly empty)."""
        return list(self.queues)

    def forget(self, peer: int) -> None:
        self.queues.pop(peer, None)
        self.queued_bytes.pop(peer, None)


def by_origin(records: Iterable[WireRecord]) -> dict[int, list[WireRecord]]:
    """``records`` grouped by the node that wrote them, in order within each group."""
    groups: dict[int, list[WireRecord]] = {}
    for record in records:
        groups.setdefault(record.ids()[1], []).append(record)
    return groups


@dataclass(slots=True)
class PushPlan:
    """One origin's records: who gets them (``eager``) and who only their ids (``lazy``)."""

    eager: list[int]
    lazy: list[int]
    records: list[WireRecord]


def plan_pushes(
    records: Iterable[WireRecord],
    peers: list[int],
    fanout: int,
    lazy_fanout: int,
    rng: random.Random,
) -> list[PushPlan]:
    """Who gets what from one flush: one draw of ``fanout + lazy_fanout + 1`` peers for
    all the records, each origin's records going to the first ``fanout`` drawn that are
    not the origin (it holds them, or something newer, already) and their ids to the
    next ``lazy_fanout``. One draw, so a flush sends at most ``fanout + lazy_fanout``
    Pushes however many records it carries; O(fanout) per origin at any cluster size."""
    drawn = rng.sample(peers, min(len(peers), fanout + lazy_fanout + 1))
    plan = []
    for origin, group in by_origin(records).items():
        chosen = [peer for peer in drawn if peer != origin]
        if chosen:
            plan.append(PushPlan(chosen[:fanout], chosen[fanout : fanout + lazy_fanout], group))
    return plan
