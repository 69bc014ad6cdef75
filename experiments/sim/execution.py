"""Running a ``Schedule``: the cluster, its writes and faults, the heal, the settling.

Every fault is a pair of actions on the cluster or its network, at its start
and at its end. At ``heal_ms`` everything is healed (links, clocks) and the
run goes on until the nodes agree or the convergence bound has passed; the
invariants are then checked (``invariants.check``).
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable

from rumor.experiments.faults import FaultKind
from rumor.experiments.sim.bounds import Bounds
from rumor.experiments.sim.cluster import Cluster, ClusterSettings, address_of
from rumor.experiments.sim.invariants import Outcome, agreed, check
from rumor.experiments.sim.latency import LatencyDistribution
from rumor.experiments.sim.membership_checks import gone_members
from rumor.experiments.sim.network import DROP, REFUSE
from rumor.experiments.sim.process import ProcessSettings
from rumor.experiments.sim.schedule import FaultPlan, Schedule
from rumor.experiments.sim.session_clients import SessionClients, session_violations
from rumor.experiments.sim.violation import Violation
from rumor.experiments.sim.write_checks import writes_missing_after
from rumor.node.replication.engine.messages import Envelope, Outbound, Push
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.replica.delta import Coverage
from rumor.node.replication.replica.replica import Durability

FORGED_WATERMARK = 2**63 - 1
QUICK_LATENCY = "uniform:0.2:2"
SNAPSHOT_MIN_RECORDS = 12
MEMBER_TIMEOUT_MS = 4500


def quick_protocol() -> ProtocolConfig:
    """The fuzz's timers: ``ProtocolConfig.local()``, with bootstrap by snapshot on.

    A peer serves a copy once it holds ``snapshot_min_records`` (the fuzz writes
    200 records over 24 keys, so a small number); an admission slot frees a few
    seconds after the yes, as a minute does at real timers. A member down for
    ``MEMBER_TIMEOUT_MS`` is retired, as hours do at real timers: longer than
    any other fault keeps a node down or cut off, shorter than a ``return``."""
    return ProtocolConfig.local().replace(
        snapshot_bootstrap=True,
        snapshot_min_records=SNAPSHOT_MIN_RECORDS,
        snapshot_hold_ms=3000,
        member_timeout_ms=MEMBER_TIMEOUT_MS,
    )


def run_schedule(
    schedule: Schedule, protocol: ProtocolConfig | None = None, *, trace: bool = False
) -> Outcome:
    """Run ``schedule`` (deterministic for a schedule) and check the invariants."""
    # A run makes many short-lived closures and no long-lived cycles: the cyclic
    # collector's pauses cost a third of the time and free nothing until the end.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run(schedule, protocol, trace)
    finally:
        if collecting:
            gc.enable()


def _run(schedule: Schedule, protocol: ProtocolConfig | None, trace: bool) -> Outcome:
    started = time.perf_counter()
    protocol = protocol or quick_protocol()
    settings = ClusterSettings(
        ProcessSettings(
            protocol, Durability(schedule.durability), canaries=frozenset(schedule.canaries)
        ),
        LatencyDistribution.parse(QUICK_LATENCY),
    )
    cluster = Cluster(settings, random.Random(schedule.seed), trace=trace)
    loop = cluster.loop
    for node in schedule.nodes:
        loop.at(node.start_ms, _start(cluster, node.slot, node.seeds))
    for write in schedule.writes:
        loop.at(write.at_ms, _write(cluster, write.slot, write.key, write.op, write.ttl_s))
    for fault in schedule.faults:
        _plan_fault(cluster, fault, schedule.slots)
    clients = SessionClients(cluster, stop_ms=schedule.heal_ms)
    for plan in schedule.sessions:
        clients.start(plan)
    heal_ms = schedule.heal_ms
    loop.at(heal_ms, lambda: _heal(cluster))
    loop.run_until(heal_ms)
    forged_until = schedule.forged_until_ms
    # A forged claim, or a write made while serving alone, can leave what only the audit
    # repairs (see the exemptions in write_checks.py): allow it its interval.
    alone = any(write.alone for write in cluster.ledger.writes)
    bounds = Bounds.of(protocol, len(cluster.processes), forged=forged_until is not None or alone)
    every_ms = protocol.anti_entropy_interval_ms
    late: list[Violation] = []
    if forged_until is not None:
        # A clamped lie may hide older records until an audit; later writes must not wait.
        unforged = Bounds.of(protocol, len(cluster.processes))
        _settle(cluster, heal_ms + unforged.convergence_ms, every_ms)
        late = writes_missing_after(cluster, schedule, forged_until)
    converged = _settle(cluster, heal_ms + bounds.convergence_ms, every_ms)
    _until_removed_stop(cluster, heal_ms + bounds.convergence_ms, every_ms)
    _until_gone_members_retire(cluster, bounds, every_ms)
    outcome = check(cluster, schedule, bounds, heal_ms, converged, time.perf_counter() - started)
    outcome.violations += late
    outcome.violations += session_violations(cluster, clients)
    return outcome


def _until_removed_stop(cluster: Cluster, limit_ms: float, every_ms: int) -> None:
    """Agreement can come before a removed node hears of its removal: give it until the
    convergence bound to stop, as the invariant says."""
    loop = cluster.loop

    def running() -> bool:
        return any(
            cluster.processes[slot].running
            for slot in cluster.removed_ms
            if slot in cluster.processes
        )

    while running() and loop.now_ms < limit_ms:
        loop.run_until(min(limit_ms, loop.now_ms + max(1, every_ms // 4)))


def _until_gone_members_retire(cluster: Cluster, bounds: Bounds, every_ms: int) -> None:
    """Agreement can come before a member gone for good (replaced, wiped) is retired:
    give it until its retirement bound, as the invariant says."""
    loop = cluster.loop
    while True:
        gone = gone_members(cluster)
        if not gone or not bounds.retire_ms:
            return
        limit_ms = max(gone.values()) + bounds.retire_ms
        if loop.now_ms >= limit_ms:
            return
        loop.run_until(min(limit_ms, loop.now_ms + max(1, every_ms // 4)))


def _settle(cluster: Cluster, limit_ms: float, every_ms: int) -> float | None:
    """Run until the live nodes agree (checked every ``every_ms`` / 4); when, or None."""
    loop = cluster.loop
    step = max(1, every_ms // 4)
    while loop.now_ms < limit_ms:
        loop.run_until(min(limit_ms, loop.now_ms + step))
        if agreed(cluster):
            return loop.now_ms
    return None


def _start(cluster: Cluster, slot: int, seeds: tuple[int, ...]) -> Callable[[], None]:
    return lambda: None if slot in cluster.processes else _ignore(cluster.start(slot, seeds))


def _ignore(_: object) -> None:
    pass


def _write(cluster: Cluster, slot: int, key: int, op: str, ttl_s: int) -> Callable[[], None]:
    name = b"key-%03d" % key

    def write() -> None:
        value = b"v%d@%d" % (len(cluster.ledger.writes), slot)
        cluster.write(slot, name, value, tombstone=op == "delete", ttl_s=ttl_s)

    return write


def _heal(cluster: Cluster) -> None:
    cluster.network.heal()
    cluster.offsets_ms.clear()


# ---- faults ----------------------------------------------------------------------------


Action = Callable[[], None]


def _nothing() -> None:
    pass


def _plan_fault(cluster: Cluster, fault: FaultPlan, every_slot: set[int]) -> None:
    begin, end = PLANNERS[fault.kind](cluster, fault, every_slot)
    cluster.loop.at(fault.at_ms, begin)
    cluster.loop.at(fault.end_ms, end)


def _partition(cluster: Cluster, fault: FaultPlan, every_slot: set[int]) -> tuple[Action, Action]:
    """``slots`` against every other slot, both ways (also a ``split`` from time 0)."""
    network, inside = cluster.network, set(fault.slots)
    style = REFUSE if fault.style == "refuse" else DROP

    def begin() -> None:
        for a in inside:
            for b in every_slot - inside:
                network.block(address_of(a), address_of(b), style)
                network.block(address_of(b), address_of(a), style)

    def end() -> None:
        for source, target in list(network.blocked):
            if _slot_of(source) in inside or _slot_of(target) in inside:
                network.unblock(source, target)

    return begin, end


def _block(cluster: Cluster, fault: FaultPlan, _: set[int]) -> tuple[Action, Action]:
    """``slots[0]`` cannot reach ``slots[1:]``; they can still reach it."""
    network, source, targets = cluster.network, address_of(fault.slots[0]), fault.slots[1:]

    def begin() -> None:
        for target in targets:
            network.block(source, address_of(target))

    def end() -> None:
        for target in targets:
            network.unblock(source, address_of(target))

    return begin, end


def _loss(cluster: Cluster, fault: FaultPlan, _: set[int]) -> tuple[Action, Action]:
    network = cluster.network

    def begin() -> None:
        network.loss = fault.value

    def end() -> None:
        network.loss = cluster.settings.loss

    return begin, end


def _delay(cluster: Cluster, fault: FaultPlan, _: set[int]) -> tuple[Action, Action]:
    extra, address = cluster.network.extra_delay_ms, address_of(fault.slots[0])

    def begin() -> None:
        extra[address] = fault.value

    return begin, lambda: _ignore(extra.pop(address, None))


def _skew(cluster: Cluster, fault: FaultPlan, _: set[int]) -> tuple[Action, Action]:
    offsets, slot = cluster.offsets_ms, fault.slots[0]

    def begin() -> None:
        offsets[slot] = int(fault.value)

    return begin, lambda: _ignore(offsets.pop(slot, None))


def _crash(cluster: Cluster, fault: FaultPlan, _: set[int]) -> tuple[Action, Action]:
    """A crash (or, ``power``, a power loss) and a restart on the disk (``style`` wipe: empty)."""
    slot = fault.slots[0]

    def begin() -> None:
        if fault.kind is FaultKind.POWER:
            cluster.lose_power(slot)
        else:
            cluster.crash(slot)

    def end() -> None:
        if slot in cluster.processes and not _gone(cluster, slot):
            cluster.restart(slot, keep_data=fault.style != "wipe")

    return begin, end


def _snapjoin(cluster: Cluster, fault: FaultPlan, _: set[int]) -> tuple[Action, Action]:
    slot, seeds = fault.slots[0], fault.slots[1:]

    def begin() -> None:
        if slot not in cluster.processes:
            cluster.start(slot, seeds)

    return begin, _nothing


def _join(cluster: Cluster, fault: FaultPlan, _: set[int]) -> tuple[Action, Action]:
    slots, late = fault.slots, fault.style == "late"

    def begin() -> None:
        cluster.start(slots[0], slots[1:2] if late else slots[1:])

    def end() -> None:
        if late:
            # Its own seed may have been removed meanwhile: it also names the founder.
            cluster.start(slots[1], tuple(sorted({slots[2], 0})))

    return begin, end


def _restore(cluster: Cluster, fault: FaultPlan, _: set[int]) -> tuple[Action, Action]:
    slot, copies = fault.slots[0], []

    def begin() -> None:
        if slot in cluster.disks:
            copies.append(cluster.disks[slot].copy())

    def end() -> None:
        if copies and not _gone(cluster, slot):
            cluster.restore(slot, copies[0])

    return begin, end


def _stale_backup(cluster: Cluster, fault: FaultPlan, _: set[int]) -> tuple[Action, Action]:
    slot, backups = fault.slots[0], []

    def begin() -> None:
        if slot in cluster.disks:
            backups.append(cluster.disks[slot].copy())

    def end() -> None:
        if backups and not _gone(cluster, slot):
            cluster.restore_backup(slot, backups[0])

    return begin, end


def _remove(cluster: Cluster, fault: FaultPlan, _: set[int]) -> tuple[Action, Action]:
    """``slots[1]`` removes ``slots[0]``; ``style`` dead: crashed first, removed at the end."""
    victim, remover = fault.slots[0], fault.slots[1]

    def begin() -> None:
        if fault.style == "dead":
            cluster.crash(victim)
        else:
            cluster.remove(victim, remover)

    def end() -> None:
        if fault.style == "dead":
            cluster.remove(victim, remover)

    return begin, end


def _duplicate(cluster: Cluster, fault: FaultPlan, _: set[int]) -> tuple[Action, Action]:
    source_slot, copy_slot = fault.slots[0], fault.slots[1]

    def begin() -> None:
        source = cluster.processes.get(source_slot)
        if source is not None and source.running:
            cluster.duplicates[copy_slot] = (source_slot, cluster.loop.now_ms)
            cluster.start(copy_slot, cluster.seeds[source_slot], disk=source.disk.copy())

    return begin, _nothing


def _replace(cluster: Cluster, fault: FaultPlan, _: set[int]) -> tuple[Action, Action]:
    """A fresh process (new id, empty disk) takes ``slots[0]``'s address, at once."""
    slot = fault.slots[0]

    def begin() -> None:
        if slot in cluster.processes and not _gone(cluster, slot):
            cluster.restart(slot, keep_data=False)

    return begin, _nothing


