"""What became of the client writes: the lost-writes, lww and no-resurrection checks.

Three of the properties of :mod:`rumor.experiments.properties`, judged on the
cluster reduced to their shape (``observe``: the live nodes' records of every
key written, the ledger's writes, and the records held anywhere as seen):

- **lost-writes**: every acknowledged write is held by every live node, or
  hidden by a higher version of its key there (even an expired one), or may
  have been purged (a tombstone or expired put at least as new is known);
- **lww**: every key ends at one version on every node, its highest
  acknowledged write or one a write not acknowledged made;
- **no-resurrection**: a key whose highest acknowledged write is a delete or
  an expired put reads back live on no node.

An acknowledged write whose loss would not be the protocol's fault has an
exemption (``_exemption``: acknowledged by a node after its removal, held
only by a wiped, restored or removed node, lost to a power cut under
durability ``wal``, a key also written by a node serving alone, made before a
stale copy was restored or before a forged claim): it is reported under that
reason rather than asserted, and counts as not acknowledged — a record that
was seen. A key the nodes differ on because of a write not vouched for, which
may still be moving, is reported likewise (``_moving``).

After a forged watermark claim, ``writes_missing_after`` checks the liveness
the clamp promises: the writes acknowledged after it reach every live node.
"""

from __future__ import annotations

from dataclasses import replace

from rumor.experiments.properties import lost_writes, lww, resurrection
from rumor.experiments.properties.observation import Observation, Record, Write
from rumor.experiments.properties.purgeability import is_live, purgeable_versions
from rumor.experiments.sim.cluster import Cluster, live_processes
from rumor.experiments.sim.ledger import NAMESPACE, ClientWrite
from rumor.experiments.sim.process import BASE_WALL_MS, SimulatedProcess
from rumor.experiments.sim.schedule import Schedule
from rumor.experiments.sim.violation import Violation


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


def write_violations(
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
