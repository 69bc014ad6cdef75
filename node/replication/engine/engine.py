"""The protocol engine: every replication decision, sans-I/O (the etcd-raft shape).

Contract. The driver (the gRPC server, the simulator, a test) owns the
clock, the network and the disk; the engine owns every decision.

- ``step(message, now)`` takes what a peer sent: an ``Inbound`` request (its
  answer appears in ``ready().replies`` under the request's token, at once or
  later) or a ``Response`` to one of the engine's own requests.
- ``tick(now)`` lets time pass: push flushes, anti-entropy rounds, SWIM
  probes and suspicion, seed retries, audits, deferred records, GC, the clock
  fence. ``ready().next_tick_ms`` says when the next timer is due.
- ``propose(writes, now)`` applies client writes (through the replica) and
  returns their durability tickets.
- ``ready()`` hands out what the driver must do, each thing once: requests to
  send, replies to give, the write ticket to make durable, notices to log or
  act on (stop when removed or when another process holds this id).
- ``advance(done, now)`` reports what was done: the ticket now durable, the
  requests that failed (and why), the disk filling up or having room again.
- ``catch_up_with(wanted, now)``: a client read waits for writes this node
  lacks (origin -> seq, from a session token); the engine pulls them at once
  from the origin or a peer holding them, rather than at the next round.

The engine never reads a clock, a socket or a random source it was not given
(the ``rng`` is injected), so the same inputs give the same outputs: the
simulator replays a schedule exactly, and a trace-equivalence test holds the
gRPC driver to it. ``advance`` is the one door to durability: nothing else
marks the replica durable.

Components, one concept each, hold the rest (the package docstring lists them):
each is built from ``Services``, never from the Engine, and a decision that
starts a sibling's work goes through a hook the engine routes. ``Outbox``
gathers what ``ready()`` hands out.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Never

from rumor.node.core.clock_fence import ClockFence, FenceVerdict
from rumor.node.core.compatibility import Feature, Speaks, this_node
from rumor.node.core.errors import Unavailable
from rumor.node.core.membership import Member
from rumor.node.replication.engine.anti_entropy import AntiEntropy
from rumor.node.replication.engine.audit_rounds import AuditRounds
from rumor.node.replication.engine.canaries import Canary
from rumor.node.replication.engine.components import (
    Component,
    ReplicationStats,
    Services,
)
from rumor.node.replication.engine.envelopes import Envelopes
from rumor.node.replication.engine.garbage_collection import GarbageCollection
from rumor.node.replication.engine.gossip import Gossip
from rumor.node.replication.engine.housekeeping import Housekeeping
from rumor.node.replication.engine.joining import Joining
from rumor.node.replication.engine.membership import Membership
from rumor.node.replication.engine.messages import (
    Admit,
    Audit,
    Done,
    Exchange,
    Failed,
    FailureCause,
    Inbound,
    Join,
    NoticeKind,
    Now,
    Outbound,
    Ping,
    Push,
    Ready,
    Refusal,
    RefusalCode,
    Response,
    failure_cause,
)
from rumor.node.replication.engine.outbox import Outbox
from rumor.node.replication.engine.own_writes import OwnWrites
from rumor.node.replication.engine.probing import Probing
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.engine.readiness import DISK_FULL_REASON, Readiness
from rumor.node.replication.engine.snapshot_join import SnapshotJoin
from rumor.node.replication.engine.sweep_rounds import SweepRounds
from rumor.node.replication.engine.versions import Versions
from rumor.node.replication.replica.delta import Coverage
from rumor.node.replication.replica.replica import Applied, Replica, Write


class Engine:
    """One node's replication protocol. See the module docstring for the contract."""

    def __init__(
        self,
        replica: Replica,
        membership: Membership,
        config: ProtocolConfig,
        *,
        rng: random.Random,
        seeds: Sequence[str] = (),
        advertise: str = "",
        name: str = "",
        now: Now,
        canaries: frozenset[Canary] = frozenset(),
        speaks: Speaks | None = None,
    ) -> None:
        self.replica = replica
        self.membership = membership
        self.config = config
        self.rng = rng
        self.advertise = advertise
        self.name = name
        self.boot_nonce = membership.me.boot_nonce
        # Test-only switches that bring back fixed bugs, so the fuzzer can prove it finds them.
        self.canaries = canaries
        self.stats = ReplicationStats()
        # What the driver gets from ``ready()``: the components' outputs (``Services``).
        self.outbox = Outbox(config.rpc_timeout_ms)
        self.fence = ClockFence(config.max_clock_offset_ms, enforce=config.fence_clock)
        self.readiness = Readiness(self.fence)
        self.gc = GarbageCollection(
            config.gc_grace_ms, config.housekeeping_interval_ms, lambda: self.node_id
        )
        replica.purge_rule = self.gc.rule
        services = Services(
            replica,
            membership,
            config,
            rng,
            self.stats,
            canaries,
            send=self.outbox.send,
            reply=self.outbox.reply,
            want_durable=self.outbox.want_durable,
            notice=self.outbox.notice,
            serving=lambda: self.serving,
            become_serving=self.become_serving,
            clamp_coverage=self._clamp_coverage,
            time_for_records=self.readiness.time_for_records,
            takes_records=lambda member: self.envelopes.refusing.get(member) != DISK_FULL_REASON,
        )
        # What this node speaks to its peers (protocol versions, features).
        self.versions = Versions(services, speaks or this_node())
        self.anti_entropy = AntiEntropy(services)
        self.own_writes = OwnWrites(services, self.anti_entropy.catch_up)
        self.envelopes = Envelopes(
            services,
            advertise=advertise,
            name=name,
            speaks=self.versions.speaks,
            came_back=self._came_back,
            behind_on_own_writes=self.own_writes.behind,
            removed=self.removed,
            refuses_writes=lambda: self.readiness.refuses_writes,
            started=now,
        )
        self.outbox.make_envelope = self.envelopes.make
        self.gossip = Gossip(services, fetching_snapshot=lambda: bool(self.snapshots.fetching))
        self.probing = Probing(services, self.fence)
        self.joining = Joining(
            services,
            tuple(seeds),
            now,
            advertise=advertise,
            dispatch=self.dispatch,
            joined=self._joined_through,
            catching_up=self._catching_up,
            stop_for_duplicate=self.stop_for_duplicate,
        )
        self.audits = AuditRounds(services)
        self.sweeps = SweepRounds(services)
        self.snapshots = SnapshotJoin(
            services,
            fetch=self.outbox.fetch_snapshot,
            stop_for_install=self.stop_for_install,
            fall_back_to=self._fall_back_to,
        )
        # The components with timers and answers (Never: each answers its own kind of
        # request, and ``dispatch`` knows which); ``tick`` runs them in protocol order.
        self.components: tuple[Component[Never], ...] = (
            self.gossip,
            self.anti_entropy,
            self.probing,
            self.joining,
            self.audits,
            self.snapshots,
        )
        self.housekeeping = Housekeeping(
            config,
            replica,
            membership,
            self.envelopes,
            self.gc,
            self.readiness,
            self.outbox,
            joining=self.joining,
            snapshots=self.snapshots,
            canaries=canaries,
        )
        self.serving = self.joining.alone_from_start()
        self._stopped = False
        self._removed = False
        if self.serving:
            self.outbox.notice(NoticeKind.READY, "no seeds and no known members: a new cluster")

    @property
    def node_id(self) -> int:
        return self.replica.node_id

    @property
    def verdict(self) -> FenceVerdict:
        """The clock fence's latest verdict."""
        return self.readiness.verdict

    @property
    def ready_for_clients(self) -> bool:
        """Serving clients: joined (or alone) and its wall clock not fenced."""
        return self.serving and not self.readiness.verdict.wall_fenced

    # ---- the contract ---------------------------------------------------

    def step(self, message: Inbound | Response, now: Now) -> None:
        if isinstance(message, Response):
            continuation = self.outbox.answered(message.message_id)
            if continuation is None:
                return  # an answer after its call was reported failed: ignore it
            refusal = self.versions.screen(message.envelope, message.body)
            if refusal is None:
                refusal = self.envelopes.absorb(message.envelope, now)
            if refusal is not None:
                failed = Failed(message.message_id, failure_cause(refusal), refusal.message)
                continuation(failed, now)
                return
            continuation(message, now)
            return
        if self._stopped:
            self.outbox.reply(
                message.token, Refusal(RefusalCode.UNAVAILABLE, "this node is stopping"), to=0
            )
            return
        refusal = self.versions.screen(message.envelope, message.body)
        if refusal is not None:
            self.outbox.reply(message.token, refusal, to=0)
            return
        self.joining.receive(message, now)

    def dispatch(self, message: Inbound, now: Now) -> None:
        """Handle a request whose sender passed the duplicate-id check (see Joining)."""
        refusal = self.envelopes.absorb(message.envelope, now)
        if refusal is not None:
            self.outbox.reply(message.token, refusal, to=message.envelope.sender)
            return
        body = message.body
        token, sender = message.token, message.envelope.sender
        if self.readiness.disk_full and isinstance(body, Push) and (body.records or body.coverage):
            # The pusher queues them again; anti-entropy brings what it drops.
            self.outbox.reply(token, Refusal(RefusalCode.UNAVAILABLE, DISK_FULL_REASON), to=sender)
            return
        if isinstance(body, Push):
            self.gossip.answer(token, sender, body, now)
        elif isinstance(body, Exchange):
            self.anti_entropy.answer(token, sender, body, now)
        elif isinstance(body, Ping):
            self.probing.answer(token, sender, body, now)
        elif isinstance(body, Join):
            self.joining.answer(token, sender, body, now)
        elif isinstance(body, Audit):
            self.audits.answer(token, sender, body, now)
        elif isinstance(body, Admit):
            self.snapshots.answer(token, sender, body, now)

    def tick(self, now: Now) -> None:
        if self._stopped:
            return
        replica = self.replica
        writable = not self.readiness.disk_full
        # Deferred records and expirations go by the peers' time while the clock is fenced.
        for_records = self.readiness.time_for_records(now)
        while writable and replica.apply_deferred(for_records.wall_ms):
            pass
        self.housekeeping.tick(now)
        self.joining.tick(now)
        self.probing.tick(now)
        wrote = self.replica.watermarks.get
        expired = self.membership.tick(now.mono_ms, lambda member: wrote(member) > 0)
        if self.serving and not self.snapshots.fetching:
            # A node still joining neither knows the cluster nor may write (a copy it
            # installs would drop the retirement): it times nobody out until it serves.
            for member_id in expired:
                self.outbox.notice(NoticeKind.MEMBER_TIMED_OUT, "", member=f"{member_id:016x}")
                self.remove_member(member_id, now)
        self.gossip.tick(now)
        self.snapshots.tick(now)
        if self.snapshots.fetching or not writable:
            # A copy replaces whatever this node would take meanwhile; a full disk takes
            # nothing (anti-entropy catches up once it has room).
            return
        self.own_writes.caught_up()
        self.anti_entropy.tick(now)
        self.audits.tick(now)
        self.sweeps.tick(for_records)

    def propose(self, writes: Sequence[Write], now: Now) -> list[Applied]:
        """Apply client writes; the driver waits for their tickets to be durable."""
        self.check_writable()
        self.gc.before_write(now.mono_ms, self.housekeeping.gc_inputs)
        return self.replica.write_many(writes, now.wall_ms)

    def propose_all(self, writes: Sequence[Write], now: Now) -> int:
        """``propose`` for a caller that waits for all the writes at once (a bulk write):
        returns only the ticket of the last (0 for none)."""
        self.check_writable()
        self.gc.before_write(now.mono_ms, self.housekeeping.gc_inputs)
        return self.replica.write_all(writes, now.wall_ms)

    def ready(self) -> Ready:
        return self.outbox.take(self.replica.is_durable, self._next_tick_ms())

    def advance(self, done: Done, now: Now) -> None:
        if done.synced_ticket:
            self.replica.mark_durable(done.synced_ticket)
            self.anti_entropy.synced(now)
            self.snapshots.synced()
        if done.disk_full is not None:
            self.readiness.disk_full = done.disk_full
            if done.disk_full and self.replica.records_held > 0:
                # It can take nothing to catch up with: it serves what it holds, read-only.
                self.become_serving("disk full: serving what this node holds, read-only")
        if done.snapshot_fetched:
            self.snapshots.fetched(now)
        elif done.snapshot_failed:
            self.snapshots.fall_back(done.snapshot_failed, now)
        for failure in done.failed:
            continuation = self.outbox.answered(failure.message_id)
            if continuation is None:
                continue
            self.stats.calls_failed += 1
            if failure.cause is FailureCause.REMOVED:
                self.removed(failure.detail or "this node was removed from the cluster")
            elif failure.cause is FailureCause.DUPLICATE_ID:
                self.stop_for_duplicate(failure.detail)
            elif failure.cause is FailureCause.INCOMPATIBLE:
                self.versions.refused_by(failure.detail)
            continuation(failure, now)

    # ---- services for the components -------------------------------------

    def become_serving(self, reason: str) -> None:
        if not self.serving:
            self.serving = True
            self.outbox.notice(NoticeKind.READY, reason)

    def removed(self, message: str) -> None:
        if not self._removed:
            self._removed = True
            self._stopped = True
            self.outbox.notice(NoticeKind.REMOVED, message)

    def stop_for_install(self) -> None:
        self._stopped = True
        self.snapshots.refuse_waiting()

    def stop_for_duplicate(self, message: str) -> None:
        if not self._stopped:
            self._stopped = True
            self.outbox.notice(NoticeKind.DUPLICATE_ID, message)

    # ---- client-facing decisions -----------------------------------------

    def check_writable(self) -> None:
        """Refuse client writes while the clock is fenced or the disk is full, while this
        node catches up on its own writes (a stale copy of its disk), or while it stops."""
        self.readiness.check_writable()
        if self._stopped:
            raise Unavailable("this node is stopping")
        self.own_writes.check_writable()

    def check_readable(self) -> None:
        """Refuse client reads while the clock is fenced (clients read elsewhere)."""
        self.readiness.check_readable()

    def catch_up_with(self, wanted: Mapping[int, int], now: Now) -> None:
        """A session read waits for these writes (origin -> seq): pull them now."""
        if not self._stopped and not self.snapshots.fetching:
            self.anti_entropy.catch_up_origins(wanted, now)

    def lag_bound_ms(self, mono_ms: int) -> int | None:
        """The most this node may lag any member that may be alive (None: it cannot say);
        see staleness and ``Membership.may_be_alive``."""
        members = self.membership.may_be_alive()
        return self.envelopes.staleness.bound_ms(mono_ms, members, self.replica.watermarks.get)

    def remove_member(self, member_id: int, now: Now) -> Applied:
        """Retire ``member_id`` for ever: a replicated record, then the member table."""
        applied = self.replica.retire(member_id, now.wall_ms)
        self.membership.remove(member_id, now.mono_ms)
        self.gossip.forget(member_id)
        self.versions.forget(member_id)
        self.outbox.want_durable(applied.ticket)
        return applied

    def leave(self, now: Now) -> list[Outbound]:
        """Stop taking part and tell the live peers this node left (down, not gone)."""
        self._stopped = True
        self.membership.leave()
        for peer in self.membership.up_peers():
            self.outbox.send(
                peer,
                Push(),
                lambda _answer, _now: None,
                now,
                timeout_ms=self.config.leave_timeout_ms,
                all_members=True,
            )
        return self.ready().messages

    # ---- between components (none calls a sibling: the engine routes) ------------

    def _clamp_coverage(self, coverage: Iterable[Coverage]) -> list[Coverage]:
        return self.envelopes.clamp_coverage(coverage)

    def _came_back(self, member_id: int, now: Now) -> None:
        """A member heard from again after being suspect, dead or left: catch up with it
        (not while fetching a copy: a synchronisation completing then would make this node
        serve, and take writes, before an install that drops them)."""
        if not self.snapshots.fetching:
            self.anti_entropy.catch_up(member_id, now)

    def _catching_up(self) -> bool:
        """A synchronisation or a snapshot is under way (so not serving alone yet)."""
        return self.anti_entropy.session is not None or bool(self.snapshots.fetching)

    def _joined_through(self, peer: Member, now: Now) -> None:
        """A seed answered a Join through ``peer``: take a snapshot from it, or synchronise."""
        if self.serving or self.snapshots.fetching:
            return
        if self.snapshots.wants_snapshot() and self.versions.offers(peer.id, Feature.SNAPSHOT_JOIN):
            self.snapshots.ask(peer, now)
        elif self.anti_entropy.session is None:
            self.anti_entropy.start(peer, now, push_back=True)

    def _fall_back_to(self, peer: Member, now: Now) -> None:
        """No snapshot after all: synchronise with ``peer`` instead, unless serving."""
        if not self.serving and self.anti_entropy.session is None:
            self.anti_entropy.start(peer, now, push_back=True)

    def _next_tick_ms(self) -> int:
        return min(self.sweeps.due_ms(), *(component.due_ms() for component in self.components))
