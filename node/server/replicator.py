"""Drives replication over gRPC: push senders, anti-entropy, SWIM probes, audit, ticks.

The decisions live below, sans-I/O: what to apply and what to answer in the
replica, who is alive in Membership, which records each peer gets in
PushQueues, when to purge in SafeGc, whether to fence in ClockFence. This
module only moves messages and keeps time:

- push: every --gossip-interval-ms, records that became durable are queued for
  --fanout random live peers; each peer has at most one Push in flight.
- anti-entropy: every --anti-entropy-interval-ms, an Exchange with a random
  live peer; a cut-short answer is followed by another round at once; then
  whatever the peer lacks is pushed back with its coverage.
- SWIM: every --probe-interval-ms a Ping to one member, indirect pings through
  --indirect-probes others if it fails, suspicion, death (see Membership).
- ticks: deferred records whose time came, member timers, GC, clock fence.
- audit: every --audit-interval-ms, compare buckets with one peer and repair.

Every message carries an Envelope (sender, boot nonce, HLC, member updates,
durable watermarks); ``absorb`` takes one in, from requests and responses alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
import structlog

from rumor.node.core import audit
from rumor.node.core.clock_fence import ClockFence, FenceVerdict, ntp_offset
from rumor.node.core.errors import MemberRemoved, ReplicationTimeout, Unavailable
from rumor.node.core.gc import SafeGc
from rumor.node.core.membership import Member, State
from rumor.node.replication import Replica
from rumor.node.replication.delta import AuditEntry, Coverage, WireRecord
from rumor.node.replication.membership import Membership
from rumor.node.replication.push_queues import PushQueues, plan_pushes
from rumor.node.server.clock import WallClock
from rumor.node.server.faults import FaultRules
from rumor.node.server.group_commit import GroupCommit
from rumor.v1 import replication_pb2 as pb

log = structlog.get_logger(__name__)

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 128 * 1024 * 1024),
    ("grpc.max_send_message_length", 128 * 1024 * 1024),
]
SERVICE = "/rumor.v1.Replication/"
MAX_FOLLOW_UP_ROUNDS = 1000
MAX_AUDIT_ENTRIES = 200_000
APPLY_SLICE = 2000  # received records applied per event-loop step
RECONNECT_SHARE = 0.25  # of probe rounds that also try a dead member


@dataclass(frozen=True, slots=True)
class ReplicationSettings:
    advertise: str
    seeds: tuple[str, ...] = ()
    name: str = ""
    gossip_interval_ms: int = 10
    fanout: int = 4
    anti_entropy_interval_ms: int = 1000
    probe_interval_ms: int = 1000
    probe_timeout_ms: int = 500
    indirect_probes: int = 3
    audit_interval_ms: int = 600_000
    tick_interval_ms: int = 50
    gc_grace_ms: int = 60_000
    join_timeout_ms: int = 5000
    rpc_timeout_ms: int = 10_000
    min_replicas_timeout_ms: int = 5000


def now_monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def member_to_pb(member: Member) -> pb.Member:
    return pb.Member(
        id=member.id,
        address=member.address,
        incarnation=member.incarnation,
        state=int(member.state),  # type: ignore[arg-type]
        boot_nonce=member.boot_nonce,
        name=member.name,
    )


def member_from_pb(message: pb.Member) -> Member:
    return Member(
        message.id,
        message.address,
        message.incarnation,
        State(message.state),
        message.boot_nonce,
        message.name,
    )


def record_to_pb(record: WireRecord) -> pb.Record:
    return pb.Record(
        namespace=record.namespace, key=record.key, header=record.header, value=record.value
    )


def record_from_pb(message: pb.Record) -> WireRecord:
    return WireRecord(message.namespace, message.key, message.header, message.value)


def coverage_to_pb(claim: Coverage) -> pb.Coverage:
    return pb.Coverage(
        origin=claim.origin, base=claim.base, last=claim.last, complete=claim.complete
    )


def coverage_from_pb(message: pb.Coverage) -> Coverage:
    return Coverage(message.origin, message.base, message.last, message.complete)


class Refused(Exception):
    """A peer message this node will not take (blocked by a fault rule)."""


@dataclass(slots=True)
class ReplicationStats:
    pushes_sent: int = 0
    pushes_failed: int = 0
    push_bytes: int = 0
    push_bytes_received: int = 0
    records_applied_remote: int = 0
    exchanges: int = 0
    exchange_bytes: int = 0
    last_exchange_bytes: int = 0
    audit_rounds: int = 0


@dataclass(slots=True)
class _Link:
    channel: grpc.aio.Channel
    methods: dict[str, Any] = field(default_factory=dict)


class Replicator:
    def __init__(
        self,
        replica: Replica,
        membership: Membership,
        commit: GroupCommit,
        clock: WallClock,
        settings: ReplicationSettings,
        *,
        fence: ClockFence,
        faults: FaultRules,
        on_removed: Callable[[str], None],
        rng: random.Random | None = None,
    ) -> None:
        self.replica = replica
        self.membership = membership
        self.commit = commit
        self.clock = clock
        self.settings = settings
        self.fence = fence
        self.faults = faults
        self.on_removed = on_removed
        self.rng = rng or random.Random()
        self.boot_nonce = membership.me.boot_nonce
        self.queues = PushQueues()
        self.gc = SafeGc(settings.gc_grace_ms)
        replica.purge_rule = self.gc.rule
        self.verdict = FenceVerdict(False, False, 0.0)
        self.ready = not settings.seeds and not membership.peers()
        self.stats = ReplicationStats()
        self._links: dict[str, _Link] = {}
        self._in_flight: set[int] = set()
        self._senders: set[asyncio.Task[Any]] = set()
        self._sync_lock = asyncio.Lock()
        self._vectors_changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._started_ms = now_monotonic_ms()
        self._warned_clock = False
        self.on_ready: Callable[[], Awaitable[None]] | None = None
        self.channel_credentials: grpc.ChannelCredentials | None = None  # TLS to peers
        self.call_metadata: tuple[tuple[str, str], ...] = ()  # e.g. the cluster secret

    # ---- lifecycle ------------------------------------------------------

    def configure(self, settings: ReplicationSettings) -> None:
        """Settings known only once the server is bound (the advertised address)."""
        self.settings = settings
        self.gc.grace_ms = settings.gc_grace_ms

    def start(self) -> None:
        loops: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("push", self._push_loop),
            ("anti-entropy", self._anti_entropy_loop),
            ("probe", self._probe_loop),
            ("tick", self._tick_loop),
            ("audit", self._audit_loop),
        ]
        self._tasks = [
            asyncio.create_task(self._guard(name, loop), name=name) for name, loop in loops
        ]

    async def _guard(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("replication.loop_failed", loop=name)
                await asyncio.sleep(0.5)

    async def stop_loops(self) -> None:
        for task in [*self._tasks, *self._senders]:
            task.cancel()
        for task in [*self._tasks, *self._senders]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def stop(self) -> None:
        await self.stop_loops()
        for link in self._links.values():
            await link.channel.close(None)
        self._links.clear()

    async def leave(self) -> None:
        """Stop gossiping and announce "left" to the live peers (best effort, briefly)."""
        await self.stop_loops()
        self.membership.leave()
        peers = self.membership.up_peers()
        request = pb.PushRequest(envelope=self.envelope(all_members=True))
        await asyncio.gather(
            *(self._call(peer, "Push", request, pb.PushResponse, timeout_s=2.0) for peer in peers),
            return_exceptions=True,
        )

    # ---- envelopes ------------------------------------------------------

    def envelope(self, *, all_members: bool = False) -> pb.Envelope:
        members = self.membership.all() if all_members else self.membership.updates()
        return pb.Envelope(
            sender=self.replica.node_id,
            boot_nonce=self.boot_nonce,
            hlc=self.replica.clock.last,
            members=[member_to_pb(m) for m in members],
            watermarks=self.replica.own_watermarks(),
            address=self.settings.advertise,
            name=self.settings.name,
        )

    def absorb(self, envelope: pb.Envelope) -> None:
        """Take in a peer's envelope (from a request or a response)."""
        sender = envelope.sender
        if sender == 0:
            return
        if self.replica.is_retired(sender):
            raise MemberRemoved(
                f"node {sender:016x} was removed from the cluster; wipe its data directory"
                " and start it again to join as a new node"
            )
        now = now_monotonic_ms()
        self.replica.observe_clock(envelope.hlc, self.clock.wall_ms())
        was = self.membership.state_of(sender)
        self.membership.heard_from(
            sender, envelope.address, envelope.boot_nonce, now, envelope.name
        )
        if was is not None and was is not State.ALIVE:
            self._catch_up_with(sender)
        for update in envelope.members:
            self.membership.merge(member_from_pb(update), now)
        if envelope.watermarks:
            self.membership.vectors[sender] = dict(envelope.watermarks)
            self._vectors_changed.set()
        if self.membership.removed_me:
            self.on_removed(
                f"this node ({self.replica.node_id:016x}) was removed from the cluster;"
                " wipe its data directory and start it again to join as a new node"
            )

    def check_inbound(self, envelope: pb.Envelope) -> None:
        if self.faults.blocks_inbound(envelope.sender) or self.faults.drops():
            raise Refused("blocked by fault injection")

    # ---- outbound calls -------------------------------------------------

    def _link(self, address: str) -> _Link:
        link = self._links.get(address)
        if link is None:
            channel = (
                grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
                if self.channel_credentials is None
                else grpc.aio.secure_channel(
                    address, self.channel_credentials, options=CHANNEL_OPTIONS
                )
            )
            link = _Link(channel)
            self._links[address] = link
        return link

    async def _call(
        self,
        peer: Member,
        method: str,
        request: Any,
        response_class: Any,
        *,
        timeout_s: float | None = None,
    ) -> Any | None:
        """One unary call to a peer; None if it failed (or a fault rule ate it)."""
        if self.faults.blocks_outbound(peer.id) or self.faults.drops():
            return None
        delay = self.faults.delay_s()
        if delay:
            await asyncio.sleep(delay)
        link = self._link(peer.address)
        callable_ = link.methods.get(method)
        if callable_ is None:
            callable_ = link.channel.unary_unary(
                SERVICE + method,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=response_class.FromString,
            )
            link.methods[method] = callable_
        timeout = timeout_s if timeout_s is not None else self.settings.rpc_timeout_ms / 1000
        try:
            response = await callable_(request, timeout=timeout, metadata=self.call_metadata)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION and "removed" in (
                error.details() or ""
            ):
                self.on_removed(error.details() or "this node was removed from the cluster")
            return None
        try:
            self.absorb(response.envelope)
        except MemberRemoved:
            return None
        return response

    def _catch_up_with(self, member_id: int) -> None:
        """A member is back (healed partition, restart): synchronise with it now."""
        member = self.membership.members.get(member_id)
        if member is None or not member.up or not member.address:
            return
        # Pull only: the member pulls from us too, and two pushes of the same backlog
        # would double the bytes of a catch-up.
        task = asyncio.create_task(self.synchronise(member, push_back=False))
        self._senders.add(task)
        task.add_done_callback(self._senders.discard)

    # ---- push -----------------------------------------------------------

    async def _push_loop(self) -> None:
        interval = self.settings.gossip_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            self.flush_pushes()

    def flush_pushes(self) -> None:
        records = self.replica.take_ready_to_push()
        peers = self.membership.up_peers()
        if records and peers:
            peer_ids = [p.id for p in peers]
            for targets, group in plan_pushes(records, peer_ids, self.settings.fanout, self.rng):
                self.queues.offer(group, targets)
        for peer in peers:
            if peer.id not in self._in_flight and self.queues.pending(peer.id):
                self._in_flight.add(peer.id)
                task = asyncio.create_task(self._send_push(peer))
                self._senders.add(task)
                task.add_done_callback(self._senders.discard)

    async def _send_push(self, peer: Member) -> None:
        try:
            batch = self.queues.take(peer.id)
            if not batch:
                return
            request = pb.PushRequest(
                envelope=self.envelope(), records=[record_to_pb(r) for r in batch]
            )
            response = await self._call(peer, "Push", request, pb.PushResponse)
            if response is None:
                self.stats.pushes_failed += 1
            else:
                self.stats.pushes_sent += 1
                self.stats.push_bytes += request.ByteSize()
        finally:
            self._in_flight.discard(peer.id)

    async def handle_push(self, request: pb.PushRequest) -> pb.PushResponse:
        self.check_inbound(request.envelope)
        self.absorb(request.envelope)
        if not self.ready and not request.coverage:
            return pb.PushResponse(envelope=self.envelope(), not_ready=True)
        self.stats.push_bytes_received += request.ByteSize()
        outcome = self.replica.apply_remote(
            [record_from_pb(r) for r in request.records],
            self.clock.wall_ms(),
            [coverage_from_pb(c) for c in request.coverage],
        )
        self.stats.records_applied_remote += outcome.new
        # Answered before the WAL sync: nothing relies on a push (this node advertises
        # durable watermarks only, and forwards records once durable), so the sync
        # is requested, not awaited, and serves the pushes that arrive meanwhile too.
        if not self.replica.is_durable(outcome.ticket):
            sync = asyncio.create_task(self.commit.durable(outcome.ticket))
            self._senders.add(sync)
            sync.add_done_callback(self._senders.discard)
        return pb.PushResponse(envelope=self.envelope())

    # ---- anti-entropy ---------------------------------------------------

    async def _anti_entropy_loop(self) -> None:
        await self.join()
        interval = self.settings.anti_entropy_interval_ms / 1000
        while True:
            peers = self.membership.up_peers()
            if peers:
                await self.synchronise(self.rng.choice(peers))
            await asyncio.sleep(interval)

    async def synchronise(self, peer: Member, *, push_back: bool = True) -> bool:
        """Exchange rounds with ``peer`` until an answer is complete; False if it failed.

        One synchronisation at a time: concurrent pulls of one backlog from two
        peers would fetch it twice.
        """
        async with self._sync_lock:
            self.replica.begin_sync()
            for _ in range(MAX_FOLLOW_UP_ROUNDS):
                complete = await self.exchange(peer, push_back=push_back)
                if complete is None:
                    return False
                if complete:
                    return True
        return False

    async def exchange(self, peer: Member, *, push_back: bool = True) -> bool | None:
        """One push-pull round: pull what we lack, push back what the peer lacks."""
        request = pb.ExchangeRequest(
            envelope=self.envelope(all_members=True), digest=self.replica.sync_digest()
        )
        response = await self._call(peer, "Exchange", request, pb.ExchangeResponse)
        if response is None:
            return None
        self.stats.exchanges += 1
        size = response.ByteSize()
        self.stats.exchange_bytes += size
        self.stats.last_exchange_bytes = size
        coverage = [coverage_from_pb(c) for c in response.coverage]
        records = [record_from_pb(r) for r in response.records]
        # Apply a large answer in slices, letting the event loop breathe between them;
        # the claims go with the last slice.
        while len(records) > APPLY_SLICE:
            part, records = records[:APPLY_SLICE], records[APPLY_SLICE:]
            self.stats.records_applied_remote += self.replica.apply_remote(
                part, self.clock.wall_ms()
            ).new
            await asyncio.sleep(0)
        outcome = self.replica.apply_remote(records, self.clock.wall_ms(), coverage, session=True)
        self.stats.records_applied_remote += outcome.new
        await self.commit.durable(outcome.ticket)
        complete = all(claim.complete for claim in coverage)
        if complete and not self.ready:
            await self._become_ready("first complete exchange")
        marks = dict(response.envelope.watermarks)
        delta = self.replica.push_back_for(marks) if push_back else None
        if delta is not None:
            push = pb.PushRequest(
                envelope=self.envelope(),
                records=[record_to_pb(r) for r in delta.records],
                coverage=[coverage_to_pb(c) for c in delta.coverage],
            )
            await self._call(peer, "Push", push, pb.PushResponse)
        return complete

    def handle_exchange(self, request: pb.ExchangeRequest) -> pb.ExchangeResponse:
        self.check_inbound(request.envelope)
        self.absorb(request.envelope)
        # One synchronous step: the watermarks advertised and the records sent agree.
        delta = self.replica.delta_for(dict(request.digest or request.envelope.watermarks))
        return pb.ExchangeResponse(
            envelope=self.envelope(),
            records=[record_to_pb(r) for r in delta.records],
            coverage=[coverage_to_pb(c) for c in delta.coverage],
        )

    async def _become_ready(self, reason: str) -> None:
        self.ready = True
        log.info("node.serving", reason=reason)
        if self.on_ready is not None:
            await self.on_ready()

    # ---- joining --------------------------------------------------------

    async def join(self) -> None:
        """Join through the seeds (and known members); ready after a complete exchange."""
        if self.ready:
            return
        deadline = now_monotonic_ms() + self.settings.join_timeout_ms
        while not self.ready:
            contacts = [
                Member(0, seed) for seed in self.settings.seeds
            ] + self.membership.up_peers()
            self.rng.shuffle(contacts)
            for contact in contacts:
                if contact.address == self.settings.advertise:
                    continue
                request = pb.JoinRequest(envelope=self.envelope(all_members=True))
                response = await self._call(
                    contact, "Join", request, pb.JoinResponse, timeout_s=2.0
                )
                if response is None:
                    continue
                now = now_monotonic_ms()
                for member in response.members:
                    self.membership.merge(member_from_pb(member), now)
                peer = self.membership.members.get(response.envelope.sender)
                if peer is not None and await self.synchronise(peer):
                    return
            if now_monotonic_ms() > deadline:
                await self._become_ready("no seed answered; serving alone until one does")
                return
            await asyncio.sleep(0.2)

    async def handle_join(self, request: pb.JoinRequest) -> pb.JoinResponse:
        self.check_inbound(request.envelope)
        joiner = request.envelope
        known = self.membership.members.get(joiner.sender)
        if (
            known is not None
            and known.up
            and known.boot_nonce != joiner.boot_nonce
            and known.address != joiner.address
            and await self._still_running(known)
        ):
            raise MemberRemoved(
                f"node id {joiner.sender:016x} is already in use by a live node at"
                f" {known.address}; a copied data directory? wipe this one and start again"
            )
        self.absorb(joiner)
        return pb.JoinResponse(
            envelope=self.envelope(), members=[member_to_pb(m) for m in self.membership.all()]
        )

    async def _still_running(self, member: Member) -> bool:
        response = await self._call(
            member,
            "Ping",
            pb.PingRequest(envelope=self.envelope()),
            pb.PingResponse,
            timeout_s=self.settings.probe_timeout_ms / 1000,
        )
        return response is not None and response.envelope.boot_nonce == member.boot_nonce

    # ---- SWIM probes and clock offsets ----------------------------------

    def read_ms(self) -> int:
        return self.replica.clock.read_ms(self.clock.wall_ms())

    async def _probe_loop(self) -> None:
        interval = self.settings.probe_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            target = self.membership.next_probe_target(self.rng)
            if target is not None:
                await self.probe(target)
            # Now and then, knock on a dead member's door: partitions heal, nodes restart.
            down = self.membership.reconnect_target(self.rng)
            if down is not None and (target is None or self.rng.random() < RECONNECT_SHARE):
                await self.ping(down, self.settings.probe_timeout_ms / 1000)

    async def probe(self, target: Member) -> bool:
        timeout = self.settings.probe_timeout_ms / 1000
        if await self.ping(target, timeout):
            self.membership.probe_succeeded(target.id, now_monotonic_ms())
            return True
        helpers = [p for p in self.membership.up_peers() if p.id != target.id]
        helpers = self.rng.sample(helpers, min(self.settings.indirect_probes, len(helpers)))
        request = pb.PingRequest(
            envelope=self.envelope(), probe_target=target.id, target_address=target.address
        )
        answers = await asyncio.gather(
            *(
                self._call(h, "Ping", request, pb.PingResponse, timeout_s=2 * timeout)
                for h in helpers
            )
        )
        if any(answer is not None and answer.target_alive for answer in answers):
            self.membership.probe_succeeded(target.id, now_monotonic_ms())
            return True
        self.membership.probe_failed(target.id, now_monotonic_ms())
        self.fence.forget(target.id)
        return False

    async def ping(self, target: Member, timeout_s: float) -> bool:
        sent = self.read_ms()
        response = await self._call(
            target,
            "Ping",
            pb.PingRequest(envelope=self.envelope(), sent_ms=sent),
            pb.PingResponse,
            timeout_s=timeout_s,
        )
        if response is None:
            return False
        received = self.read_ms()
        if response.received_ms:
            self.fence.record(
                target.id, ntp_offset(sent, response.received_ms, response.replied_ms, received)
            )
        return True

    async def handle_ping(self, request: pb.PingRequest) -> pb.PingResponse:
        received = self.read_ms()
        self.check_inbound(request.envelope)
        self.absorb(request.envelope)
        alive = False
        if request.probe_target:
            target = self.membership.members.get(request.probe_target) or Member(
                request.probe_target, request.target_address
            )
            alive = await self.ping(target, self.settings.probe_timeout_ms / 1000)
        return pb.PingResponse(
            envelope=self.envelope(),
            received_ms=received,
            replied_ms=self.read_ms(),
            target_alive=alive,
        )

    # ---- ticks: deferred records, member timers, GC, fencing ------------

    async def _tick_loop(self) -> None:
        interval = self.settings.tick_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            await self.tick()

    async def tick(self) -> None:
        now = now_monotonic_ms()
        while self.replica.apply_deferred(self.clock.wall_ms()):
            pass
        for member_id in self.membership.tick(now):
            log.warning("member.timed_out", member=f"{member_id:016x}")
            await self.remove_member(member_id)
        vectors = {
            member_id: self.membership.vectors.get(member_id, {})
            for member_id in self.membership.counted()
        }
        vectors[self.replica.node_id] = self.replica.own_watermarks()
        self.gc.update(vectors, now)
        self.verdict = self.fence.verdict(p.id for p in self.membership.up_peers())
        if self.verdict.warn and not self._warned_clock:
            log.warning("clock.offset_large", offset_ms=round(self.verdict.offset_ms))
        self._warned_clock = self.verdict.warn or self.verdict.fenced

    def check_clock(self) -> None:
        """Refuse client writes while this node's clock is fenced."""
        if self.verdict.fenced:
            raise Unavailable(f"clock offset too large: {self.verdict.offset_ms:+.0f} ms")

    async def remove_member(self, member_id: int) -> None:
        """Retire ``member_id`` for ever: a replicated record, then the member table."""
        applied = self.replica.retire(member_id, self.clock.wall_ms())
        self.membership.remove(member_id, now_monotonic_ms())
        self.queues.forget(member_id)
        await self.commit.durable(applied.ticket)

    # ---- min_replicas ---------------------------------------------------

    def replicas_holding(self, seq: int) -> int:
        me = self.replica.node_id
        return 1 + sum(
            1
            for member_id, vector in self.membership.vectors.items()
            if member_id != me
            and vector.get(me, 0) >= seq
            and self.membership.state_of(member_id) is not State.REMOVED
        )

    async def wait_for_replicas(self, seq: int, wanted: int) -> None:
        """Wait until ``wanted`` nodes (this one included) hold own write ``seq``."""
        members = len(self.membership.counted())
        if members < wanted:
            raise ReplicationTimeout(
                f"the write is applied locally, but the cluster has {members} member(s),"
                f" fewer than min_replicas={wanted}"
            )
        deadline = time.monotonic() + self.settings.min_replicas_timeout_ms / 1000
        while (held := self.replicas_holding(seq)) < wanted:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReplicationTimeout(
                    f"the write is applied locally and still spreading: {held} of {wanted}"
                    f" replicas confirmed it within {self.settings.min_replicas_timeout_ms} ms"
                )
            self._vectors_changed.clear()
            self.flush_pushes()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._vectors_changed.wait(), min(remaining, 0.05))

    # ---- audit ----------------------------------------------------------

    async def _audit_loop(self) -> None:
        interval = self.settings.audit_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            peers = self.membership.up_peers()
            if peers and self.ready:
                await self.audit(self.rng.choice(peers))

    async def audit(self, peer: Member) -> int:
        """Compare buckets with ``peer``; fetch and apply what we should hold. Returns repairs."""
        self.stats.audit_rounds += 1
        request = pb.AuditRequest(
            envelope=self.envelope(), buckets=audit.pack_buckets(self.replica.audit_buckets)
        )
        response = await self._call(peer, "Audit", request, pb.AuditResponse)
        if response is None or not response.differing:
            return 0
        entries = [
            AuditEntry(e.record_key, e.hlc, e.origin, e.seq, e.tombstone, e.expiration)
            for e in response.entries
        ]
        wanted = self.replica.audit_wanted(entries, self.clock.now_s())
        if not wanted:
            return 0
        fetch = pb.AuditRequest(envelope=self.envelope(), fetch=wanted)
        fetched = await self._call(peer, "Audit", fetch, pb.AuditResponse)
        if fetched is None:
            return 0
        repaired = self.replica.apply_repairs([record_from_pb(r) for r in fetched.records])
        if repaired:
            log.warning("audit.repaired", peer=f"{peer.id:016x}", records=repaired)
        return repaired

    def handle_audit(self, request: pb.AuditRequest) -> pb.AuditResponse:
        self.check_inbound(request.envelope)
        self.absorb(request.envelope)
        response = pb.AuditResponse(envelope=self.envelope())
        if request.buckets:
            theirs = audit.unpack_buckets(request.buckets)
            differing = audit.differing(self.replica.audit_buckets, theirs)
            response.differing.extend(differing)
            if differing:
                for entry in self.replica.audit_entries(differing)[:MAX_AUDIT_ENTRIES]:
                    response.entries.append(
                        pb.AuditEntry(
                            record_key=entry.stored_key,
                            hlc=entry.hlc,
                            origin=entry.origin,
                            seq=entry.seq,
                            tombstone=entry.tombstone,
                            expiration=entry.expiration,
                        )
                    )
        if request.fetch:
            response.records.extend(record_to_pb(r) for r in self.replica.fetch(request.fetch))
        return response


def new_boot_nonce(wall_ms: int) -> int:
    """Boot time in the high bits, so a later boot of the same id compares greater."""
    return (wall_ms << 16) | int.from_bytes(os.urandom(2), "big")
