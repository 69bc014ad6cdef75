"""The gRPC driver of the protocol engine: a transport and a loop, no decisions.

It does what the engine's ``ready()`` says and reports back through
``step`` and ``advance``:

- a loop (``tick_loop``) calls ``engine.tick`` whenever a timer is due (at
  least every ``tick_interval_ms``), and the driver pumps ``ready()`` after
  it and after every input: each outbound request becomes a task on the
  transport whose answer is stepped in (or whose failure is advanced), each
  reply resolves the RPC waiting for it, a sync ticket goes to the group
  commit, each notice is logged or acted on (serving, stopping when removed
  or when another process holds this node's id);
- the group commit reports every finished sync, whoever asked for it (the
  engine or a client write), through the hook the driver built it with: the
  driver calls ``advance(synced)`` — the one place the replica is marked
  durable — and pumps, before the sync's writers are released;
- an inbound RPC is converted, stepped in with a token, and answered when
  its reply comes out of ``ready()``;
- a client request that waits for replication — a write for ``min_replicas``,
  a session read for its token's writes — waits in ``client_waits``, re-reading
  the engine's counts each time the driver has pumped;
- the disk guard says whether the disk is full (``disk_space``): each tick
  reports a change through ``advance``, and once the disk has room again
  every write so far is synced (a sync that failed for lack of space left
  them waiting).

Everything here is plumbing; anything that decides — who gets a push, when
to probe, what to answer — is in ``rumor.node.replication``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog

from rumor.node.core.errors import (
    IncompatiblePeer,
    InsufficientStorage,
    InvalidRequest,
    MalformedPeerMessage,
    MemberRemoved,
    Unavailable,
)
from rumor.node.replication import Applied, Replica
from rumor.node.replication.engine.components import ReplicationStats
from rumor.node.replication.engine.engine import Engine
from rumor.node.replication.engine.membership import Membership
from rumor.node.replication.engine.messages import (
    Done,
    Failed,
    Inbound,
    NoticeKind,
    Now,
    Outbound,
    Refusal,
    RefusalCode,
    Reply,
    SnapshotFetch,
)
from rumor.node.replication.engine.push_queues import PushQueues
from rumor.node.replication.replica.replica import Write
from rumor.node.server.driver.client_waits import ClientWaits
from rumor.node.server.driver.clock import WallClock, now_monotonic_ms
from rumor.node.server.driver.codec import reply_to_pb, request_from_pb
from rumor.node.server.driver.disk_space import DiskGuard
from rumor.node.server.driver.faults import FaultRules
from rumor.node.server.driver.group_commit import GroupCommit
from rumor.node.server.driver.notice_log import STOPPING, log_notice
from rumor.node.server.driver.peer_transport import Transport
from rumor.node.server.driver.tick_loop import TickLoop
from rumor.node.server.log_throttle import LogThrottle

log = structlog.get_logger(__name__)


class Refused(Exception):
    """A peer message this node will not take (blocked by a fault rule)."""


class EngineDriver:
    def __init__(
        self,
        engine: Engine,
        transport: Transport,
        commit: Callable[[Callable[[int], None]], GroupCommit],
        clock: WallClock,
        *,
        faults: FaultRules,
        on_stop: Callable[[str, NoticeKind], None],
        throttle: LogThrottle | None = None,
        now: Callable[[], Now] | None = None,
        on_readiness: Callable[[bool], Awaitable[None]] | None = None,
        download_snapshot: Callable[[str], Awaitable[object]] | None = None,
        disk: DiskGuard | None = None,
    ) -> None:
        self.engine = engine
        self.replica: Replica = engine.replica
        self.transport = transport
        self.clock = clock
        self.faults = faults
        self.on_stop = on_stop
        self.on_readiness = on_readiness  # ready changed: serving, fenced or back in range
        self.disk = disk  # says whether the disk is full (None: never, as for a test)
        # Downloads and verifies a peer's snapshot (by address); raises if it cannot.
        self.download_snapshot = download_snapshot
        self.throttle = throttle or LogThrottle(log)
        self._now = now  # a test's clock; the real one otherwise
        self._tokens = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Reply]] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self.tick_loop = TickLoop(self.tick_once, engine.config.tick_interval_ms, self._mono_ms)
        self.waits = ClientWaits(engine, self.now, self.pump, self.tick_loop.wake)
        self._sync_requested = 0  # the highest ticket a sync was started for
        self._stopped = False  # stop() ran: nothing is sent any more
        # The group commit, built around the hook it reports each finished sync to.
        self.commit = commit(self._synced)
        self._report_disk()  # a node that starts full takes no write from the first

    # ---- what the rest of the node reads ------------------------------------

    @property
    def membership(self) -> Membership:
        return self.engine.membership

    @property
    def ready(self) -> bool:
        """Serving clients: joined, and the clock not fenced."""
        return self.engine.ready_for_clients

    @property
    def not_ready(self) -> str:
        """Why ``ready`` is false ("" when ready)."""
        if not self.engine.serving:
            return "joining the cluster: not yet synchronised with a peer"
        return self.engine.readiness.not_ready()

    @property
    def writes_refused(self) -> str:
        """Why client writes are refused now ("" when taken)."""
        return self.engine.readiness.refuses_writes

    @property
    def disk_full(self) -> bool:
        return self.engine.readiness.disk_full

    def refusing(self, member_id: int) -> str:
        """Why ``member_id`` said it takes no writes ("" when it takes them)."""
        return self.engine.envelopes.refusing.get(member_id, "")

    @property
    def stats(self) -> ReplicationStats:
        return self.engine.stats

    @property
    def queues(self) -> PushQueues:
        return self.engine.gossip.queues

    @property
    def name(self) -> str:
        return self.engine.name

    @property
    def advertise(self) -> str:
        return self.engine.advertise

    @property
    def fenced(self) -> bool:
        """Client writes are refused: this node's clock is too far off the others'."""
        return self.engine.verdict.fenced

    def clock_offset_ms(self, member_id: int) -> float:
        """``member_id``'s clock offset from this node's, as the probes measured it."""
        return self.engine.fence.offsets.get(member_id, 0.0)

    def _mono_ms(self) -> int:
        return now_monotonic_ms() if self._now is None else self._now().mono_ms

    def now(self) -> Now:
        if self._now is not None:
            return self._now()
        return Now(now_monotonic_ms(), self.clock.wall_ms())

    # ---- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        self.tick_loop.start()

    async def stop(self) -> None:
        self._stopped = True
        await self.tick_loop.stop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.transport.close()

    async def leave(self) -> None:
        """Stop the loop, then announce "left" to the live peers: best effort, and never
        longer than the leave timeout (and a second), whatever a call does."""
        await self.tick_loop.stop()
        try:
            messages = self.engine.leave(self.now())
        except InsufficientStorage:
            log.warning("replication.leave_unannounced", reason="disk full")
            return
        calls = [asyncio.ensure_future(self.transport.call(message)) for message in messages]
        if not calls:
            return
        limit_s = self.engine.config.leave_timeout_ms / 1000 + 1
        _, pending = await asyncio.wait(calls, timeout=limit_s)
        if pending:
            log.warning("replication.leave_unanswered", calls=len(pending), after_s=limit_s)
            for call in pending:
                call.cancel()
            await asyncio.wait(pending, timeout=1)

    # ---- pumping ready() ------------------------------------------------------

    def tick_once(self) -> int:
        """Let the engine's timers run, then do what it has ready; returns its next due time."""
        self._report_disk()
        self.engine.tick(self.now())
        return self.pump()

    def _report_disk(self) -> None:
        """Tell the engine when the disk filled up or has room again."""
        disk = self.disk
        if disk is None or disk.full == self.engine.readiness.disk_full:
            return
        self.engine.advance(Done(disk_full=disk.full), self.now())
        if not disk.full:
            self._spawn(self._sync_after_full())

    async def _sync_after_full(self) -> None:
        """Sync what was written before the disk filled (its sync failed): then peers
        get it."""
        try:
            await self.commit.flush()
        except InsufficientStorage:
            log.warning("wal.sync_unwritten", reason="disk full again")

    def pump(self) -> int:
        """Do what the engine has ready; returns when its next timer is due."""
        ready = self.engine.ready()
        for message in ready.messages:
            self._spawn(self._send(message))
        for reply in ready.replies:
            waiter = self._waiting.pop(reply.token, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(reply)
        if ready.sync_ticket > self._sync_requested:
            # One sync per new ticket: the engine repeats a wanted ticket until it is durable.
            self._sync_requested = ready.sync_ticket
            self._spawn(self._sync(ready.sync_ticket))
        if ready.snapshot_fetch is not None:
            self._spawn(self._fetch_snapshot(ready.snapshot_fetch))
        for notice in ready.notices:
            self._notice(notice.kind, notice.message, dict(notice.fields))
        self.waits.progressed()
        return ready.next_tick_ms

    def _readiness_changed(self) -> None:
        if self.on_readiness is not None:
            self._spawn(self.on_readiness(self.ready))

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            if isinstance(error, InsufficientStorage):  # a state the disk guard reports
                log.warning("replication.unwritten", reason="disk full")
                return
            log.error("replication.task_failed", error=repr(error), exc_info=error)

    async def _send(self, message: Outbound) -> None:
        result = await self.transport.call(message)
        if isinstance(result, Failed):
            self.engine.advance(Done(failed=(result,)), self.now())
        else:
            self.engine.step(result, self.now())
        self.pump()

    async def _fetch_snapshot(self, fetch: SnapshotFetch) -> None:
        started = time.monotonic()
        try:
            if self.download_snapshot is None:
                raise RuntimeError("this driver fetches no snapshots")
            await self.download_snapshot(fetch.address)
        except Exception as error:
            log.warning("snapshot.fetch_failed", peer=fetch.address, error=repr(error))
            done = Done(snapshot_failed=str(error) or type(error).__name__)
        else:
            log.info(
                "snapshot.fetched", peer=fetch.address, seconds=round(time.monotonic() - started, 2)
            )
            done = Done(snapshot_fetched=True)
        self.engine.advance(done, self.now())
        self.pump()

    async def _sync(self, ticket: int) -> None:
        try:
            await self.commit.durable(ticket)  # reported through ``_synced``
        except InsufficientStorage:
            # Synced once the disk has room again (``_report_disk``).
            log.warning("wal.sync_unwritten", reason="disk full", ticket=ticket)

    def _synced(self, ticket: int) -> None:
        """The group commit's hook: every write up to ``ticket`` is on disk. The engine
        learns it (and marks the replica durable) before any writer is released."""
        self.engine.advance(Done(synced_ticket=ticket), self.now())
        if not self._stopped:  # a flush at shutdown: mark durable, send nothing
            self.pump()
        if self.engine.membership.peers():  # records just became durable: push them
            self.tick_loop.wake()

    def _notice(self, kind: NoticeKind, message: str, fields: dict[str, object]) -> None:
        log_notice(kind, message, fields, self.throttle)
        if kind in (NoticeKind.READY, NoticeKind.CLOCK_FENCED, NoticeKind.CLOCK_UNFENCED):
            self._readiness_changed()
        elif kind in STOPPING:
            self.on_stop(message, kind)

    # ---- inbound RPCs ---------------------------------------------------------

    async def handle(self, method: str, request: Any) -> Any:
        """Answer one Replication RPC through the engine."""
        sender = request.envelope.sender
        if self.faults.blocks_inbound(sender) or self.faults.drops():
            raise Refused("blocked by fault injection")
        try:
            envelope, body = request_from_pb(method, request)
        except MalformedPeerMessage as error:
            raise InvalidRequest(str(error)) from None
        if method == "Push":
            self.engine.stats.push_bytes_received += request.ByteSize()
        token = next(self._tokens)
        waiter: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[token] = waiter
        self.engine.step(Inbound(token, envelope, body), self.now())
        self.pump()
        try:
            reply = await waiter
        finally:
            self._waiting.pop(token, None)
        if isinstance(reply.body, Refusal):
            raise _refusal_error(reply.body)
        return reply_to_pb(reply.envelope, reply.body)

    # ---- client writes --------------------------------------------------------

    def check_clock(self) -> None:
        """Raise while client writes are refused: clock fenced, disk full, stopping."""
        self.engine.check_writable()

    def check_readable(self) -> None:
        """Raise Unavailable while client reads are refused (the clock is fenced)."""
        self.engine.check_readable()

    def propose(self, writes: Sequence[Write]) -> list[Applied]:
        applied = self.engine.propose(writes, self.now())
        self.pump()
        return applied

    def propose_all(self, writes: Sequence[Write]) -> int:
        ticket = self.engine.propose_all(writes, self.now())
        self.pump()
        return ticket

    async def remove_member(self, member_id: int) -> None:
        applied = self.engine.remove_member(member_id, self.now())
        self.pump()
        await self.commit.durable(applied.ticket)

    async def wait_for_replicas(self, seq: int, wanted: int) -> None:
        """Wait until ``wanted`` nodes (this one included) hold own write ``seq``."""
        await self.waits.replicas(seq, wanted)

    def lag_bound_ms(self) -> int | None:
        """The most this node may lag any alive member (None: it cannot say)."""
        # Every read asks: the monotonic clock alone (the bound needs no wall time).
        return self.engine.lag_bound_ms(self._mono_ms())

    async def wait_for_coverage(self, wanted: Mapping[int, int], timeout_s: float) -> None:
        """Return once this node can read every write ``wanted`` names (origin -> seq);
        Unavailable naming the lag if not within ``timeout_s`` (``client_waits``)."""
        await self.waits.coverage(wanted, timeout_s)


def _refusal_error(refusal: Refusal) -> Exception:
    if refusal.code in (RefusalCode.REMOVED, RefusalCode.DUPLICATE_ID):
        return MemberRemoved(refusal.message)
    if refusal.code is RefusalCode.MALFORMED:
        return InvalidRequest(refusal.message)
    if refusal.code is RefusalCode.INCOMPATIBLE:
        return IncompatiblePeer(refusal.message)
    return Unavailable(refusal.message)
