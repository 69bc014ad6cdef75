"""What must hold of the membership once the faults heal: removed nodes stop, gone
members retire, and an id runs in one process.

- **a removed node stops** (``removed_still_running``): it is told so by the
  peers that refuse it, within the convergence bound (the run waits that long
  for it first);
- **GC is not stalled** (``gc_held_back``): a member gone for good — a process
  replaced at its address, a wiped disk, a made-up id — is retired, and stops
  holding garbage collection back, within ``Bounds.retire_ms``; ``gone_members``
  says which ids some live node still counts and since when, and the run waits
  for them to retire before it checks;
- **one process per id** (``duplicate_ids``): a copy of a live node's disk
  started on another address gets ``DUPLICATE_ID`` and stops within
  ``Bounds.duplicate_ms`` of both being reachable (the last network fault
  after the copy started healed), and the original keeps running. A copy of
  a node removed before it started must stop too (refused as removed); one
  whose original had a data fault not over when the copy started (a crash, a
  power loss, a restore...) may be taken in without proof, and is not judged.
"""

from __future__ import annotations

from rumor.experiments import faults
from rumor.experiments.sim.bounds import Bounds
from rumor.experiments.sim.cluster import Cluster, live_processes
from rumor.experiments.sim.schedule import Schedule
from rumor.experiments.sim.violation import Violation
from rumor.node.replication.engine.messages import NoticeKind


def removed_still_running(cluster: Cluster) -> list[Violation]:
    now_ms = cluster.loop.now_ms
    return [
        Violation(
            "a removed node stops",
            f"node-{slot}, removed at {removed_ms:.0f} ms, still runs at {now_ms:.0f} ms",
        )
        for slot, removed_ms in sorted(cluster.removed_ms.items())
        if cluster.processes[slot].running
    ]


def gone_members(cluster: Cluster) -> dict[int, float]:
    """Ids some live node's GC still counts that no running process holds: id -> since
    when (the last of its processes stopped; a made-up id, from the start)."""
    running = {p.node_id for p in cluster.every_process if p.running}
    gone: dict[int, float] = {}
    for process in live_processes(cluster):
        for member in process.engine.membership.counted():
            if member in running or member in gone:
                continue
            stops = [p.stopped_ms or 0.0 for p in cluster.every_process if p.node_id == member]
            gone[member] = max(stops, default=0.0)
    return gone


def gc_held_back(cluster: Cluster, bounds: Bounds) -> list[Violation]:
    """**GC is not stalled**: a member gone for good (a process replaced at its address,
    a wiped disk, a made-up id) stops holding garbage collection back within
    ``Bounds.retire_ms`` (the member timeout, detection and the spreading of the
    retirement)."""
    if not bounds.retire_ms:
        return []
    now_ms = cluster.loop.now_ms
    return [
        Violation(
            "GC is not stalled",
            f"member {member:016x}, gone since {since:.0f} ms, still held GC back at"
            f" {now_ms:.0f} ms (bound {bounds.retire_ms} ms)",
        )
        for member, since in sorted(gone_members(cluster).items())
        if now_ms - since > bounds.retire_ms
    ]


def duplicate_ids(cluster: Cluster, schedule: Schedule, bounds: Bounds) -> list[Violation]:
    violations = []
    for slot, (source, started_ms) in cluster.duplicates.items():
        disturbed = [
            f
            for f in schedule.faults
            if f.end_ms >= started_ms and source in f.slots and f.kind in faults.DATA
        ]
        if disturbed:
            continue  # the original went down: the copy may be taken in without proof
        if cluster.removed_ms.get(source, started_ms + 1) <= started_ms:
            # A copy of a removed node's disk holds a removed id: refused as removed.
            if cluster.processes[slot].running:
                violations.append(
                    Violation(
                        "one process per id",
                        f"the copy of removed node-{source} on node-{slot} still runs",
                    )
                )
            continue
        reachable_ms = max(
            [started_ms]
            + [
                f.end_ms
                for f in schedule.faults
                if f.kind in faults.NETWORK and f.end_ms >= started_ms
            ]
        )
        copy, original = cluster.processes[slot], cluster.processes[source]
        detected = [t for t, n in copy.notices if n.kind is NoticeKind.DUPLICATE_ID]
        if original.stopped_by is NoticeKind.DUPLICATE_ID:
            violations.append(
                Violation("one process per id", f"the original node-{source} stopped, not its copy")
            )
        elif not detected:
            violations.append(
                Violation(
                    "one process per id",
                    f"the copy of node-{source} on node-{slot} was never refused",
                )
            )
        elif detected[0] > reachable_ms + bounds.duplicate_ms:
            violations.append(
                Violation(
                    "one process per id",
                    f"the copy of node-{source} was refused {detected[0] - reachable_ms:.0f} ms"
                    f" after both were reachable (bound {bounds.duplicate_ms} ms)",
                )
            )
    return violations
