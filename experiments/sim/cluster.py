"""Processes on addresses: start, crash, power loss, restart, restore, remove, write.

A *slot* is an address (``node-3:7400``) with a disk. The process on a slot
can crash (the disk keeps everything written), lose power (the disk keeps
what was synced), restart on the same disk (same id, new boot nonce), on an
empty one (a new id) or on a copy of another disk (a backup of this node, or
a clone of a live one on a new address: a duplicate id), or have its disk
replaced by a restored backup, which ``rumor admin restore``'s rules refuse
to start with seeds (``restore_backup``). Removal is the operator's
``remove-node``: one live node's engine retires the victim's id (or the
member timeout does). A slot in ``rejoining`` runs as ``rumor node
--rejoin-as-new`` does: refused as removed, it wipes its disk and starts again
with a new id.
A fresh node that bootstraps by snapshot fetches a peer's copy through
``snapshot_transfer`` and, once it installed it, restarts on the copy with
its own id (a new boot nonce), as ``rumor node`` restarts in place.

Every random choice comes from the cluster's one ``random.Random``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rumor.experiments.sim.disk import SimulatedDisk
from rumor.experiments.sim.latency import LatencyDistribution
from rumor.experiments.sim.ledger import NAMESPACE, ClientWrite, Ledger
from rumor.experiments.sim.loop import EventLoop
from rumor.experiments.sim.network import Network
from rumor.experiments.sim.process import BASE_WALL_MS, ProcessSettings, SimulatedProcess
from rumor.experiments.sim.snapshot_transfer import SNAPSHOT_BYTES_PER_MS, SnapshotTransfers
from rumor.experiments.sim.trace import Birth, Trace
from rumor.node.core.errors import Unavailable
from rumor.node.core.version import Version
from rumor.node.replication.engine.canaries import Canary
from rumor.node.replication.engine.messages import NoticeKind, Now
from rumor.node.replication.replica import backup_restore
from rumor.node.replication.replica.replica import Write


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    process: ProcessSettings
    latency: LatencyDistribution
    loss: float = 0.0
    track_sync: bool = True  # off: no power loss possible, half the store work
    snapshot_bytes_per_ms: float = SNAPSHOT_BYTES_PER_MS  # how fast a copy travels


def address_of(slot: int) -> str:
    return f"node-{slot}:7400"


@dataclass(slots=True)
class SlotHistory:
    """What happened to a slot's data that clients could not be protected from."""

    power_lost_ms: list[float] = field(default_factory=list)
    replaced_ms: list[float] = field(default_factory=list)  # wiped, or restored from a copy
    removed_ms: float | None = None


