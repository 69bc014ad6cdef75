"""One simulated process: the node's engine (``build``) on a disk, driven.

The driver does what the server's driver does and decides nothing: every
input goes to the engine (``step``, ``tick``, ``propose``, ``advance``) and
after each one ``ready()`` is drained: requests and replies go to the
network as they are, the sync ticket starts a group commit (one sync in
flight; it covers what was written when it started, takes ``disk_latency_ms``
and then reports ``Done(synced_ticket)``), notices are recorded, and the
next tick is scheduled for ``next_tick_ms``. A client write is acknowledged
once its ticket is durable. A REMOVED or DUPLICATE_ID notice stops the
process, as it makes the real one exit, and is reported to ``on_refused``
(which restarts the slot as a new node for a process started as
``rumor node --rejoin-as-new`` is).

Bootstrap by snapshot, as the node does it: ``Ready.snapshot_fetch`` goes to
the fetcher (``snapshot_transfer``), which reports back through
``snapshot_fetched`` (the copy, kept as the node keeps incoming/db) or
``snapshot_failed`` (the cause), each given to the engine as its ``Done``.
An INSTALL_SNAPSHOT notice stops the process; ``install_into`` is applied to
the copy with this process's replica state (its id, marks, incarnation), and
``on_installed`` restarts the slot on that copy, keeping the id.

Time: the mono clock is virtual time; the wall clock is virtual time plus
this node's offset (clock skew), both floored to whole milliseconds.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rumor.experiments.sim.disk import SimulatedDisk
from rumor.experiments.sim.loop import EventLoop
from rumor.experiments.sim.network import Network
from rumor.experiments.sim.trace import Birth, Input, Output, Trace
from rumor.node.core.errors import Unavailable
from rumor.node.replication.engine.build import Identity, build
from rumor.node.replication.engine.canaries import Canary
from rumor.node.replication.engine.engine import Engine
from rumor.node.replication.engine.messages import (
    Done,
    Envelope,
    Failed,
    FailureCause,
    Inbound,
    Notice,
    NoticeKind,
    Now,
    Ready,
    ReplyBody,
    Request,
    Response,
    SnapshotFetch,
)
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.replica.replica import Applied, Durability, Write
from rumor.node.replication.replica.snapshot_install import install_into

BASE_WALL_MS = 1_700_000_000_000  # virtual time 0 on a clock without skew
STOPPING_NOTICES = (NoticeKind.REMOVED, NoticeKind.DUPLICATE_ID)


@dataclass(frozen=True, slots=True)
class ProcessSettings:
    protocol: ProtocolConfig
    durability: Durability
    disk_latency_ms: float = 0.5  # one WAL sync
    canaries: frozenset[Canary] = frozenset()


def engine_for(birth: Birth, settings: ProcessSettings, disk: SimulatedDisk) -> Engine:
    """The node's engine as ``rumor node`` builds it (``build``), for ``birth`` on ``disk``."""
    identity = Identity(
        new_node_id=birth.node_id,
        boot_nonce=birth.boot_nonce,
        address=birth.address,
        name=birth.name,
        seeds=birth.seeds,
    )
    return build(
        disk,
        identity,
        settings.protocol,
        rng=random.Random(birth.rng_seed),
        now=birth.now,
        durability=settings.durability,
        canaries=settings.canaries,
    )


