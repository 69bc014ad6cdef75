"""Push gossip: who gets each new record, when queues flush, what a receiver does.

Every ``gossip_interval_ms`` the records that became durable here (local
writes, and received records that won) are planned together: ``fanout``
random live peers get them (eager push; a peer never gets its own records
back), and ``lazy_fanout`` further peers get only their ids, (origin, seq,
key). One draw per flush, not per record or origin, so under load a node
sends ``fanout + lazy_fanout`` Pushes per interval however many records it
has, as memberlist packs its broadcasts. A
receiver forwards only what was new to it, so a write spreads epidemically
and the traffic stops by itself. Forward-once push leaves about e^-fanout of
the nodes without a record; those that were told its id and still lack it
after ``pull_grace_ms`` fetch it by key from the announcer, so the tail is
repaired in milliseconds rather than at the next anti-entropy round, for ids,
not records.

Each peer has at most one Push in flight. A peer that said its disk is full
gets no Push (it would refuse it): its queue is dropped, and anti-entropy
brings it what it missed once it has room. A joining node refuses epidemic
pushes ("not ready") until its first complete exchange; a push-back (a Push
with coverage) is always taken. A Push is answered once its records are
written; their WAL sync is requested (``want_durable``), not awaited: this
node advertises and forwards only durable records, so nothing relies on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rumor.node.core.errors import InsufficientStorage, MalformedPeerMessage
from rumor.node.core.membership import Member
from rumor.node.replication.engine.components import IDLE_MS, Services
from rumor.node.replication.engine.messages import (
    Audit,
    AuditReply,
    Failed,
    FailureCause,
    NoticeKind,
    Now,
    Push,
    PushReply,
    Refusal,
    RefusalCode,
    Response,
)
from rumor.node.replication.engine.push_queues import PushQueues, plan_pushes
from rumor.node.replication.replica.delta import WireRecord

MAX_FETCH_KEYS = 1000  # per fetch of announced records from one announcer
MAX_WANTED = 100_000  # announced ids waiting to arrive; beyond this, anti-entropy's job
MAX_PULL_ATTEMPTS = 3  # fetches of one announced record (from its announcers in turn)


@dataclass(slots=True)
class _Wanted:
    """An announced record not yet here: who announced it, and when to fetch it next."""

    announcers: list[int]
    due_ms: int
    stored_key: bytes
    attempts: int = 0


class Gossip:
    def __init__(self, services: Services, *, fetching_snapshot: Callable[[], bool]) -> None:
        self.services = services
        # While a snapshot travels this node takes no pushes (see ``answer``).
        self._fetching_snapshot = fetching_snapshot
        self.queues = PushQueues(services.config.push_queue_bytes)
        self.announce: dict[int, list[tuple[int, int, bytes]]] = {}
        self.in_flight: set[int] = set()
        self.wanted: dict[tuple[int, int], _Wanted] = {}  # (origin, seq) -> its fetch
        self._next_flush_ms = 0

    def due_ms(self) -> int:
        """The next flush, if anything waits for one; idle, no timer of its own."""
        if (
            self.queues.queues
            or self.announce
            or self.wanted
            or self.services.replica.ready_to_push
        ):
            return self._next_flush_ms
        return IDLE_MS

    def tick(self, now: Now) -> None:
        if now.mono_ms < self._next_flush_ms:
            return
        self._next_flush_ms = now.mono_ms + self.services.config.gossip_interval_ms
        self.flush(now)
        if self.wanted:
            self._pull_missed(now)

    def flush(self, now: Now) -> None:
        """Plan what became durable, then send each peer with something waiting one Push."""
        services = self.services
        records = services.replica.take_ready_to_push()
        if records:
            peers = [p.id for p in services.membership.up_peers() if services.takes_records(p.id)]
            if peers:
                self.plan(records, peers)
        waiting = [peer for peer, queue in self.queues.queues.items() if queue]
        waiting += [peer for peer in self.announce if peer not in self.queues.queues]
        members = services.membership.members
        for peer_id in waiting:
            peer = members.get(peer_id)
            if (
                peer is None
                or not peer.up
                or not peer.address
                or not services.takes_records(peer_id)
            ):
                # Not up, or full: nothing stays queued for it; anti-entropy covers it later.
                self.forget(peer_id)
                continue
            if peer_id not in self.in_flight:
                self._send(peer, now)

    def plan(self, records: Sequence[WireRecord], peers: list[int]) -> None:
        """Queue the records for their eager peers and their ids for the lazy ones."""
        config = self.services.config
        for planned in plan_pushes(
            records, peers, config.fanout, config.lazy_fanout, self.services.rng
        ):
            self.queues.offer(planned.records, planned.eager)
            if planned.lazy:
                ids = [(r.ids()[1], r.ids()[2], r.stored_key) for r in planned.records]
                for peer in planned.lazy:
                    self.announce.setdefault(peer, []).extend(ids)

    def _send(self, peer: Member, now: Now) -> None:
        services = self.services
        batch = self.queues.take(peer.id, services.config.push_batch_bytes)
        announced = tuple(self.announce.pop(peer.id, ()))
        if not batch and not announced:
            return
        self.in_flight.add(peer.id)

        def then(answer: Response | Failed, _now: Now) -> None:
            self.in_flight.discard(peer.id)
            if isinstance(answer, Failed):
                services.stats.pushes_failed += 1
                if answer.cause in (FailureCause.DEADLINE, FailureCause.REFUSED):
                    # Lost on the way (or refused for now): try these records again; a
                    # peer that is down by then has its queue dropped at the next flush.
                    self.queues.offer(batch, (peer.id,))
            else:
                services.stats.pushes_sent += 1

        timeout = services.config.push_timeout_ms
        services.send(peer, Push(tuple(batch), (), announced), then, now, timeout_ms=timeout)

    def forget(self, member_id: int) -> None:
        self.queues.forget(member_id)
        self.announce.pop(member_id, None)

    # ---- receiving ----------------------------------------------------------------

    def answer(self, token: int, sender: int, push: Push, now: Now) -> None:
        services = self.services
        if (not services.serving() and not push.coverage) or self._fetching_snapshot():
            # While a copy travels this node takes nothing: the install replaces it, and
            # watermarks it advertised meanwhile would let peers purge what it then lacks.
            services.reply(token, PushReply(not_ready=True), to=sender)
            return
        coverage = services.clamp_coverage(push.coverage)
        wall_ms = services.time_for_records(now).wall_ms
        try:
            outcome = services.replica.apply_remote(list(push.records), wall_ms, coverage)
        except InsufficientStorage as error:  # the pusher queues them again
            services.reply(token, Refusal(RefusalCode.UNAVAILABLE, str(error)), to=sender)
            return
        except MalformedPeerMessage as error:
            services.stats.malformed_messages += 1
            services.notice(NoticeKind.MALFORMED, str(error), peer=f"{sender:016x}")
            services.reply(token, Refusal(RefusalCode.MALFORMED, str(error)), to=sender)
            return
        services.stats.records_applied_remote += outcome.new
        services.want_durable(outcome.ticket)
        if push.announced:
            self._note_announced(sender, push.announced, now)
        services.reply(token, PushReply(), to=sender)

    def _note_announced(
        self, sender: int, announced: Sequence[tuple[int, int, bytes]], now: Now
    ) -> None:
        watermarks = self.services.replica.watermarks
        due = now.mono_ms + self.services.config.pull_grace_ms
        wanted = self.wanted
        for origin, seq, stored_key in announced:
            ident = (origin, seq)
            entry = wanted.get(ident)
            if entry is not None:
                if sender not in entry.announcers and len(entry.announcers) < MAX_PULL_ATTEMPTS:
                    entry.announcers.append(sender)
            elif len(wanted) >= MAX_WANTED:
                return
            elif not watermarks.seen(origin, seq):
                wanted[ident] = _Wanted([sender], due, stored_key)

    def _pull_missed(self, now: Now) -> None:
        """Fetch, from an announcer, what was announced and no push brought in time.

        By key, with an audit-style fetch: small, answered at once, and not one of the
        node's (one at a time) synchronisations, which a lost message would hold up.
        A fetch not answered within another pull grace (lost, or the announcer slow)
        is asked of the next announcer, up to ``MAX_PULL_ATTEMPTS`` times; then it is
        anti-entropy's.
        """
        services = self.services
        watermarks = services.replica.watermarks
        retry_at = now.mono_ms + services.config.pull_grace_ms
        fetch: dict[int, list[bytes]] = {}
        for ident, entry in list(self.wanted.items()):
            if watermarks.seen(*ident):
                del self.wanted[ident]
            elif entry.due_ms <= now.mono_ms:
                announcer = entry.announcers[entry.attempts % len(entry.announcers)]
                entry.attempts += 1
                if entry.attempts >= MAX_PULL_ATTEMPTS:
                    del self.wanted[ident]
                else:
                    entry.due_ms = retry_at
                keys = fetch.setdefault(announcer, [])
                if len(keys) < MAX_FETCH_KEYS:
                    keys.append(entry.stored_key)
        members = services.membership.members
        for announcer, keys in fetch.items():
            peer = members.get(announcer)
            if peer is None or not peer.up or not peer.address:
                continue
            services.send(peer, Audit(fetch=tuple(keys)), self._fetched, now)

    def _fetched(self, answer: Response | Failed, now: Now) -> None:
        if not isinstance(answer, Response) or not isinstance(answer.body, AuditReply):
            return  # anti-entropy brings them
        services = self.services
        wall_ms = services.time_for_records(now).wall_ms
        try:
            outcome = services.replica.apply_remote(list(answer.body.records), wall_ms)
        except InsufficientStorage:
            return  # anti-entropy brings them once this node takes writes again
        except MalformedPeerMessage as error:
            services.stats.malformed_messages += 1
            services.notice(NoticeKind.MALFORMED, str(error), peer=f"{answer.envelope.sender:016x}")
            return
        services.stats.records_applied_remote += outcome.new
        services.want_durable(outcome.ticket)