def _return(cluster: Cluster, fault: FaultPlan, _: set[int]) -> tuple[Action, Action]:
    """``slots[0]`` down past the member timeout, then back on its old disk, rejoining as
    a new node when the cluster refuses it (``rumor node --rejoin-as-new``)."""
    slot = fault.slots[0]

    def end() -> None:
        if slot in cluster.processes and not _gone(cluster, slot):
            cluster.rejoining.add(slot)
            cluster.restart(slot, keep_data=True)

    return lambda: cluster.crash(slot), end


def _forge_fault(cluster: Cluster, fault: FaultPlan, _: set[int]) -> tuple[Action, Action]:
    def end() -> None:
        # A forged answer not used by the end of the fault is never sent.
        victim = cluster.processes.get(fault.slots[0])
        if victim is not None:
            cluster.network.forged_exchange_replies.pop(victim.address, None)

    return lambda: _forge(cluster, fault), end


#: Per kind, what its start and its end do to the cluster.
PLANNERS: dict[FaultKind, Callable[[Cluster, FaultPlan, set[int]], tuple[Action, Action]]] = {
    FaultKind.PARTITION: _partition,
    FaultKind.SPLIT: _partition,
    FaultKind.BLOCK: _block,
    FaultKind.LOSS: _loss,
    FaultKind.DELAY: _delay,
    FaultKind.SKEW: _skew,
    FaultKind.CRASH: _crash,
    FaultKind.POWER: _crash,
    FaultKind.SNAPJOIN: _snapjoin,
    FaultKind.JOIN: _join,
    FaultKind.RESTORE: _restore,
    FaultKind.STALE_BACKUP: _stale_backup,
    FaultKind.REMOVE: _remove,
    FaultKind.DUPLICATE: _duplicate,
    FaultKind.FORGE: _forge_fault,
    FaultKind.REPLACE: _replace,
    FaultKind.RETURN: _return,
}


def _slot_of(address: str) -> int:
    return int(address.split("-", 1)[1].split(":", 1)[0])


def _gone(cluster: Cluster, slot: int) -> bool:
    """Removed, or stopped for a duplicate id: not to be brought back."""
    process = cluster.processes[slot]
    return slot in cluster.removed_ms or process.stopped_by is not None


def _forge(cluster: Cluster, fault: FaultPlan) -> None:
    """A peer (or a forged Exchange answer) claims every seq of an origin as held."""
    victim, forger, origin = (cluster.processes.get(s) for s in fault.slots)
    if victim is None or forger is None or origin is None or not victim.running:
        return
    claim = Coverage(origin.node_id, 0, FORGED_WATERMARK, True)
    if fault.style == "exchange":
        cluster.network.forged_exchange_replies[victim.address] = claim
        return
    envelope = Envelope(
        forger.node_id,
        forger.boot_nonce,
        forger.replica.clock.last,
        forger.address,
        f"node-{fault.slots[1]}",
    )
    forged = Outbound(0, victim.node_id, victim.address, envelope, Push(coverage=(claim,)), 1000)
    cluster.network.call(None, forged, source=forger.address)
