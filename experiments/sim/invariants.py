"""What must hold once a schedule's faults are healed, and the bounds it must hold within.

Checked after every schedule, on the processes still running. Four are the
properties of :mod:`rumor.experiments.properties`, judged on the cluster
reduced to their shape (``observe``: the live nodes' records of every key
written, the ledger's writes, and the records held anywhere as seen):

- **convergence**: within ``Bounds.convergence_ms`` of the heal every node's
  audit buckets are equal (so they hold the same records), and their
  ``audit.digest`` is equal at the end — or, while a member that is down (not
  removed) holds garbage collection back at different points on different
  nodes, or a seed never joined holds it back on some, every key reads the
  same on every node (``pinned_apart``; counted as reported);
- **lost-writes**: every acknowledged write is held by every live node, or
  hidden by a higher version of its key there (even an expired one), or may
  have been purged (a tombstone or expired put at least as new is known);
- **lww**: every key ends at one version on every node, its highest
  acknowledged write or one a write not acknowledged made;
- **no-resurrection**: a key whose highest acknowledged write is a delete or
  an expired put reads back live on no node;

and the simulator's own:

- **a removed node stops** (it is told so by the peers that refuse it);
- **GC is not stalled**: a member gone for good (replaced at its address, wiped,
  made up) is retired, and stops holding garbage collection back, within
  ``Bounds.retire_ms``;
- **one process per id**: a copy of a live node's disk started on another
  address gets ``DUPLICATE_ID`` and stops within ``Bounds.duplicate_ms`` of both
  being reachable, and the original keeps running.

Reported, not asserted (such writes count as not acknowledged for the
properties): writes acknowledged by a node after it was removed; writes only
a wiped, restored or removed node held; under durability ``wal``, writes
lost to a power loss (a WAL write survives a crash, not a power cut); and
the other exemptions ``_exemption`` names.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rumor.experiments import faults
from rumor.experiments.properties import convergence, lost_writes, lww, resurrection
from rumor.experiments.properties.observation import Observation, Record, Write
from rumor.experiments.properties.purgeability import is_live, purgeable_versions
from rumor.experiments.sim.cluster import Cluster
from rumor.experiments.sim.ledger import NAMESPACE, ClientWrite
from rumor.experiments.sim.process import BASE_WALL_MS, SimulatedProcess
from rumor.experiments.sim.schedule import Schedule
from rumor.node.core import audit
from rumor.node.core.record import RecordHeader
from rumor.node.replication.engine.messages import NoticeKind
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.storage.store import KV


@dataclass(frozen=True, slots=True)
class Bounds:
    convergence_ms: int
    duplicate_ms: int
    retire_ms: int = 0  # a member gone for good is retired by then (0: never)

    @classmethod
    def of(cls, protocol: ProtocolConfig, members: int, *, forged: bool = False) -> Bounds:
        """From the config: a call stranded by the partition times out (rpc or join call
        timeout),
        groups meet again (a seed contact), a dead member is found alive (suspicion),
        then a few anti-entropy rounds and a GC grace. After a forged watermark claim
        (or a write made while serving alone), add two audit intervals: a clamped lie
        still vouches for seqs up to the origin's high seq, a purge may have raced an
        unknown node's older put, and only the audit — the backstop — repairs those.
        A duplicate: its first join call and seed retry, then a few
        probe rounds for the proof."""
        convergence = (
            max(protocol.rpc_timeout_ms, protocol.join_call_timeout_ms)
            + protocol.seed_contact_interval_ms
            + protocol.suspicion_ms(members)
            + 5 * protocol.anti_entropy_interval_ms
            # Expired records count in the audit buckets until purged, and purges need
            # a GC checkpoint, its grace and a sweep on every node.
            + 2 * (protocol.gc_grace_ms + protocol.housekeeping_interval_ms)
            + protocol.sweep_interval_ms
            + (2 * protocol.audit_interval_ms if forged else 0)
        )
        duplicate = (
            protocol.join_call_timeout_ms
            + protocol.seed_retry_max_ms
            + 4 * protocol.probe_interval_ms
            + 2 * protocol.probe_timeout_ms
        )
        # Gone: found silent (a probe round), suspected, declared dead, timed out, and
        # the retirement carried to every node (a few rounds of anti-entropy).
        retire = (
            protocol.member_timeout_ms
            + (members + 2) * protocol.probe_interval_ms
            + 3 * protocol.probe_timeout_ms
            + protocol.suspicion_ms(members)
            + 2 * protocol.housekeeping_interval_ms
            + 5 * protocol.anti_entropy_interval_ms
            if protocol.member_timeout_ms
            else 0
        )
        return cls(convergence, duplicate, retire)


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    detail: str


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


def live_processes(cluster: Cluster) -> list[SimulatedProcess]:
    """The processes still running on slots not removed from the cluster."""
    return [
        p for slot, p in cluster.processes.items() if p.running and slot not in cluster.removed_ms
    ]


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


def observe(
    cluster: Cluster, live: list[SimulatedProcess], exemptions: dict[int, str]
) -> Observation:
    """The cluster in the properties' shape: the live nodes' records of every key written.

    A write is acknowledged when the client was told and it has no exemption;
    an exempt acknowledged write is a record seen (it existed), as is every
    record a live node holds.
    """
    now_s = (BASE_WALL_MS + int(cluster.loop.now_ms)) / 1000
    writes = tuple(
        Write(
            write.key.decode(),
            write.version,
            write.tombstone,
            write.expiration or None,
            write.acked_ms is not None and write.index not in exemptions,
            write.index,
        )
        for write in cluster.ledger.writes
    )
    keys = sorted({write.key for write in cluster.ledger.writes})
    held: dict[tuple[str, str], Record] = {}
    for process in live:
        for key in keys:
            header = process.replica.header(NAMESPACE, key)
            if header is not None:
                held[(process.address, key.decode())] = Record(
                    key.decode(), header.version, header.tombstone, header.expiration or None
                )
    exempt = [
        Record(w.key, w.version, w.deleted, w.expiration)
        for w in writes
        if w.version is not None and w.index in exemptions
    ]
    return Observation(
        tuple(p.address for p in live), writes, held, now_s, (*held.values(), *exempt)
    )


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
    violations += _properties(cluster, schedule, live, reported)
    violations += _duplicates(cluster, schedule, bounds)
    violations += _removed_still_running(cluster)
    violations += _gc_held_back(cluster, bounds)
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


def _properties(
    cluster: Cluster, schedule: Schedule, live: list[SimulatedProcess], reported: dict[str, int]
) -> list[Violation]:
    """Lost writes, resurrections and LWW, with exempt writes reported rather than asserted."""
    exemptions = {
        write.index: reason
        for write in cluster.ledger.acknowledged
        if (reason := _exemption(cluster, write, schedule))
    }
    observation = observe(cluster, live, exemptions)
    violations: list[Violation] = []
    for write, behind in _lost(cluster, observation):
        if write.index in exemptions:
            reported[exemptions[write.index]] += 1
            continue
        what = "delete" if write.tombstone else "ttl put" if write.expiration else "put"
        violations.append(
            Violation(
                lost_writes.NAME,
                f"acknowledged {what} #{write.index} of {write.key.decode()} on node-"
                f"{write.slot} at {write.acked_ms:.0f} ms is gone: "
                f"{_describe(behind[0], observation.now_s)}",
            )
        )
    violations += _resurrections(observation)
    for wrong in lww.lww(observation):
        if _moving(observation, wrong):
            reported["keys a write not vouched for was still moving"] += 1
        else:
            violations.append(Violation(lww.NAME, f"{wrong.key}: {wrong.wrong}"))
    return violations


def _removed_still_running(cluster: Cluster) -> list[Violation]:
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


def _gc_held_back(cluster: Cluster, bounds: Bounds) -> list[Violation]:
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


def _lost(
    cluster: Cluster, observation: Observation, since_ms: float = -1.0
) -> list[tuple[ClientWrite, list[lost_writes.Behind]]]:
    """Acknowledged writes (exempt or not) after ``since_ms`` that some live node lacks."""
    purgeable = purgeable_versions(observation)
    out = []
    for write in cluster.ledger.acknowledged:
        if write.acked_ms is None or write.acked_ms <= since_ms:
            continue
        looked_for = replace(observation.writes[write.index], acknowledged=True)
        behind = lost_writes.behind(observation, looked_for, purgeable)
        if behind:
            out.append((write, behind))
    return out


def _moving(observation: Observation, wrong: lww.WrongKey) -> bool:
    """Nodes differ on a key because of a write not vouched for, which may still be moving.

    The final state is read as soon as the nodes agree (their audit buckets)
    or a removed node stops, not once every write has settled: a write issued
    just before the heal may be held by its node alone, not yet durable nor
    acknowledged; and what an exempt write brings back (a node serving alone,
    a stale copy, a forged claim) may still be spreading. Reported, as the
    exempt writes themselves are.
    """
    if wrong.wrong not in (lww.Wrong.DISAGREE, lww.Wrong.MISSING_LIVE):
        return False
    unsure = {w.version for w in observation.writes if w.key == wrong.key and not w.acknowledged}
    held = {record.version for (_, key), record in observation.held.items() if key == wrong.key}
    return bool(unsure & held)


def _describe(behind: lost_writes.Behind, now_s: float) -> str:
    record = behind.holds
    if record is None:
        return f"{behind.node} holds nothing"
    kind = "tombstone" if record.deleted else "live" if is_live(record, now_s) else "expired"
    return f"{behind.node} holds {kind} {record.version}"


def _resurrections(observation: Observation) -> list[Violation]:
    """One violation per key that reads live again after its delete or expiry."""
    violations: list[Violation] = []
    keys: set[str] = set()
    for found in resurrection.revived(observation):
        if found.key in keys:
            continue
        keys.add(found.key)
        how = "deleted" if found.gone_by.deleted else "expired"
        violations.append(
            Violation(
                resurrection.NAME,
                f"{found.key} {how} by #{found.gone_by.index} reads live again on {found.node}",
            )
        )
    return violations


def _exemption(cluster: Cluster, write: ClientWrite, schedule: Schedule) -> str:
    """Why losing ``write`` would not be the protocol's fault ("" if it would be)."""
    if write.after_removal:
        return "after removal"
    history = cluster.history[write.slot]
    acked = write.acked_ms or 0.0
    if history.removed_ms is not None or any(t >= acked for t in history.replaced_ms):
        return "on wiped, restored or removed nodes"
    if schedule.durability == "wal" and any(t >= acked for t in history.power_lost_ms):
        return "wal power loss"
    if any(other.alone and other.key == write.key for other in cluster.ledger.writes):
        # A node serving alone (its seeds unreachable) writes what the rest of the
        # cluster has never heard of; their GC cannot count it, so a delete they purge
        # before the merge no longer beats its older put. Bounded in practice by the
        # GC grace; known, reported, and written down in docs/experiments.md.
        return "a key also written by a node serving alone"
    if any(acked <= t for t in cluster.restored_ms):
        # A node restarted on a stale copy of its disk holds records that GC may have
        # purged the replacements of since the copy was taken: they can come back.
        # Known, reported, and written down in docs/experiments.md.
        return "before a stale copy was restored"
    forged_until = schedule.forged_until_ms
    if forged_until is not None and acked <= forged_until:
        # A clamped forged claim still vouches for seqs up to the origin's known high seq:
        # what it hid can be lost or, its tombstone purged, come back. The clamp promises
        # liveness (later writes arrive: ``writes_missing_after``), not safety against a
        # peer that lies with the cluster's credentials.
        return "before a forged claim"
    return ""


def writes_missing_after(cluster: Cluster, schedule: Schedule, since_ms: float) -> list[Violation]:
    """Acknowledged writes after ``since_ms`` that some live node does not hold yet
    (neither them nor a newer version of their key, nor purged), leaving out those with
    an exemption of their own (a stale copy restored later, a node serving alone...)."""
    live = live_processes(cluster)
    observation = observe(cluster, live, {})
    return [
        Violation(
            "later writes arrive after a forged claim",
            f"#{write.index} of {write.key.decode()} (acknowledged at"
            f" {write.acked_ms:.0f} ms) is not on {behind[0].node}",
        )
        for write, behind in _lost(cluster, observation, since_ms)
        if not _exemption(cluster, write, schedule)
    ]


def _duplicates(cluster: Cluster, schedule: Schedule, bounds: Bounds) -> list[Violation]:
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
