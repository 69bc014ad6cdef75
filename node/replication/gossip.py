"""Push gossip: who gets each new record, when queues flush, what a receiver does.

Every ``gossip_interval_ms`` the records that became durable here (local
writes, and received records that won) are planned per origin: ``fanout``
random live peers other than the origin get the records (eager push), and
``lazy_fanout`` further peers get only their ids, (origin, seq). A receiver
forwards only what was new to it, so a write spreads epidemically and the
traffic stops by itself. Forward-once push leaves about e^-fanout of the nodes
without a record; those that were told its id and still lack it after
``pull_grace_ms`` pull from the announcer (an anti-entropy exchange), so the
tail is repaired in milliseconds rather than at the next anti-entropy round,
for ids, not records.

Each peer has at most one Push in flight. A joining node refuses epidemic
pushes ("not ready") until its first complete exchange; a push-back (a Push
with coverage) is always taken. A Push is answered once its records are
written; their WAL sync is requested (``want_durable``), not awaited: this
node advertises and forwards only durable records, so nothing relies on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rumor.node.core.errors import MalformedPeerMessage
from rumor.node.core.membership import Member
from rumor.node.replication.delta import WireRecord
from rumor.node.replication.messages import (
    Failed,
    NoticeKind,
    Now,
    Push,
    PushReply,
    Refusal,
    RefusalCode,
    Response,
)
from rumor.node.replication.push_queues import PushQueues, by_origin

if TYPE_CHECKING:
    from rumor.node.replication.engine import Engine

IDLE_MS = 1 << 62  # "no timer": new records come with a step, a proposal or an advance
MAX_WANTED = 100_000  # announced ids waiting to arrive; beyond this, anti-entropy's job


class Gossip:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queues = PushQueues(engine.config.push_queue_bytes)
        self.announce: dict[int, list[tuple[int, int]]] = {}
        self.in_flight: set[int] = set()
        self.wanted: dict[tuple[int, int], tuple[int, int]] = {}  # id -> (announcer, due ms)
        self._next_flush_ms = 0

    def due_ms(self) -> int:
        """The next flush, if anything waits for one; idle, no timer of its own."""
        if self.queues.queues or self.announce or self.wanted or self.engine.replica.ready_to_push:
            return self._next_flush_ms
        return IDLE_MS

    def tick(self, now: Now) -> None:
        if now.mono_ms < self._next_flush_ms:
            return
        self._next_flush_ms = now.mono_ms + self.engine.config.gossip_interval_ms
        self.flush(now)
        if self.wanted:
            self._pull_missed(now)

    def flush(self, now: Now) -> None:
        """Plan what became durable, then send each peer with something waiting one Push."""
        engine = self.engine
        records = engine.replica.take_ready_to_push()
        if records:
            peers = engine.membership.up_peers()
            if peers:
                self.plan(records, [p.id for p in peers])
        waiting = [peer for peer, queue in self.queues.queues.items() if queue]
        waiting += [peer for peer in self.announce if peer not in self.queues.queues]
        members = engine.membership.members
        for peer_id in waiting:
            peer = members.get(peer_id)
            if peer is None or not peer.up or not peer.address:
                # Not up: nothing stays queued for it; anti-entropy covers it on return.
                self.forget(peer_id)
                continue
            if peer_id not in self.in_flight:
                self._send(peer, now)

    def plan(self, records: Sequence[WireRecord], peers: list[int]) -> None:
        """Per origin: ``fanout`` random peers but the origin get the records (eager),
        ``lazy_fanout`` more get their ids; O(fanout) per origin, whatever the cluster size."""
        config = self.engine.config
        rng = self.engine.rng
        eager_count, lazy_count = config.fanout, config.lazy_fanout
        for origin, group in by_origin(records).items():
            wanted = min(len(peers), eager_count + lazy_count + 1)
            chosen = [peer for peer in rng.sample(peers, wanted) if peer != origin]
            eager, lazy = chosen[:eager_count], chosen[eager_count : eager_count + lazy_count]
            if not eager:
                continue
            self.queues.offer(group, eager)
            if lazy:
                ids = [(origin, record.ids()[2]) for record in group]
                for peer in lazy:
                    self.announce.setdefault(peer, []).extend(ids)

    def _send(self, peer: Member, now: Now) -> None:
        engine = self.engine
        batch = self.queues.take(peer.id, engine.config.push_batch_bytes)
        announced = tuple(self.announce.pop(peer.id, ()))
        if not batch and not announced:
            return
        self.in_flight.add(peer.id)

        def then(answer: Response | Failed, _now: Now) -> None:
            self.in_flight.discard(peer.id)
            if isinstance(answer, Failed):
                engine.stats.pushes_failed += 1
            else:
                engine.stats.pushes_sent += 1

        engine.send(peer, Push(tuple(batch), (), announced), then, now)

    def forget(self, member_id: int) -> None:
        self.queues.forget(member_id)
        self.announce.pop(member_id, None)

    # ---- receiving ----------------------------------------------------------------

    def receive(self, token: int, sender: int, push: Push, now: Now) -> None:
        engine = self.engine
        if not engine.serving and not push.coverage:
            engine.reply(token, PushReply(not_ready=True), to=sender)
            return
        coverage = engine.envelopes.clamp_coverage(push.coverage)
        try:
            outcome = engine.replica.apply_remote(list(push.records), now.wall_ms, coverage)
        except MalformedPeerMessage as error:
            engine.stats.malformed_messages += 1
            engine.notice(NoticeKind.MALFORMED, str(error), peer=f"{sender:016x}")
            engine.reply(token, Refusal(RefusalCode.MALFORMED, str(error)), to=sender)
            return
        engine.stats.records_applied_remote += outcome.new
        engine.want_durable(outcome.ticket)
        if push.announced:
            self._note_announced(sender, push.announced, now)
        engine.reply(token, PushReply(), to=sender)

    def _note_announced(self, sender: int, announced: Sequence[tuple[int, int]], now: Now) -> None:
        watermarks = self.engine.replica.watermarks
        due = now.mono_ms + self.engine.config.pull_grace_ms
        for origin, seq in announced:
            if len(self.wanted) >= MAX_WANTED:
                return
            if not watermarks.seen(origin, seq):
                self.wanted.setdefault((origin, seq), (sender, due))

    def _pull_missed(self, now: Now) -> None:
        """Pull, from an announcer, what it announced and no push brought in time."""
        engine = self.engine
        watermarks = engine.replica.watermarks
        pull_from: int | None = None
        for ident, (announcer, due) in list(self.wanted.items()):
            if watermarks.seen(*ident):
                del self.wanted[ident]
            elif due <= now.mono_ms:
                del self.wanted[ident]
                pull_from = pull_from or announcer
        if pull_from is not None:
            engine.anti_entropy.catch_up(pull_from, now)