class SimulatedProcess:
    def __init__(
        self,
        birth: Birth,
        settings: ProcessSettings,
        loop: EventLoop,
        network: Network,
        clock: Callable[[], Now],
        *,
        on_durable: Callable[[list[object]], None],
        trace: Trace | None = None,
        on_snapshot_fetch: Callable[[SimulatedProcess, SnapshotFetch], None] | None = None,
        on_installed: Callable[[SimulatedProcess, SimulatedDisk], None] | None = None,
        on_refused: Callable[[SimulatedProcess, NoticeKind], None] | None = None,
    ) -> None:
        self.serial = birth.process
        self.address = birth.address
        self.disk = birth.disk
        self.loop = loop
        self.network = network
        self.clock = clock
        self.settings = settings
        self.on_durable = on_durable
        self.trace = trace
        self.on_snapshot_fetch = on_snapshot_fetch
        self.on_installed = on_installed
        self.on_refused = on_refused  # stopped by a REMOVED or DUPLICATE_ID notice
        self.incoming: SimulatedDisk | None = None  # a fetched copy, waiting to be installed
        self.running = True
        self.notices: list[tuple[float, Notice]] = []
        self.stopped_by: NoticeKind | None = None
        self.stopped_ms: float | None = None  # when it stopped (crash, exit), if it did
        self._waiting: deque[tuple[int, object]] = deque()  # (ticket, client write) in order
        self._syncing = False
        self._sync_wanted = 0
        self._tick_at = float("inf")
        self._tick_generation = 0
        if trace is not None:
            trace.births.append(birth)
            trace.disks_at_birth[birth.process] = birth.disk.copy()
            trace.events.append(Input(self.serial, birth.now, "birth"))
        self.engine = engine_for(birth, settings, birth.disk)
        self.replica = self.engine.replica
        self.node_id = self.replica.node_id
        self.boot_nonce = birth.boot_nonce
        network.listen(self)
        self.flush()

    # ---- inputs from the network ------------------------------------------------

    def receive_request(self, token: int, envelope: Envelope, body: Request) -> None:
        self._step(Inbound(token, envelope, body))

    def receive_response(self, message_id: int, envelope: Envelope, body: ReplyBody) -> None:
        self._step(Response(message_id, envelope, body))

    def call_failed(self, message_id: int, cause: FailureCause) -> None:
        self._advance(Done(failed=(Failed(message_id, cause),)))

    def snapshot_fetched(self, copy: SimulatedDisk) -> None:
        """The fetcher brought a whole copy of the peer's store."""
        if self.running:
            self.incoming = copy
            self._advance(Done(snapshot_fetched=True))

    def snapshot_failed(self, cause: str) -> None:
        self._advance(Done(snapshot_failed=cause))

    def _step(self, message: Inbound | Response) -> None:
        if not self.running:
            return
        now = self.clock()
        if self.trace is not None:
            self.trace.events.append(Input(self.serial, now, "step", message))
        self.engine.step(message, now)
        self.flush()

    def _advance(self, done: Done) -> None:
        if not self.running:
            return
        now = self.clock()
        if self.trace is not None:
            self.trace.events.append(Input(self.serial, now, "advance", done))
        self.engine.advance(done, now)
        self.flush()

    # ---- clients ----------------------------------------------------------------

    def propose(self, writes: Sequence[Write], client_writes: Sequence[object]) -> list[Applied]:
        """Apply client writes; each of ``client_writes`` is acknowledged once durable.

        Raises ``Unavailable`` when the engine refuses (fenced clock, stopping).
        """
        if not self.running:
            raise Unavailable("the process is not running")
        now = self.clock()
        if self.trace is not None:
            self.trace.events.append(Input(self.serial, now, "propose", tuple(writes)))
        applied = self.engine.propose(writes, now)
        durable: list[object] = []
        for result, client_write in zip(applied, client_writes, strict=True):
            if self.replica.is_durable(result.ticket):
                durable.append(client_write)
            else:
                self._waiting.append((result.ticket, client_write))
        self.flush()
        if durable:
            self.on_durable(durable)
        return applied

    # ---- the driver loop ----------------------------------------------------------

    def flush(self) -> None:
        """Drain ``ready()`` and act on it (after every input; after a direct engine call)."""
        ready = self.engine.ready()
        if self.trace is not None:
            self.trace.events.append(Output(self.serial, ready))
        self._act(ready)

    def _act(self, ready: Ready) -> None:
        network = self.network
        for outbound in ready.messages:
            network.call(self, outbound)
        for reply in ready.replies:
            network.answer(self, reply)
        if ready.sync_ticket > self._sync_wanted:
            self._sync_wanted = ready.sync_ticket
            if not self._syncing:
                self._start_sync()
        if ready.snapshot_fetch is not None:
            self._fetch(ready.snapshot_fetch)
        stop: NoticeKind | None = None
        for notice in ready.notices:
            self.notices.append((self.loop.now_ms, notice))
            if notice.kind in STOPPING_NOTICES or notice.kind is NoticeKind.INSTALL_SNAPSHOT:
                stop = notice.kind
        if stop is NoticeKind.INSTALL_SNAPSHOT:
            self._install()
            return
        if stop is not None:
            self.stopped_by = stop
            self.stop()
            if self.on_refused is not None:
                self.on_refused(self, stop)
            return
        self._schedule_tick(ready.next_tick_ms)

    def _fetch(self, fetch: SnapshotFetch) -> None:
        if self.on_snapshot_fetch is not None:
            self.on_snapshot_fetch(self, fetch)
            return
        self.loop.after(0, lambda: self.snapshot_failed("this driver fetches no snapshots"))

    def _install(self) -> None:
        """Stop, make the fetched copy this node's store, and have the slot restart on it."""
        copy, self.incoming = self.incoming, None
        self.stopped_by = NoticeKind.INSTALL_SNAPSHOT
        if copy is not None:
            install_into(self.replica.state, copy)
        self.stop()
        if copy is not None and self.on_installed is not None:
            self.on_installed(self, copy)

    def _schedule_tick(self, next_tick_ms: int) -> None:
        now = self.loop.now_ms
        interval = self.settings.protocol.tick_interval_ms
        # At most one tick per virtual millisecond: a timer already due is run next ms.
        at = float(max(next_tick_ms, int(now) + 1)) if next_tick_ms else now + interval
        if at >= self._tick_at:
            return
        self._tick_at = at
        self._tick_generation += 1
        generation = self._tick_generation
        self.loop.at(at, lambda: self._tick(generation))

    def _tick(self, generation: int) -> None:
        if not self.running or generation != self._tick_generation:
            return
        self._tick_at = float("inf")
        now = self.clock()
        if self.trace is not None:
            self.trace.events.append(Input(self.serial, now, "tick"))
        self.engine.tick(now)
        self.flush()

    def _start_sync(self) -> None:
        """A group commit: covers every write made so far, reported after the disk latency."""
        self._syncing = True
        ticket = self.replica.written_ticket
        position = self.disk.position

        def synced() -> None:
            if not self.running:
                return
            self._syncing = False
            self.disk.sync_through(position)
            self.disk.syncs += 1
            durable: list[object] = []
            while self._waiting and self._waiting[0][0] <= ticket:
                durable.append(self._waiting.popleft()[1])
            self._advance(Done(synced_ticket=ticket))
            if self.running and self._sync_wanted > ticket:
                self._start_sync()
            if durable:
                self.on_durable(durable)

        self.loop.after(self.settings.disk_latency_ms, synced)

    # ---- the end of a process --------------------------------------------------------

    def stop(self) -> None:
        """The process is gone (crash, exit); its disk stays as it is."""
        if not self.running:
            return
        self.running = False
        self.stopped_ms = self.loop.now_ms
        self.network.hang_up(self)
