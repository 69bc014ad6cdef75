"""Envelopes: what every message says about its sender, and what a node believes of it.

Every request and reply carries the sender's id, boot nonce, HLC, address,
name, why it refuses writes if it does (a full disk, a fenced clock: peers
keep the last word of each member in ``refusing``) and a few membership
updates (each retransmitted a number of times that grows with the cluster).
The messages that need them carry more:

- Exchange, Ping, Join and Audit messages carry the sender's whole durable
  watermark vector (what GC and min_replicas count on) and, with every member,
  each origin's highest known seq (``high_seqs``).
- Join and Exchange messages, both ways, say what the sender speaks: its
  protocol versions and features (``protocol``; see versions).
- A Push carries only the sender's own mark, and its reply only the marks
  the pusher needs (its own, for min_replicas): a vector per push would cost
  O(cluster) on the hottest message.

Peer input is untrusted. A watermark claim — a coverage claim that raises a
watermark, a vector GC counts on — is clamped to its origin's high seq as far
as this node knows it (the origin's own mark, heard from it, or gossiped with
the member table, merged by max), and each clamp is counted. So one bogus
claim of 2^63 cannot stall an origin, while an origin unreachable from this
node still has its watermark advance here through the others. High seqs are
claims too: an origin's own mark, once this process has heard it from the
origin itself, replaces what others said of it and from then on only the
origin raises it, so a forged ``high_seqs`` entry cannot lift the ceiling
of an origin this node talks to. A peer's claim to have seen more of this
node's own seqs than it holds (a stale copy of its disk) makes it skip past
them and take them back first, but not from a member that very message
introduced, nor beyond ``MAX_CREDIBLE_SEQ``. An origin whose high seq is unknown is
clamped to zero; high seqs survive restarts in the store.

Back past the member timeout. A member down longer than ``member_timeout_ms``
is retired by the nodes that saw it down, and refused when it comes back, so
that what it holds cannot outlive the tombstones GC purged without counting
it. That works only for a member some node knows: one known to nobody else —
its group formed apart from the cluster (a split, seeds unreachable) and every
other member of the group is gone (replaced at its address by a new process
with an empty disk) — is retired by nobody, the cluster's GC never counted it,
and when it came back its older puts won over the deletes the cluster had
purged. So a node beats in the store (``META_ALIVE``, each housekeeping round),
and a node that starts more than the member timeout after its last beat, with
peers in its table, says ``away`` in every envelope; a member that does not
know its id refuses it as removed (it rejoins as new, or stops), before
anything it sends is read, as for a retired id. One that knows it (not
retired) counted it in GC all along and takes it in; once a peer's envelope
lists this node as a member, it is known and stops saying so. Until then it
does not beat, so a restart does not forget that it was away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from rumor.node.core.compatibility import Speaks
from rumor.node.core.membership import State
from rumor.node.replication.engine.canaries import Canary
from rumor.node.replication.engine.components import Services
from rumor.node.replication.engine.messages import (
    Audit,
    AuditReply,
    Envelope,
    Exchange,
    ExchangeReply,
    Join,
    JoinReply,
    NoticeKind,
    Now,
    Ping,
    PingReply,
    PushReply,
    Refusal,
    RefusalCode,
    ReplyBody,
    Request,
)
from rumor.node.replication.engine.staleness import Staleness
from rumor.node.replication.engine.versions import MEETINGS
from rumor.node.replication.replica.delta import Coverage
from rumor.node.storage.layout import (
    META_ALIVE,
    META_HIGH_SEQS,
    pack_high_seqs,
    pack_u64,
    unpack_high_seqs,
    unpack_u64,
)
from rumor.node.storage.store import META

MAX_SEQ = (1 << 63) - 1
# No node issues this many writes (2^62: 146,000 years at a million a second); a claim
# to have seen more of this node is a lie, not a stale disk.
MAX_CREDIBLE_SEQ = 1 << 62
_FULL = (Exchange, ExchangeReply, Ping, PingReply, Join, JoinReply, Audit, AuditReply)


class Envelopes:
    def __init__(
        self,
        services: Services,
        *,
        advertise: str,
        name: str,
        speaks: Speaks,
        came_back: Callable[[int, Now], None],
        behind_on_own_writes: Callable[[int, int, Now], None],
        removed: Callable[[str], None],
        started: Now,
        refuses_writes: Callable[[], str],
    ) -> None:
        self.services = services
        self._refuses_writes = refuses_writes  # why this node takes no writes ("": it does)
        self.refusing: dict[int, str] = {}  # member -> why it said it takes no writes
        self.advertise = advertise
        self.name = name
        self.speaks = speaks  # said in every Join and Exchange (see versions)
        self.boot_nonce = services.membership.me.boot_nonce
        # A member not alive before is alive again: catch up with it.
        self._came_back = came_back
        # A peer has seen own seqs this node lacks: (seen, peer, now).
        self._behind_on_own_writes = behind_on_own_writes
        self._removed = removed  # this node was removed from the cluster
        self.away = self._was_away(started)  # back past the member timeout, not known yet
        self.high_seqs: dict[int, int] = unpack_high_seqs(
            services.replica.store.get(META, META_HIGH_SEQS)
        )
        self._high_dirty = False
        self._heard_directly: set[int] = set()  # origins whose own mark this process heard
        self.issued: dict[int, int] = {}  # each member's last own seq issued, as it said
        self._boots: dict[int, int] = {}  # the boot nonce ``issued`` and vectors are from
        self.staleness = Staleness()  # how far behind each member this node may be

    # ---- back past the member timeout ---------------------------------------------

    def _was_away(self, now: Now) -> bool:
        """This node starts more than the member timeout after its last beat, with peers."""
        services = self.services
        timeout_ms = services.config.member_timeout_ms
        stored = services.replica.store.get(META, META_ALIVE)
        if not timeout_ms or stored is None or now.wall_ms - unpack_u64(stored) <= timeout_ms:
            return False
        return any(m.state is not State.REMOVED for m in services.membership.peers())

    def beat(self, now: Now) -> None:
        """Say in the store that this node is up (not while it is away and unknown)."""
        if self.away:
            return
        store = self.services.replica.store
        batch = store.batch()
        batch.put(META, META_ALIVE, pack_u64(max(0, now.wall_ms)))
        store.write(batch)

    # ---- outgoing -------------------------------------------------------------

    def make(self, body: Request | ReplyBody | Refusal, *, all_members: bool, to: int) -> Envelope:
        services = self.services
        replica = services.replica
        membership = services.membership
        own = replica.durable_seq
        members = membership.all() if all_members else membership.updates()
        watermarks: Mapping[int, int]
        high: Mapping[int, int] = {}
        if isinstance(body, _FULL) or all_members:
            watermarks = replica.own_watermarks()
            high = {**self.high_seqs, services.node_id: own}
        else:
            # The own watermark, as in the full vector: a node that has not taken back its
            # own writes yet (a stale copy) must not tell its peers' GC it has seen them.
            mark = replica.own_watermark(services.node_id)
            if isinstance(body, PushReply) and to:
                watermarks = {services.node_id: mark, to: replica.own_watermark(to)}
            else:
                watermarks = {services.node_id: mark}
        return Envelope(
            sender=services.node_id,
            boot_nonce=self.boot_nonce,
            hlc=replica.clock.last,
            address=self.advertise,
            name=self.name,
            members=tuple(members),
            watermarks=watermarks,
            high_seqs=high,
            issued_seq=replica.seq,
            protocol=self.speaks if isinstance(body, MEETINGS) else None,
            refuses_writes=self._refuses_writes(),
            recipient=to,
            away=self.away,
        )

    # ---- incoming -------------------------------------------------------------

    def absorb(self, envelope: Envelope, now: Now) -> Refusal | None:
        """Take in a peer's envelope (a request's or a reply's); a Refusal if it must not."""
        services = self.services
        sender = envelope.sender
        if sender in (0, services.node_id):
            return None
        replica = services.replica
        membership = services.membership
        if replica.is_retired(sender):
            return Refusal(
                RefusalCode.REMOVED,
                f"node {sender:016x} was removed from the cluster; wipe its data directory"
                " and start it again to join as a new node",
            )
        if envelope.away and membership.state_of(sender) is None:
            # Back past the member timeout, and never known here: the GC of this cluster
            # never counted it, so what it holds may be older than what was purged.
            return Refusal(
                RefusalCode.REMOVED,
                f"node {sender:016x} was down longer than the member timeout and this"
                " cluster does not know it; wipe its data directory and start it again to"
                " join as a new node",
            )
        if self.away and any(
            m.id == services.node_id and m.state is not State.REMOVED for m in envelope.members
        ):
            self.away = False  # a member that knows this node: it was counted all along
        if envelope.recipient not in (0, services.node_id):
            # The sender's table has another id at this address (this process replaced
            # an old one): it is answered all the same, and its probes will tell.
            services.stats.misaddressed += 1
            services.notice(
                NoticeKind.MISADDRESSED,
                "a peer's message was meant for another node id at this address",
                peer=f"{sender:016x}",
                recipient=f"{envelope.recipient:016x}",
            )
        replica.observe_clock(envelope.hlc, now.wall_ms, services.time_for_records(now).wall_ms)
        was = membership.state_of(sender)
        membership.heard_from(
            sender, envelope.address, envelope.boot_nonce, now.mono_ms, envelope.name
        )
        if (
            was is not None
            and was is not State.ALIVE
            and membership.state_of(sender) is State.ALIVE
        ):
            self._came_back(sender, now)
        for update in membership.merge_all(envelope.members, now.mono_ms):
            services.notice(
                NoticeKind.MEMBER_STATE, "", member=f"{update.id:016x}", state=update.state.name
            )
        if envelope.refuses_writes:
            self.refusing[sender] = envelope.refuses_writes
        else:
            self.refusing.pop(sender, None)
        self._learn_high(sender, envelope)
        if sender in envelope.watermarks:
            self.staleness.heard(sender, envelope.watermarks[sender], now.mono_ms)
        if self._boots.get(sender) != envelope.boot_nonce:
            # A new process of the member: what it has seen and issued starts afresh. One
            # restarted on a stale copy of its disk, or after a power loss, has seen and
            # issued less than its previous life said, and a mark kept from that life
            # would hold GC's second phase for ever, waiting for seqs that went with it.
            self._boots[sender] = envelope.boot_nonce
            self.issued[sender] = envelope.issued_seq
            membership.vectors.pop(sender, None)
        elif envelope.issued_seq:
            self.issued[sender] = envelope.issued_seq
        if envelope.watermarks:
            vector = membership.vectors.setdefault(sender, {})
            for origin, mark in envelope.watermarks.items():
                if mark > vector.get(origin, 0):
                    vector[origin] = mark
            seen_of_me = envelope.watermarks.get(services.node_id, 0)
            # Compared with what this node holds of its own writes, not with its seq: a
            # stale copy under durability wal is past its reserved block already.
            held = replica.own_watermark(services.node_id)
            if seen_of_me > held:
                if was is None or seen_of_me > MAX_CREDIBLE_SEQ:
                    # A member this very message introduced (a made-up id), or a seq no
                    # node issues: not a reason to skip seqs and stop writing.
                    self._clamped(services.node_id, seen_of_me, held)
                else:
                    self._behind_on_own_writes(seen_of_me, sender, now)
        if membership.removed_me:
            self._removed(
                f"this node ({services.node_id:016x}) was removed from the cluster;"
                " wipe its data directory and start it again to join as a new node"
            )
        return None

    def _learn_high(self, sender: int, envelope: Envelope) -> None:
        """An origin's word on its own high seq stands; others' word only stands in for it
        until this node hears from the origin itself."""
        high = self.high_seqs
        own = envelope.watermarks.get(sender)
        if own is not None:
            if sender not in self._heard_directly:
                # The first word from the origin itself replaces what others claimed for it
                # (a forged claim of 2^62 must not outlive the origin's own answer).
                self._heard_directly.add(sender)
                if high.get(sender) != own:
                    high[sender] = own
                    self._high_dirty = True
            elif own > high.get(sender, -1):
                high[sender] = own
                self._high_dirty = True
        heard = self._heard_directly
        for origin, seq in envelope.high_seqs.items():
            if origin in heard or origin == self.services.node_id:
                continue
            if seq > high.get(origin, -1):
                high[origin] = seq
                self._high_dirty = True

    # ---- claims ---------------------------------------------------------------

    def clamp_coverage(self, coverage: Iterable[Coverage]) -> list[Coverage]:
        """Coverage claims no higher than their origins' known high seqs (counted when cut)."""
        if Canary.FORGED_WATERMARK in self.services.canaries:
            return list(coverage)
        clamped = []
        for claim in coverage:
            ceiling = self._ceiling(claim.origin)
            if claim.last > ceiling:
                self._clamped(claim.origin, claim.last, ceiling)
                claim = Coverage(claim.origin, claim.base, max(claim.base, ceiling), claim.complete)  # noqa: PLW2901
            clamped.append(claim)
        return clamped

    def clamped(self, vector: Mapping[int, int]) -> dict[int, int]:
        """A peer's watermark vector, each entry no higher than its origin's high seq."""
        if Canary.FORGED_WATERMARK in self.services.canaries:
            return dict(vector)
        out = {}
        for origin, mark in vector.items():
            out[origin] = min(mark, self._ceiling(origin))
        return out

    def _ceiling(self, origin: int) -> int:
        if origin == self.services.node_id:
            return self.services.replica.durable_seq
        return self.high_seqs.get(origin, 0)

    def _clamped(self, origin: int, claimed: int, ceiling: int) -> None:
        services = self.services
        services.stats.claims_clamped += 1
        services.notice(
            NoticeKind.CLAMPED,
            "a watermark claim above its origin's known high seq was clamped",
            origin=f"{origin:016x}",
            claimed=claimed,
            ceiling=ceiling,
        )

    def persist_high_seqs(self) -> None:
        """Keep the high seqs across restarts (called from a timer: they change often)."""
        if not self._high_dirty:
            return
        store = self.services.replica.store
        batch = store.batch()
        batch.put(META, META_HIGH_SEQS, pack_high_seqs(self.high_seqs))
        store.write(batch)
        self._high_dirty = False
