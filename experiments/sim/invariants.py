"""What must hold once a schedule's faults are healed, and the bounds it must hold within.

Checked after every schedule, on the processes still running (``check``), each
family of checks in its module, every time bound from the protocol config
(``bounds``):

- **convergence**, here: within ``Bounds.convergence_ms`` of the heal every
  node's audit buckets are equal (so they hold the same records), and their
  ``audit.digest`` is equal at the end — or, while a member that is down (not
  removed) holds garbage collection back at different points on different
  nodes, or a seed never joined holds it back on some, every key reads the
  same on every node (``pinned_apart``; counted as reported). ``agreed`` is
  the same judgement made while the run goes on: the run polls it to learn
  when the nodes settled;
- what became of the writes (``write_checks``): **lost-writes**, **lww** and
  **no-resurrection**, the other three properties of
  :mod:`rumor.experiments.properties`, judged on the cluster reduced to their
  shape (the live nodes' records of every key written, the ledger's writes,
  and the records held anywhere as seen);
- the membership (``membership_checks``): **a removed node stops**, **GC is
  not stalled** (a member gone for good is retired within
  ``Bounds.retire_ms``), **one process per id** (a copy of a live node's disk
  started elsewhere gets ``DUPLICATE_ID`` and stops within
  ``Bounds.duplicate_ms``, and the original keeps running);
- and the session guarantees of the session clients
  (``session_clients.session_violations``), checked by the run beside these.

Reported, not asserted (``REPORTED``; such writes count as not acknowledged
for the properties): writes acknowledged by a node after it was removed;
writes only a wiped, restored or removed node held; under durability
``wal``, writes lost to a power loss (a WAL write survives a crash, not a
power cut); the other exemptions ``write_checks`` names; and the purges a
down member or a seed never joined hold apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rumor.experiments.properties import convergence
from rumor.experiments.sim.bounds import Bounds
from rumor.experiments.sim.cluster import Cluster, live_processes
from rumor.experiments.sim.ledger import NAMESPACE
from rumor.experiments.sim.membership_checks import (
    duplicate_ids,
    gc_held_back,
    removed_still_running,
)
from rumor.experiments.sim.process import BASE_WALL_MS, SimulatedProcess
from rumor.experiments.sim.schedule import Schedule
from rumor.experiments.sim.violation import Violation
from rumor.experiments.sim.write_checks import write_violations
from rumor.node.core import audit
from rumor.node.core.record import RecordHeader
from rumor.node.storage.store import KV


@dataclass(slots=True)
class Outcome:
    violations: list[Violation]
    reported: dict[str, int]
    writes: int
    acknowledged: int
    refused: int
    heal_ms: int
    converged_ms: float | None
    virtual_ms: float
    messages: int
    wall_s: float
    notices: dict[str, int] = field(default_factory=dict)
    snapshot_joins: int = 0  # copies installed (a join by snapshot that went through)
    snapshot_failures: int = 0  # fetches that failed (the joiner fell back to anti-entropy)
    rejoins: int = 0  # nodes refused as removed that rejoined as new (--rejoin-as-new)

    @property
    def failed(self) -> bool:
        return bool(self.violations)

    @property
    def invariants_broken(self) -> set[str]:
        return {v.invariant for v in self.violations}

    def summary(self) -> str:
        settled = (
            f"converged {self.converged_ms - self.heal_ms:.0f} ms after the heal"
            if self.converged_ms is not None
            else "did not converge"
        )
        reported = ", ".join(f"{k} {v}" for k, v in sorted(self.reported.items()) if v)
        snapshots = (
            f", {self.snapshot_joins} snapshot joins ({self.snapshot_failures} fetches failed)"
            if self.snapshot_joins or self.snapshot_failures
            else ""
        )
        lines = [
            f"{self.acknowledged}/{self.writes} writes acknowledged ({self.refused} refused),"
            f" {settled}, {self.messages:,} messages, {self.wall_s:.2f} s"
            + snapshots
            + (f"; reported: {reported}" if reported else "")
        ]
        lines += [f"  VIOLATED {v.invariant}: {v.detail}" for v in self.violations[:10]]
        if len(self.violations) > 10:
            lines.append(f"  ... and {len(self.violations) - 10} more")
        return "\n".join(lines)


def agreed(cluster: Cluster) -> bool:
    """Every running node holds the same records (equal audit buckets) or, while a
    member that is down pins garbage collection, reads the same (``pinned_apart``).
    Records a node defers (from a clock ahead of its own) are still on their way:
    not agreed while any node holds one. Nor while two nodes hold different
    versions of a written key: the buckets do not tell one tombstone from another,
    so a delete just made would still be on its way."""
    live = live_processes(cluster)
    if any(p.replica.deferred_held for p in live):
        return False
    if len(live) < 2:
        return True
    if not _one_version_per_key(cluster, live):
        return False
    first = live[0].replica.audit_buckets
    if all(p.replica.audit_buckets == first for p in live[1:]):
        return True
    return pinned_apart(cluster, live)


def _one_version_per_key(cluster: Cluster, live: list[SimulatedProcess]) -> bool:
    """No written key held in two versions (a node that purged it holds none)."""
    for key in {write.key for write in cluster.ledger.writes}:
        versions = set()
        for process in live:
            header = process.replica.header(NAMESPACE, key)
            if header is not None:
                versions.add(header.version)
                if len(versions) > 1:
                    return False
    return True


def held_back_by_a_seed(live: list[SimulatedProcess]) -> bool:
    """Some node purges nothing because it has a seed it never joined through."""
    return any(not p.engine.joining.may_collect_garbage() for p in live)


def pinned_apart(cluster: Cluster, live: list[SimulatedProcess]) -> bool:
    """The nodes differ only in what a down member, or a seed never joined, keeps them
    from purging.

    A member that is down (not removed) is counted by every node's GC with the last
    vector that node heard from it, and those differ from node to node: one node may
    have purged an expired record or a tombstone the member was known (to it) to
    have seen, while another keeps it until the member is back or removed. Their
    buckets then differ for as long, though every key reads the same everywhere.
    A node with a seed it never joined through purges nothing at all (the seed may
    lead a group that formed apart; see ``engine.joining``): a seed address whose
    node was removed before this one ever reached it holds it back for as long as
    it is configured, while nodes that did reach it purge.
    """
    running = {p.engine.node_id for p in live}
    down = any(set(p.engine.membership.counted()) - running for p in live)
    if not down and not held_back_by_a_seed(live):
        return False
    now_s = (BASE_WALL_MS + int(cluster.loop.now_ms)) / 1000
    first = _readable(live[0], now_s)
    return all(_readable(p, now_s) == first for p in live[1:])


def _readable(process: SimulatedProcess, now_s: float) -> set[tuple[bytes, int, int]]:
    """(key, origin, seq) of every record that reads live on ``process``."""
    out = set()
    for stored_key, raw in process.replica.store.scan(KV, b"", None):
        header = RecordHeader.decode(raw)
        if _reads_live(header, now_s):
            out.add((stored_key, header.origin, header.seq))
    return out


def _reads_live(header: RecordHeader, now_s: float) -> bool:
    return not header.tombstone and not (0 < header.expiration <= now_s)


#: What a check reports rather than asserts, each for a reason docs/experiments.md states.
REPORTED = (
    "after removal",
    "on wiped, restored or removed nodes",
    "wal power loss",
    "before a forged claim",
    "before a stale copy was restored",
    "a key also written by a node serving alone",
    "purges held apart by a down member",
    "purges held back by a seed never joined",
    "keys a write not vouched for was still moving",
)


def check(
    cluster: Cluster,
    schedule: Schedule,
    bounds: Bounds,
    heal_ms: int,
    converged_ms: float | None,
    wall_s: float,
) -> Outcome:
    reported = dict.fromkeys(REPORTED, 0)
    live = live_processes(cluster)
    violations = _convergence(live, bounds, heal_ms, converged_ms, reported)
    violations += write_violations(cluster, schedule, live, reported)
    violations += duplicate_ids(cluster, schedule, bounds)
    violations += removed_still_running(cluster)
    violations += gc_held_back(cluster, bounds)
    notices: dict[str, int] = {}
    for process in cluster.every_process:
        for _, notice in process.notices:
            notices[notice.kind.value] = notices.get(notice.kind.value, 0) + 1
    return Outcome(
        violations=violations,
        reported=reported,
        writes=len(cluster.ledger.writes) + cluster.ledger.refused,
        acknowledged=len(cluster.ledger.acknowledged),
        refused=cluster.ledger.refused,
        heal_ms=heal_ms,
        converged_ms=converged_ms,
        virtual_ms=cluster.loop.now_ms,
        messages=cluster.network.stats.messages,
        wall_s=wall_s,
        notices=notices,
        snapshot_joins=sum(len(times) for times in cluster.installed_ms.values()),
        snapshot_failures=sum(cluster.snapshots.failed.values()),
        rejoins=sum(len(times) for times in cluster.rejoined_ms.values()),
    )


def _convergence(
    live: list[SimulatedProcess],
    bounds: Bounds,
    heal_ms: int,
    converged_ms: float | None,
    reported: dict[str, int],
) -> list[Violation]:
    found = convergence.convergence(
        {p.address: audit.digest(p.replica.audit_buckets) for p in live},
        None if converged_ms is None else (converged_ms - heal_ms) / 1000,
        bounds.convergence_ms / 1000,
    )
    if not found.in_time:
        detail = (
            f"{len(found.groups)} different audit digests among {len(live)} nodes"
            f" {bounds.convergence_ms} ms after the heal"
        )
        return [Violation(convergence.NAME, detail)]
    if not found.agree:
        if held_back_by_a_seed(live):
            reported["purges held back by a seed never joined"] += 1
        else:
            reported["purges held apart by a down member"] += 1
    return []
