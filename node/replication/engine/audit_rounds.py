"""Audit rounds: the backstop that compares buckets with one peer and repairs.

Every ``audit_interval_ms`` a serving node sends one random live peer its
4,096 audit buckets. The peer answers with the differing buckets and its
(key, version, origin, seq) entries in them, among the next
``audit_scan_records`` records of its key space (one slice), and where the
slice ended. The node asks back for the records it should hold and does not
— those its own watermarks claim as seen, so genuine divergences, not writes
in flight — applies them, counting repairs, and compares the next slice
(buckets sent afresh) until the peer's key space is walked or the buckets
agree. So an answer costs one slice on the peer's loop, however large its
store. A repair only pulls, so a node whose buckets differ from an asker's
audits it back (once its own round is over; at most once per interval):
whichever of the two holds what the other should, both sides are repaired.
Repairs must stay at zero: each one is a bug to report, and a notice says so.
"""

from __future__ import annotations

from rumor.node.core import audit
from rumor.node.core.errors import InsufficientStorage, MalformedPeerMessage
from rumor.node.core.membership import Member
from rumor.node.replication.engine.components import Services
from rumor.node.replication.engine.messages import (
    Audit,
    AuditReply,
    Failed,
    NoticeKind,
    Now,
    Refusal,
    RefusalCode,
    Response,
)
from rumor.node.replication.replica.delta import AuditEntry

AUDIT_SOON_SHARE = 5  # after a divergence, the next audit comes this much sooner


class AuditRounds:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.running = False
        self._next_round_ms = services.config.audit_interval_ms
        self._audit_back = 0  # an asker whose buckets differed: audit it back next
        self._audit_back_after_ms = 0

    def due_ms(self) -> int:
        return self._next_round_ms

    def tick(self, now: Now) -> None:
        if now.mono_ms < self._next_round_ms:
            return
        services = self.services
        self._next_round_ms = now.mono_ms + services.config.audit_interval_ms
        peers = services.membership.up_peers()
        if peers and services.serving() and not self.running:
            self.start(services.rng.choice(peers), now)

    def start(self, peer: Member, now: Now) -> None:
        self.running = True
        self.services.stats.audit_rounds += 1
        self._compare(peer, b"", now)

    def _compare(self, peer: Member, scan_from: bytes, now: Now) -> None:
        request = Audit(buckets=tuple(self.services.replica.audit_buckets), scan_from=scan_from)
        self.services.send(peer, request, lambda answer, at: self._compared(peer, answer, at), now)

    def _compared(self, peer: Member, answer: Response | Failed, now: Now) -> None:
        services = self.services
        if not isinstance(answer, Response) or not isinstance(answer.body, AuditReply):
            self.running = False
            self._audit_back_now(now)
            return
        scan_next = answer.body.scan_next
        if answer.body.differing:
            # A divergence: audit again soon (another random peer), so a repair spreads
            # in a few short rounds, not one pull per node per interval.
            soon = now.mono_ms + services.config.audit_interval_ms // AUDIT_SOON_SHARE
            self._next_round_ms = min(self._next_round_ms, soon)
        wanted = services.replica.audit_wanted(answer.body.entries, now.wall_s)
        if not wanted:
            self._next_slice(peer, scan_next, now)
            return
        services.send(
            peer,
            Audit(fetch=tuple(wanted)),
            lambda fetched, at: self._fetched(peer, fetched, scan_next, at),
            now,
        )

    def _fetched(self, peer: Member, answer: Response | Failed, scan_next: bytes, now: Now) -> None:
        services = self.services
        if not isinstance(answer, Response) or not isinstance(answer.body, AuditReply):
            self.running = False
            return
        try:
            repaired = services.replica.apply_repairs(list(answer.body.records))
        except InsufficientStorage:
            self.running = False  # the next round repairs them
            return
        except MalformedPeerMessage as error:
            services.stats.malformed_messages += 1
            services.notice(NoticeKind.MALFORMED, str(error), peer=f"{peer.id:016x}")
            self.running = False
            return
        if repaired:
            services.want_durable(services.replica.written_ticket)
            services.notice(NoticeKind.AUDIT_REPAIRED, "", peer=f"{peer.id:016x}", records=repaired)
        self._next_slice(peer, scan_next, now)

    def _next_slice(self, peer: Member, scan_next: bytes, now: Now) -> None:
        """Compare the next slice of the peer's key space, or end the audit."""
        current = self.services.membership.members.get(peer.id)
        if scan_next and current is not None and current.up:
            self._compare(current, scan_next, now)
            return
        self.running = False
        self._audit_back_now(now)

    def answer(self, token: int, sender: int, request: Audit, now: Now) -> None:
        services = self.services
        replica = services.replica
        differing: tuple[int, ...] = ()
        entries: tuple[AuditEntry, ...] = ()
        scan_next = b""
        if request.buckets:
            if len(request.buckets) != audit.BUCKETS:
                services.reply(
                    token,
                    Refusal(RefusalCode.MALFORMED, f"an audit carries {audit.BUCKETS} buckets"),
                    to=sender,
                )
                return
            differing = tuple(audit.differing(replica.audit_buckets, list(request.buckets)))
            if differing:
                found, scan_next = replica.audit_entries(
                    differing, request.scan_from, services.config.audit_scan_records
                )
                entries = tuple(found)
        records = tuple(replica.fetch(request.fetch)) if request.fetch else ()
        services.reply(token, AuditReply(differing, entries, records, scan_next), to=sender)
        if differing and not request.scan_from and now.mono_ms >= self._audit_back_after_ms:
            self._audit_back = sender
            self._audit_back_after_ms = now.mono_ms + services.config.audit_interval_ms
            if not self.running:
                self._audit_back_now(now)

    def _audit_back_now(self, now: Now) -> None:
        """The asker whose buckets differed may hold what this node should: audit it."""
        services = self.services
        member = services.membership.members.get(self._audit_back)
        self._audit_back = 0
        if member is not None and member.up and services.serving():
            self.start(member, now)
