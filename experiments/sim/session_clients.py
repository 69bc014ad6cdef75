"""Session clients in the simulator: a client that moves between nodes, in a session.

A ``SessionPlan`` (``schedule``) is one client's calls, in order, each on a node of its own
choosing (a slot): reads, puts and deletes of a small key space of its own
(``session-key-NNN``). The client behaves as the SDK's session does on a real
node: before a call, the node must cover the session token (``replica.lacking``);
while it does not, the node is asked to catch up (``Engine.catch_up_with``) and
the client waits, up to ``WAIT_MS``, then gives up on that call (unanswered) —
never reading older data. A write counts once acknowledged (durable); its
version joins the token. Calls run one after another, ``THINK_MS`` apart, and
none starts (or goes on waiting) from ``stop_ms``, the heal: every write is
issued by then, as the invariants assume.

A token names origins; one the cluster removed for ever counts as covered
(docs/ALGORITHM.md), so what a client wrote through a node later removed is
not judged; nor is what was written through a node whose disk was later wiped
or restored from a stale copy (lost with it, as the lost-writes invariant
reports it: the node may issue those seqs again).

What the clients saw is judged by ``properties.session_guarantees``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rumor.experiments.properties import session_guarantees
from rumor.experiments.properties.observation import Version
from rumor.experiments.properties.session_guarantees import ClientCall, Kind
from rumor.experiments.sim.cluster import Cluster
from rumor.experiments.sim.ledger import NAMESPACE, ClientWrite
from rumor.experiments.sim.schedule import SessionPlan
from rumor.experiments.sim.violation import Violation

WAIT_MS = 1000  # as a node waits for a session read
RETRY_MS = 5
ASK_AGAIN_MS = 100  # as the node's driver: a waiting read asks the engine again this often
THINK_MS = 5


def key_name(key: int) -> bytes:
    return b"session-key-%03d" % key


@dataclass(slots=True)
class _Client:
    plan: SessionPlan
    token: dict[int, int] = field(default_factory=dict)
    next_call: int = 0


class SessionClients:
    def __init__(self, cluster: Cluster, stop_ms: float) -> None:
        self.cluster = cluster
        self.stop_ms = stop_ms
        self.calls: list[ClientCall] = []

    def start(self, plan: SessionPlan) -> None:
        client = _Client(plan)
        self.cluster.loop.at(plan.start_ms, lambda: self._call(client))

    def _after(self, delay_ms: float, then: Callable[[], None]) -> None:
        self.cluster.loop.at(self.cluster.loop.now_ms + delay_ms, then)

    def _record(self, client: _Client, call: ClientCall) -> None:
        self.calls.append(call)
        client.next_call += 1
        self._after(THINK_MS, lambda: self._call(client))

    def _call(self, client: _Client, deadline_ms: float | None = None) -> None:
        plan = client.plan
        if client.next_call >= len(plan.calls) or self.cluster.loop.now_ms >= self.stop_ms:
            return
        slot, key, op = plan.calls[client.next_call]
        kind = Kind(op)
        name = key_name(key)
        now_ms = self.cluster.loop.now_ms
        deadline = now_ms + WAIT_MS if deadline_ms is None else deadline_ms
        unanswered = ClientCall(plan.client, kind, name.decode(), None, False)
        process = self.cluster.processes.get(slot)
        if process is None or not process.running or not process.engine.serving:
            self._record(client, unanswered)
            return
        lacking = process.replica.lacking(client.token)
        if lacking:
            if now_ms >= deadline:
                self._record(client, unanswered)
                return
            if (deadline - WAIT_MS - now_ms) % ASK_AGAIN_MS < RETRY_MS:
                process.engine.catch_up_with(
                    {origin: client.token[origin] for origin in lacking},
                    self.cluster.now_of(slot),
                )
                process.flush()
            self._after(RETRY_MS, lambda: self._call(client, deadline))
            return
        if kind is Kind.READ:
            self._read(client, slot, name)
        else:
            self._write(client, slot, name, kind, deadline)

    def _read(self, client: _Client, slot: int, name: bytes) -> None:
        process = self.cluster.processes[slot]
        now_s = self.cluster.now_of(slot).wall_ms / 1000
        found = process.replica.read(NAMESPACE, name, now_s)
        header = found[0] if found is not None else process.replica.header(NAMESPACE, name)
        if header is not None:
            _merge(client.token, header.origin, header.seq)
        version = None if found is None else (found[0].hlc, found[0].origin)
        call = ClientCall(
            client.plan.client, Kind.READ, name.decode(), version, True, found is not None
        )
        self._record(client, call)

    def _write(self, client: _Client, slot: int, name: bytes, kind: Kind, deadline: float) -> None:
        process = self.cluster.processes[slot]
        value = b"s%d@%d" % (client.plan.client, len(self.calls))
        entry = self.cluster.write(slot, name, value, tombstone=kind is Kind.DELETE)
        if entry is None:
            self._record(client, ClientCall(client.plan.client, kind, name.decode(), None, False))
            return
        origin, seq = process.node_id, process.replica.seq  # taken in the step that wrote it
        self._until_acknowledged(client, entry, kind, origin, seq, deadline)

    def _until_acknowledged(
        self,
        client: _Client,
        entry: ClientWrite,
        kind: Kind,
        origin: int,
        seq: int,
        deadline: float,
    ) -> None:
        if entry.acked_ms is not None:
            _merge(client.token, origin, seq)
            version = (entry.version.hlc, entry.version.origin)
            call = ClientCall(client.plan.client, kind, entry.key.decode(), version, True)
            self._record(client, call)
            return
        if self.cluster.loop.now_ms >= deadline:
            call = ClientCall(client.plan.client, kind, entry.key.decode(), None, False)
            self._record(client, call)
            return
        self._after(
            RETRY_MS,
            lambda: self._until_acknowledged(client, entry, kind, origin, seq, deadline),
        )


def _merge(token: dict[int, int], origin: int, seq: int) -> None:
    if seq > token.get(origin, 0):
        token[origin] = seq


def _lost_to_replaced_disks(cluster: Cluster) -> set[Version]:
    """Versions written through a node whose disk was later wiped or restored from a stale
    copy: what only it held is gone, and it may issue those seqs again (peers never saw
    them), so a token naming them is covered by other writes. As for lost writes
    (``write_checks``), such a write is not judged."""
    return {
        (write.version.hlc, write.version.origin)
        for write in cluster.ledger.writes
        if any(t >= write.issued_ms for t in cluster.history[write.slot].replaced_ms)
    }


def session_violations(cluster: Cluster, clients: SessionClients) -> list[Violation]:
    """The session clients' calls judged by the session guarantees (every client is in a
    session: none may break one), but for what a removed node or a replaced disk took
    with it."""
    removed = {
        cluster.processes[slot].node_id for slot in cluster.removed_ms if slot in cluster.processes
    }
    lost = _lost_to_replaced_disks(cluster)
    deletes: dict[str, list[Version | None]] = {}
    for write in cluster.ledger.writes:
        if write.tombstone:
            deletes.setdefault(write.key.decode(), []).append(
                (write.version.hlc, write.version.origin)
            )
    return [
        Violation(
            session_guarantees.NAME,
            f"client {found.call.client} {found.guarantee.value}: {found.call.kind.value} of"
            f" {found.call.key} got {found.call.version}, wanted at least {found.wanted}",
        )
        for found in session_guarantees.violations(clients.calls, deletes)
        if found.wanted[1] not in removed and found.wanted not in lost
    ]