class Cluster:
    def __init__(self, settings: ClusterSettings, rng: random.Random, *, trace: bool = False):
        self.settings = settings
        self.rng = rng
        self.loop = EventLoop()
        draw_latency = settings.latency.sampler(rng)
        self.network = Network(self.loop, draw_latency, rng.random)
        self.network.loss = settings.loss
        self.snapshots = SnapshotTransfers(
            self.loop, self.network, draw_latency, settings.snapshot_bytes_per_ms
        )
        self.installed_ms: dict[int, list[float]] = {}  # slot -> when it installed a copy
        self.processes: dict[int, SimulatedProcess] = {}  # the latest process of each slot
        self.disks: dict[int, SimulatedDisk] = {}
        self.offsets_ms: dict[int, int] = {}
        self.seeds: dict[int, tuple[int, ...]] = {}
        self.history: dict[int, SlotHistory] = {}
        self.ledger = Ledger()
        self.trace = Trace() if trace else None
        self.every_process: list[SimulatedProcess] = []
        self.removed_ms: dict[int, float] = {}
        self.restored_ms: list[float] = []  # when a node restarted on a stale copy
        self.refused_restores = 0  # restored backups refused for being started with seeds
        self.duplicates: dict[int, tuple[int, float]] = {}  # slot -> (the copied slot, when)
        self.rejoining: set[int] = set()  # slots whose process runs with --rejoin-as-new
        self.rejoined_ms: dict[int, list[float]] = {}  # slot -> when it rejoined as new
        self._ids: set[int] = set()

    # ---- clocks ---------------------------------------------------------------------

    def now_of(self, slot: int) -> Now:
        mono = int(self.loop.now_ms)
        return Now(mono, BASE_WALL_MS + mono + self.offsets_ms.get(slot, 0))

    def _new_id(self) -> int:
        node_id = 0
        while node_id == 0 or node_id in self._ids:
            node_id = self.rng.getrandbits(64)
        self._ids.add(node_id)
        return node_id

    # ---- processes ------------------------------------------------------------------

    def start(
        self, slot: int, seeds: Sequence[int] = (), disk: SimulatedDisk | None = None
    ) -> SimulatedProcess:
        """Start a process on ``slot`` (its own disk unless one is given)."""
        if disk is None:
            disk = self.disks.get(slot) or SimulatedDisk(track_sync=self.settings.track_sync)
        self.disks[slot] = disk
        self.seeds[slot] = tuple(seeds)
        self.history.setdefault(slot, SlotHistory())
        now = self.now_of(slot)
        birth = Birth(
            process=len(self.every_process) + 1,
            address=address_of(slot),
            name=f"node-{slot}",
            node_id=self._new_id(),
            boot_nonce=(now.wall_ms << 16) | self.rng.getrandbits(16),
            seeds=tuple(address_of(seed) for seed in seeds),
            rng_seed=self.rng.getrandbits(64),
            now=now,
            disk=disk,
        )
        process = SimulatedProcess(
            birth,
            self.settings.process,
            self.loop,
            self.network,
            lambda: self.now_of(slot),
            on_durable=self._acknowledge,
            trace=self.trace,
            on_snapshot_fetch=self.snapshots.fetch,
            on_installed=lambda old, copy: self._installed(slot, old, copy),
            on_refused=lambda old, kind: self._refused(slot, old, kind),
        )
        self.processes[slot] = process
        self.every_process.append(process)
        return process

    def _installed(self, slot: int, old: SimulatedProcess, copy: SimulatedDisk) -> None:
        """The process stopped to install a copy: restart the slot on it (same id)."""
        if self.processes.get(slot) is not old:
            return
        self.installed_ms.setdefault(slot, []).append(self.loop.now_ms)
        self.start(slot, self.seeds.get(slot, ()), disk=copy)

    def _refused(self, slot: int, old: SimulatedProcess, kind: NoticeKind) -> None:
        """The cluster refused the process on ``slot``. Retired while it ran (it was cut
        off past the member timeout), what only it held is gone, as for a removal; with
        --rejoin-as-new it wipes its disk and starts again as a new node (a new id)."""
        if kind is not NoticeKind.REMOVED or self.processes.get(slot) is not old:
            return
        if slot in self.rejoining:
            self.rejoined_ms.setdefault(slot, []).append(self.loop.now_ms)
            self.restart(slot, keep_data=False)  # its earlier writes count as wiped
            return
        history = self.history[slot]
        if history.removed_ms is None:
            history.removed_ms = self.loop.now_ms

    def run_until_done(self, done: Callable[[], bool], within_ms: int, step_ms: int = 50) -> bool:
        """Run virtual time until ``done`` or ``within_ms`` have passed; whether it was done.
        ``done`` is asked every ``step_ms`` (it may act: try a write, say)."""
        deadline = self.loop.now_ms + within_ms
        while not done():
            if self.loop.now_ms >= deadline:
                return False
            self.loop.run_until(self.loop.now_ms + step_ms)
        return True

    def running(self) -> list[SimulatedProcess]:
        return [p for p in self.processes.values() if p.running]

    def crash(self, slot: int) -> None:
        process = self.processes.get(slot)
        if process is not None:
            process.stop()

    def lose_power(self, slot: int) -> None:
        self.crash(slot)
        if slot in self.disks and self.disks[slot].lose_power():
            self.history[slot].power_lost_ms.append(self.loop.now_ms)

    def restart(self, slot: int, *, keep_data: bool = True) -> SimulatedProcess:
        self.crash(slot)
        if not keep_data:
            self.disks[slot] = SimulatedDisk(track_sync=self.settings.track_sync)
            self.history[slot].replaced_ms.append(self.loop.now_ms)
        return self.start(slot, self.seeds.get(slot, ()))

    def restore(self, slot: int, copy: SimulatedDisk) -> SimulatedProcess:
        """Restart ``slot`` on an old copy of a disk (a restored backup)."""
        self.crash(slot)
        self.history.setdefault(slot, SlotHistory()).replaced_ms.append(self.loop.now_ms)
        self.restored_ms.append(self.loop.now_ms)
        return self.start(slot, self.seeds.get(slot, ()), disk=copy)

    def restore_backup(self, slot: int, backup: SimulatedDisk) -> SimulatedProcess:
        """``slot``'s disk is lost; a stale backup of it is restored as ``rumor admin
        restore`` does and started with the slot's seeds. The node refuses that (a
        restored backup starts a new cluster), so the operator starts the slot on an
        empty disk: a new node that joins and takes the cluster's data."""
        self.crash(slot)
        self.history.setdefault(slot, SlotHistory()).replaced_ms.append(self.loop.now_ms)
        seeds = self.seeds.get(slot, ())
        refused = backup_restore.refusal(tuple(address_of(seed) for seed in seeds))
        if refused is not None and Canary.RESTORED_REJOINS not in self.settings.process.canaries:
            self.refused_restores += 1
            self.disks[slot] = SimulatedDisk(track_sync=self.settings.track_sync)
            return self.start(slot, seeds)
        copy = backup.copy()
        backup_restore.begin_new_cluster(copy, self._new_id())
        return self.start(slot, seeds, disk=copy)

    def remove(self, victim: int, by: int) -> bool:
        """``rumor admin remove-node``, run on ``by``: True if it was carried out."""
        remover, gone = self.processes.get(by), self.processes.get(victim)
        if remover is None or gone is None or not remover.running:
            return False
        remover.engine.remove_member(gone.node_id, self.now_of(by))
        remover.flush()
        self.history[victim].removed_ms = self.removed_ms[victim] = self.loop.now_ms
        return True

    # ---- clients ----------------------------------------------------------------------

    def write(
        self, slot: int, key: bytes, value: bytes, *, tombstone: bool = False, ttl_s: int = 0
    ) -> ClientWrite | None:
        """A client write to ``slot``: None if refused, else the ledger entry."""
        process = self.processes.get(slot)
        if process is None or not process.running or not process.engine.serving:
            self.ledger.refused += 1
            return None
        now = self.now_of(slot)
        expiration = now.wall_ms // 1000 + ttl_s if ttl_s else 0
        write = Write(NAMESPACE, key, value, expiration=expiration, tombstone=tombstone)
        entry = ClientWrite(
            len(self.ledger.writes),
            slot,
            key,
            tombstone,
            expiration,
            self.loop.now_ms,
            Version(0, 0),
            # Alone: seeds, none of them reached yet (a first node without seeds is not).
            alone=not process.engine.joining.may_collect_garbage()
            and not process.engine.membership.up_peers(),
        )
        try:
            applied = process.propose([write], [entry])
        except Unavailable:
            self.ledger.refused += 1
            return None
        header = applied[0].header
        entry.version = Version(header.hlc, header.origin)
        self.ledger.writes.append(entry)
        return entry

    def _acknowledge(self, writes: list[object]) -> None:
        self.ledger.acknowledge(writes, self.loop.now_ms, self.removed_ms)


def live_processes(cluster: Cluster) -> list[SimulatedProcess]:
    """The processes still running on slots not removed from the cluster."""
    return [
        p for slot, p in cluster.processes.items() if p.running and slot not in cluster.removed_ms
    ]
