"""Convergence of replicas under random schedules: the key property of the replication core.

3 to 7 replicas on MemoryStore, each with its own clock offset from one
virtual wall clock and its own durability mode, run a random schedule of steps:

- local writes and deletes (three keys, so conflicts happen; some with an
  expiration);
- epidemic pushes: what a replica has ready to push goes to random peers,
  possibly twice, possibly lost, and stays in flight until a ``deliver`` step
  hands one message over (in random order) or a ``drop`` step loses it;
- anti-entropy rounds between random pairs with a small random budget: the
  asker's digest is its ``own_watermarks()``, the responder answers with
  ``delta_for``, the asker applies records and coverage, then pushes back what
  the responder lacks; every message carries its sender's HLC;
- clock advances (and the deferred records that fall due), WAL syncs for
  replicas in fsync mode, and restarts: a new Replica on the same store, which
  must read exactly as before.

After every step, on every replica, the watermark invariant (docs/ALGORITHM.md, invariant 3):
every (origin, seq) created anywhere that the replica's watermarks claim as
seen is held, or superseded by a newer record for its key that is held or
deferred, or itself deferred. At the end everything in flight is delivered
and anti-entropy runs between all pairs until quiet; then every replica holds
the same records (key -> header bytes, and values), has equal audit buckets,
and that state is the greatest version ever created for each key, tombstones
included.

Schedules are drawn by hypothesis (shrinkable; reproduce a run with
``pytest --hypothesis-seed=N``); ``random_schedule(seed)`` builds longer ones
from a plain ``random.Random`` seed for the fixed-seed runs at the end.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rumor.node.core import audit
from rumor.node.core.record import RecordHeader
from rumor.node.core.version import Version
from rumor.node.replication.replica.delta import WireRecord
from rumor.node.replication.replica.replica import DELTA_BUDGET, Durability, Replica, Write
from rumor.node.storage import MemoryStore, layout
from rumor.node.storage.store import DEFERRED, KV, VAL

BASE_WALL_MS = 1_700_000_000_000
MAX_CLOCK_OFFSET_MS = 500
HORIZON_MS = 2 * MAX_CLOCK_OFFSET_MS
NS = bytes.fromhex("00112233445566778899aabbccddeeff")
KEYS = (b"apple", b"banana", b"cherry")
BUDGETS = (1, 120, 400, DELTA_BUDGET)
FAR_AHEAD_MS = HORIZON_MS + 1_500  # a clock this far ahead gets its records deferred
SETTLE_PASSES = 30

Step = tuple[str, int, int, int]

STEP_KINDS = (
    ["write"] * 5
    + ["push"] * 3
    + ["deliver"] * 4
    + ["exchange"] * 3
    + ["tick"] * 2
    + ["durable"] * 2
    + ["restart", "drop"]
)


@dataclass(frozen=True, slots=True)
class Created:
    """A record some replica wrote, as the test remembers it."""

    stored_key: bytes
    header: bytes
    value: bytes
    version: Version


@dataclass(slots=True)
class Message:
    """An epidemic push on its way: records, for one target, with the sender's HLC."""

    target: int
    records: list[WireRecord]
    sender_hlc: int


@dataclass(slots=True)
class Node:
    node_id: int
    store: MemoryStore
    durability: Durability
    skew_ms: int
    replica: Replica


