"""Anti-entropy: Scuttlebutt push-pull synchronisations, one at a time.

Every ``anti_entropy_interval_ms`` a node that is not already synchronising
starts a synchronisation with a random live peer. A round sends an Exchange
carrying the node's digest (durable watermarks plus the provisional claims
of this synchronisation); the peer answers from one consistent view with
what the digest lacks, within its budget, and coverage claims (clamped to
each origin's known high seq). The asker applies the answer in slices of
``apply_slice_records`` (one per tick, so the driver's loop breathes), waits
until the applied records are durable (its next digest advertises only
durable marks), then:

- a cut-short answer is followed by the next round at once;
- a complete one ends the synchronisation; the first one makes a joining
  node serve; and the asker pushes back what the peer lacks, if that is a
  small backlog (a larger one the peer pulls itself).

A failed round abandons the synchronisation; its provisional claims are
dropped by the next one. Catch-ups — a member that comes back from the dead,
an announcer of records push did not bring, or the writes a session read
waits for — are pull-only synchronisations, queued and run next. For a
session's writes the peer is the origin itself when it is up, else an up
peer whose gossiped watermarks show it holds them, else any up peer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rumor.node.core.errors import InsufficientStorage, MalformedPeerMessage
from rumor.node.core.membership import Member
from rumor.node.replication.engine.components import Services
from rumor.node.replication.engine.messages import (
    Exchange,
    ExchangeReply,
    Failed,
    NoticeKind,
    Now,
    Push,
    Refusal,
    RefusalCode,
    Response,
)
from rumor.node.replication.replica.delta import Coverage, WireRecord


@dataclass(slots=True)
class _Session:
    peer: Member
    push_back: bool
    rounds: int = 0
    waiting: bool = True  # for an answer, or for its records to be durable
    pending: list[WireRecord] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)
    peer_marks: dict[int, int] = field(default_factory=dict)
    ticket: int | None = None  # once applied: the answer is durable with this ticket


class AntiEntropy:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.session: _Session | None = None
        self.catch_ups: dict[int, None] = {}  # member ids, in order
        self._next_round_ms = 0

    def due_ms(self) -> int:
        session = self.session
        if session is not None and session.pending:
            return 0  # slices left to apply: tick again at once
        if session is None and self.catch_ups:
            return 0
        return self._next_round_ms

    def tick(self, now: Now) -> None:
        session = self.session
        if session is not None:
            if session.pending:
                self._apply_slice(session, now)
            return
        services = self.services
        while self.catch_ups:
            member_id = next(iter(self.catch_ups))
            del self.catch_ups[member_id]
            member = services.membership.members.get(member_id)
            if member is not None and member.up and member.address:
                self.start(member, now, push_back=False)
                return
        if now.mono_ms < self._next_round_ms:
            return
        self._next_round_ms = now.mono_ms + services.config.anti_entropy_interval_ms
        peers = services.membership.up_peers()
        if peers:
            self.start(services.rng.choice(peers), now, push_back=True)

    def catch_up(self, member_id: int, now: Now) -> None:
        """Synchronise with ``member_id`` soon (pull only: it pulls from us too)."""
        session = self.session
        if session is not None and session.peer.id == member_id:
            return
        self.catch_ups[member_id] = None

    def catch_up_origins(self, wanted: Mapping[int, int], now: Now) -> None:
        """Pull soon what this node lacks of ``wanted`` (origin -> seq) from whoever has it."""
        membership = self.services.membership
        up = {peer.id: peer for peer in membership.up_peers() if peer.address}
        if not up:
            return
        for origin, seq in wanted.items():
            if origin in up:
                self.catch_up(origin, now)
                continue
            holders = sorted(
                member_id
                for member_id in up
                if membership.vectors.get(member_id, {}).get(origin, 0) >= seq
            )
            self.catch_up(self.services.rng.choice(holders or sorted(up)), now)

    def start(self, peer: Member, now: Now, *, push_back: bool) -> None:
        self.services.replica.begin_sync()
        self.session = _Session(peer, push_back)
        self._round(now)

    def _round(self, now: Now) -> None:
        session = self.session
        assert session is not None
        session.rounds += 1
        session.waiting = True
        digest = self.services.replica.sync_digest()
        self.services.send(session.peer, Exchange(digest), self._answered, now, all_members=True)

    def _answered(self, answer: Response | Failed, now: Now) -> None:
        session = self.session
        if session is None:
            return
        if isinstance(answer, Failed) or not isinstance(answer.body, ExchangeReply):
            self.session = None
            return
        services = self.services
        services.stats.exchanges += 1
        reply = answer.body
        try:
            # The whole answer, before any slice of it is applied: one bad record rejects it.
            services.replica.check_peer_message(reply.records, reply.coverage)
        except MalformedPeerMessage as error:
            services.stats.malformed_messages += 1
            services.notice(NoticeKind.MALFORMED, str(error), peer=f"{session.peer.id:016x}")
            self.session = None
            return
        session.pending = list(reply.records)
        session.coverage = services.clamp_coverage(reply.coverage)
        session.peer_marks = dict(answer.envelope.watermarks)
        self._apply_slice(session, now)

    def _apply_slice(self, session: _Session, now: Now) -> None:
        """Apply one slice of the answer; the claims go with the last slice."""
        services = self.services
        slice_size = services.config.apply_slice_records
        part, session.pending = session.pending[:slice_size], session.pending[slice_size:]
        wall_ms = services.time_for_records(now).wall_ms
        try:
            if session.pending:
                outcome = services.replica.apply_remote(part, wall_ms)
            else:
                outcome = services.replica.apply_remote(
                    part, wall_ms, session.coverage, session=True
                )
        except InsufficientStorage:
            # A slice not applied: the session's coverage must never be claimed.
            self.session = None
            return
        except MalformedPeerMessage as error:
            services.stats.malformed_messages += 1
            services.notice(NoticeKind.MALFORMED, str(error), peer=f"{session.peer.id:016x}")
            self.session = None
            return
        services.stats.records_applied_remote += outcome.new
        if session.pending:
            return
        session.ticket = outcome.ticket
        services.want_durable(outcome.ticket)
        self.synced(now)

    def synced(self, now: Now) -> None:
        """Some writes became durable: go on with a round waiting for its records."""
        session = self.session
        if session is None or session.pending or not session.waiting or session.ticket is None:
            return
        services = self.services
        if not services.replica.is_durable(session.ticket):
            return
        session.waiting = False
        session.ticket = None
        complete = all(claim.complete for claim in session.coverage)
        if not complete and session.rounds < services.config.max_follow_up_rounds:
            self._round(now)
            return
        self.session = None
        if complete:
            services.become_serving("first complete exchange")
            if session.push_back:
                self._push_back(session, now)

    def _push_back(self, session: _Session, now: Now) -> None:
        delta = self.services.replica.push_back_for(session.peer_marks)
        if delta is None:
            return
        push = Push(tuple(delta.records), tuple(delta.coverage))
        self.services.send(session.peer, push, lambda _answer, _now: None, now, all_members=True)

    # ---- answering ------------------------------------------------------------

    def answer(self, token: int, sender: int, exchange: Exchange, now: Now) -> None:
        """One synchronous step: the watermarks advertised and the records sent agree."""
        services = self.services
        digest = {o: s for o, s in exchange.digest.items() if o and s >= 0}
        try:
            delta = services.replica.delta_for(
                digest, services.config.delta_budget_bytes, services.config.answer_entry_budget
            )
        except MalformedPeerMessage as error:
            services.reply(token, Refusal(RefusalCode.MALFORMED, str(error)), to=sender)
            return
        services.reply(
            token,
            ExchangeReply(tuple(delta.records), tuple(delta.coverage)),
            to=sender,
            all_members=True,
        )