@dataclass(slots=True)
class Simulation:
    nodes: list[Node]
    wall_ms: int = BASE_WALL_MS
    in_flight: list[Message] = field(default_factory=list)
    created: dict[tuple[int, int], Created] = field(default_factory=dict)
    writes: int = 0
    tick_scale_ms: int = 5
    log: list[str] = field(default_factory=list)

    @classmethod
    def build(
        cls, durabilities: list[Durability], skews: list[int], tick_scale_ms: int = 5
    ) -> Simulation:
        nodes = []
        for index, (durability, skew) in enumerate(zip(durabilities, skews, strict=True)):
            store = MemoryStore()
            node_id = 0x5EED_0000_0000_0000 + (index + 1) * 0x1_0001
            replica = open_replica(store, node_id, BASE_WALL_MS + skew, durability)
            nodes.append(Node(node_id, store, durability, skew, replica))
        return cls(nodes, tick_scale_ms=tick_scale_ms)

    # ---- time ----------------------------------------------------------------------

    def wall_of(self, index: int) -> int:
        return self.wall_ms + self.nodes[index].skew_ms

    # ---- steps ---------------------------------------------------------------------

    def run(self, step: Step) -> None:
        kind, a, b, c = step
        count = len(self.nodes)
        if kind == "write":
            self.write(a % count, b, c)
        elif kind == "push":
            self.push(a % count, b)
        elif kind == "deliver":
            if self.in_flight:
                self.deliver(self.in_flight.pop(a % len(self.in_flight)))
        elif kind == "drop":
            if self.in_flight:
                self.in_flight.pop(a % len(self.in_flight))
        elif kind == "exchange":
            asker = a % count
            responder = (asker + 1 + b % (count - 1)) % count
            self.exchange(asker, responder, BUDGETS[c % len(BUDGETS)])
        elif kind == "tick":
            self.tick(1 + c * self.tick_scale_ms)
        elif kind == "durable":
            self.make_durable(a % count)
        elif kind == "restart":
            self.restart(a % count)
        else:  # pragma: no cover - the strategies only draw the kinds above
            raise AssertionError(kind)

    def write(self, index: int, shape: int, choice: int) -> None:
        node = self.nodes[index]
        wall = self.wall_of(index)
        writes = []
        for offset in range(1 + shape % 2):
            pick = choice // (1 + offset * 7)
            key = KEYS[(pick + offset) % len(KEYS)]
            self.writes += 1
            value = b"%d:%d" % (index, self.writes)
            flavour = (pick // 3) % 5
            if flavour == 3:
                writes.append(Write(NS, key, tombstone=True))
            elif flavour == 4:
                expiration = wall // 1000 + 1 + pick % 30
                writes.append(Write(NS, key, value, expiration=expiration))
            else:
                writes.append(Write(NS, key, value))
        for applied, write in zip(node.replica.write_many(writes, wall), writes, strict=True):
            header = applied.header
            self.created[(header.origin, header.seq)] = Created(
                layout.record_key(NS, write.key),
                header.encode(),
                b"" if write.tombstone else write.value,
                header.version,
            )

    def push(self, index: int, fan: int) -> None:
        node = self.nodes[index]
        records = node.replica.take_ready_to_push()
        if not records:
            return
        for target in range(len(self.nodes)):
            if target == index:
                continue
            action = (fan >> (2 * target)) & 3
            copies = {0: 0, 1: 1, 2: 2, 3: 1}[action]  # 0: lost
            for _ in range(copies):
                self.in_flight.append(Message(target, list(records), node.replica.clock.last))

    def deliver(self, message: Message) -> None:
        target = self.nodes[message.target].replica
        wall = self.wall_of(message.target)
        target.observe_clock(message.sender_hlc, wall)
        target.apply_remote(message.records, wall)

    def exchange(self, asker_index: int, responder_index: int, budget: int) -> None:
        asker = self.nodes[asker_index].replica
        responder = self.nodes[responder_index].replica
        asker_wall = self.wall_of(asker_index)
        responder_wall = self.wall_of(responder_index)
        # A synchronisation: rounds until an answer is complete, or (to interleave
        # with other steps) abandoned after a few; cut-short claims stay provisional.
        asker.begin_sync()
        for _ in range(1 + budget % 3):
            # Request: the asker's digest and HLC.
            responder.observe_clock(asker.clock.last, responder_wall)
            answer = responder.delta_for(asker.sync_digest(), budget)
            responder_vector = responder.own_watermarks()
            # Response: records, coverage, the responder's watermarks and HLC.
            asker.observe_clock(responder.clock.last, asker_wall)
            asker.apply_remote(answer.records, asker_wall, answer.coverage, session=True)
            if answer.complete:
                break
        # Push-back of what the responder lacks.
        back = asker.delta_for(responder_vector, budget)
        if back.records or back.coverage:
            responder.observe_clock(asker.clock.last, responder_wall)
            responder.apply_remote(back.records, responder_wall, back.coverage)

    def tick(self, advance_ms: int) -> None:
        self.wall_ms += advance_ms
        for index, node in enumerate(self.nodes):
            while node.replica.apply_deferred(self.wall_of(index)):
                pass

    def make_durable(self, index: int) -> None:
        replica = self.nodes[index].replica
        replica.store.sync_wal()
        replica.mark_durable(replica.written_ticket)

    def restart(self, index: int) -> None:
        node = self.nodes[index]
        before = snapshot(node.replica)
        node.replica = open_replica(node.store, node.node_id, self.wall_of(index), node.durability)
        after = snapshot(node.replica)
        own_before = before.pop("own_mark")
        own_after = after.pop("own_mark")
        assert after == before, f"restart of node {index} changed its state"
        # Under durability wal the restart skips the rest of the reserved seq block.
        assert isinstance(own_before, int)
        assert isinstance(own_after, int)
        assert own_after >= own_before
        if node.durability is Durability.FSYNC:
            assert own_after == own_before

    # ---- checks --------------------------------------------------------------------

    def check_watermark_invariant(self, *, strict: bool) -> None:
        """What a replica's watermarks claim as seen, it holds, or holds something newer.

        ``strict``: for every record ever created (the watermark promise: held, superseded
        by something held, or deferred; a newer record deferred counts too).
        Otherwise only for the records that are the newest of their key so far:
        a claim on those that is not backed can never be repaired by anti-entropy.
        """
        newest = self.newest_by_key()
        for index, node in enumerate(self.nodes):
            replica = node.replica
            held = held_versions(replica)
            deferred = deferred_versions(replica)
            for origin, mark in replica.own_watermarks().items():
                assert mark <= replica.watermarks.get(origin), "durable mark above the mark"
            for (origin, seq), record in self.created.items():
                if not strict and newest[record.stored_key] is not record:
                    continue
                if not replica.watermarks.seen(origin, seq):
                    continue
                held_version = held.get(record.stored_key)
                if held_version is not None and held_version >= record.version:
                    continue
                if any(v >= record.version for v in deferred.get(record.stored_key, [])):
                    continue
                raise AssertionError(
                    f"node {index} claims ({origin:#x}, {seq}) as seen but holds "
                    f"{held_version} for {record.stored_key!r}, older than {record.version}, "
                    f"and has nothing as new deferred; {self.describe()}"
                )

    def describe(self) -> str:
        clocks = [
            (f"{node.node_id:#x}", node.durability.value, node.skew_ms) for node in self.nodes
        ]
        return f"nodes (id, durability, skew): {clocks}; steps: {self.log}"

    def newest_by_key(self) -> dict[bytes, Created]:
        best: dict[bytes, Created] = {}
        for record in self.created.values():
            current = best.get(record.stored_key)
            if current is None or record.version > current.version:
                best[record.stored_key] = record
        return best

    def settle(self) -> None:
        """Deliver everything, let every clock pass every deferral, run anti-entropy to quiet."""
        self.tick(max(node.skew_ms for node in self.nodes) + FAR_AHEAD_MS + HORIZON_MS + 10_000)
        for index in range(len(self.nodes)):
            self.make_durable(index)
        while self.in_flight:
            self.deliver(self.in_flight.pop(0))
        for node in self.nodes:
            node.replica.take_ready_to_push()
        count = len(self.nodes)
        for _ in range(SETTLE_PASSES):
            before = [held_headers(node.replica) for node in self.nodes]
            vectors = [node.replica.own_watermarks() for node in self.nodes]
            for asker in range(count):
                for responder in range(count):
                    if asker != responder:
                        self.exchange(asker, responder, DELTA_BUDGET)
                        self.make_durable(asker)
                        self.make_durable(responder)
            after = [held_headers(node.replica) for node in self.nodes]
            if after == before and vectors == [n.replica.own_watermarks() for n in self.nodes]:
                return
        raise AssertionError("anti-entropy did not quiet down")

    def expected_state(self) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
        """The greatest version created for each key: headers, and values of live records."""
        best = self.newest_by_key()
        headers = {key: record.header for key, record in best.items()}
        values = {
            key: record.value
            for key, record in best.items()
            if not RecordHeader.decode(record.header).tombstone
        }
        return headers, values

    def check_converged(self) -> None:
        expected_headers, expected_values = self.expected_state()
        first = self.nodes[0].replica
        for index, node in enumerate(self.nodes):
            replica = node.replica
            assert replica.deferred_held == 0
            assert held_headers(replica) == expected_headers, f"node {index}; {self.describe()}"
            assert held_values(replica) == expected_values, f"node {index}"
            assert replica.audit_buckets == recomputed_buckets(replica)
            assert replica.audit_buckets == first.audit_buckets
            assert replica.audit_repairs_total == 0


# ---- helpers ------------------------------------------------------------------------


def open_replica(store: MemoryStore, node_id: int, wall_ms: int, durability: Durability) -> Replica:
    return Replica(
        store,
        new_node_id=node_id,
        wall_ms=wall_ms,
        durability=durability,
        max_clock_offset_ms=MAX_CLOCK_OFFSET_MS,
    )


def held_headers(replica: Replica) -> dict[bytes, bytes]:
    return dict(replica.store.scan(KV, b""))


def held_values(replica: Replica) -> dict[bytes, bytes]:
    return dict(replica.store.scan(VAL, b""))


def held_versions(replica: Replica) -> dict[bytes, Version]:
    return {
        stored_key: RecordHeader.decode(raw).version
        for stored_key, raw in replica.store.scan(KV, b"")
    }


def deferred_versions(replica: Replica) -> dict[bytes, list[Version]]:
    """Stored key -> the versions of the records deferred for it."""
    result: dict[bytes, list[Version]] = {}
    for _, raw in replica.store.scan(DEFERRED, b""):
        record = WireRecord.decode(raw)
        result.setdefault(record.stored_key, []).append(record.decoded().version)
    return result


def recomputed_buckets(replica: Replica) -> list[int]:
    buckets = [0] * audit.BUCKETS
    for stored_key, raw in replica.store.scan(KV, b""):
        header = RecordHeader.decode(raw)
        if not header.tombstone:
            buckets[audit.bucket_of(stored_key)] ^= audit.record_hash(
                stored_key, header.hlc, header.origin
            )
    return buckets


def snapshot(replica: Replica) -> dict[str, object]:
    """Everything a restart must keep (the own mark separately: wal skips a reserved block)."""
    # A watermark of 0 may be stored for an origin the in-memory dict has no entry for.
    marks = {origin: mark for origin, mark in replica.watermarks.vector().items() if mark}
    own_mark = marks.pop(replica.node_id, 0)
    return {
        "headers": held_headers(replica),
        "values": held_values(replica),
        "marks": marks,
        "ranges": {origin: list(spans) for origin, spans in replica.watermarks.ranges.items()},
        "deferred": dict(replica.store.scan(DEFERRED, b"")),
        "deferred_held": replica.deferred_held,
        "counters": (replica.records_held, replica.tombstones_held),
        "buckets": list(replica.audit_buckets),
        "own_mark": own_mark,
    }


def run_schedule(
    durabilities: list[Durability],
    skews: list[int],
    steps: list[Step],
    *,
    strict: bool = False,
    tick_scale_ms: int = 5,
) -> Simulation:
    """Run ``steps``, checking the invariant after each, then settle and check convergence."""
    simulation = Simulation.build(durabilities, skews, tick_scale_ms)
    for step in steps:
        simulation.log.append("/".join(str(part) for part in step))
        simulation.run(step)
        simulation.check_watermark_invariant(strict=strict)
    simulation.settle()
    simulation.check_watermark_invariant(strict=strict)
    simulation.check_converged()
    return simulation


def random_schedule(seed: int, length: int) -> tuple[list[Durability], list[int], list[Step]]:
    """A cluster and a schedule from a plain seed (no hypothesis), reproducible by seed."""
    rng = random.Random(seed)
    count = rng.randint(3, 7)
    durabilities = [rng.choice([Durability.WAL, Durability.FSYNC]) for _ in range(count)]
    skews = [rng.randint(-400, 400) for _ in range(count)]
    steps = [
        (
            rng.choice(STEP_KINDS),
            rng.randrange(100),
            rng.randrange(1 << 14),
            rng.randrange(1000),
        )
        for _ in range(length)
    ]
    return durabilities, skews, steps


# ---- strategies ---------------------------------------------------------------------

steps_strategy = st.lists(
    st.tuples(
        st.sampled_from(STEP_KINDS),
        st.integers(min_value=0, max_value=99),
        st.integers(min_value=0, max_value=(1 << 14) - 1),
        st.integers(min_value=0, max_value=999),
    ),
    min_size=30,
    max_size=90,
)


@st.composite
def clusters(draw: st.DrawFn, *, far_ahead: bool) -> tuple[list[Durability], list[int]]:
    count = draw(st.integers(min_value=3, max_value=7))
    durabilities = draw(
        st.lists(
            st.sampled_from([Durability.WAL, Durability.FSYNC]), min_size=count, max_size=count
        )
    )
    # Within +-400 ms no clock is ever more than twice the offset ahead of another.
    skews = draw(st.lists(st.integers(-400, 400), min_size=count, max_size=count))
    if far_ahead:
        skews[draw(st.integers(0, count - 1))] = FAR_AHEAD_MS
    return durabilities, skews


# Shrinking a failing schedule can take half a minute, so it is off to keep the unit
# suite fast; the failure message lists every step. Add Phase.shrink to minimise one.
CONVERGENCE_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---- the properties -----------------------------------------------------------------


@CONVERGENCE_SETTINGS
@given(clusters(far_ahead=False), steps_strategy)
def test_watermark_invariant_holds_after_every_step(
    cluster: tuple[list[Durability], list[int]], steps: list[Step]
) -> None:
    """For every record: seen means held, superseded by something held, or deferred.

    At risk wherever a coverage claim spans a seq whose record the responder
    replaced by one the answer does not carry: an answer cut short by a small
    budget, a replacement held above the responder's own watermark for its
    origin (it arrived by push, out of order), a replacement not yet durable on
    an fsync replica. test_replication_core.py has one example of each.
    """
    durabilities, skews = cluster
    run_schedule(durabilities, skews, steps, strict=True)


@CONVERGENCE_SETTINGS
@given(clusters(far_ahead=False), steps_strategy)
def test_replicas_converge_with_clocks_within_the_offset(
    cluster: tuple[list[Durability], list[int]], steps: list[Step]
) -> None:
    """No clock is ever beyond the deferral horizon of another: nothing is deferred."""
    durabilities, skews = cluster
    run_schedule(durabilities, skews, steps)


@CONVERGENCE_SETTINGS
@given(clusters(far_ahead=True), steps_strategy)
def test_replicas_converge_with_one_clock_far_ahead(
    cluster: tuple[list[Durability], list[int]], steps: list[Step]
) -> None:
    """One replica's clock is beyond the deferral horizon: its records get deferred.

    Clock steps are short here, so records stay deferred across several steps.
    """
    durabilities, skews = cluster
    run_schedule(durabilities, skews, steps, tick_scale_ms=1)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_replicas_converge_on_long_fixed_seed_schedules(seed: int) -> None:
    durabilities, skews, steps = random_schedule(seed, 250)
    simulation = run_schedule(durabilities, skews, steps)
    assert simulation.created  # the schedule did write something


def test_a_quiet_cluster_converges_to_nothing() -> None:
    simulation = run_schedule([Durability.WAL] * 3, [0, 0, 0], [])
    assert all(not held_headers(node.replica) for node in simulation.nodes)


def test_coverage_claims_are_only_taken_from_answers() -> None:
    """A push carries no coverage; only an anti-entropy answer advances past gaps."""
    simulation = Simulation.build([Durability.WAL] * 3, [0, 0, 0])
    simulation.write(0, 1, 0)
    simulation.write(0, 1, 1)
    pushed = simulation.nodes[0].replica.take_ready_to_push()
    receiver = simulation.nodes[1].replica
    receiver.apply_remote(pushed[1:], simulation.wall_ms)
    origin = simulation.nodes[0].node_id
    assert receiver.watermarks.get(origin) == 0
    assert receiver.watermarks.seen(origin, 2)
    simulation.exchange(1, 0, DELTA_BUDGET)
    assert receiver.watermarks.get(origin) == 4
    simulation.check_watermark_invariant(strict=True)
