"""Safe garbage collection (rumor.node.core.gc.SafeGc and the replica's purge rule).

The two-phase GC rule: a tombstone or expired record (o, s) may be purged only once it is
stable (s <= C[o], C the componentwise minimum of every counted member's
watermark vector, an unknown vector counting as zeros) *and* safe: every
member's vector dominates S (each member's own mark when C was noted), at least
the grace period has passed since, and no member joined since. A lone member
is safe at once.

The first half checks SafeGc against that rule: a model records every
observation SafeGc was given, and whatever the purge rule allows must be
justified by one of them. The second half runs replicas: a key is deleted
while an older put for it is still in flight to a replica that has not seen
it; every replica runs SafeGc on the replicas' own watermark vectors and
sweeps; no replica may purge the tombstone while the old put could still
arrive somewhere it would be applied, and after it arrives late the key stays
deleted everywhere (no resurrection).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rumor.node.core.gc import PurgeRule, SafeGc, stable_vector
from rumor.node.core.record import RecordHeader
from rumor.node.replication.replica.delta import WireRecord
from rumor.node.replication.replica.replica import DELTA_BUDGET, Durability, Replica, Write
from rumor.node.storage import MemoryStore, layout

GRACE_MS = 1_000
CHECKPOINT_EVERY_MS = 100
WALL_MS = 1_700_000_000_000
NS = bytes.fromhex("aabbccddeeff00112233445566778899")
A_ID, B_ID, C_ID = 0xA1, 0xB2, 0xC3
Vectors = dict[int, dict[int, int]]


# ---- SafeGc against the rule --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observation:
    at_ms: int
    members: frozenset[int]
    stable: dict[int, int]
    own: dict[int, int]


def dominates_all(vectors: Mapping[int, Mapping[int, int]], own: Mapping[int, int]) -> bool:
    return all(
        all(vector.get(origin, 0) >= seq for origin, seq in own.items())
        for vector in vectors.values()
    )


def justified(
    origin: int, seq: int, vectors: Vectors, now_ms: int, history: list[Observation]
) -> bool:
    """Whether the two-phase GC rule allows purging (origin, seq) now, given what was seen."""
    members = frozenset(vectors)
    if len(members) == 1:
        (vector,) = vectors.values()
        return seq <= vector.get(origin, 0)
    return any(
        now_ms - seen.at_ms >= GRACE_MS
        and members <= seen.members
        and seen.stable.get(origin, 0) >= seq
        and dominates_all(vectors, seen.own)
        for seen in history
    )


@dataclass(slots=True)
class GcModel:
    """Members with monotone watermark vectors, fed to SafeGc as the driver does."""

    gc: SafeGc = field(default_factory=lambda: SafeGc(GRACE_MS, CHECKPOINT_EVERY_MS))
    vectors: Vectors = field(default_factory=dict)
    origins: set[int] = field(default_factory=set)
    now_ms: int = 0
    history: list[Observation] = field(default_factory=list)

    def join(self, member: int) -> None:
        self.vectors.setdefault(member, {})
        self.origins.add(member)

    def update(self) -> None:
        snapshot = {member: dict(vector) for member, vector in self.vectors.items()}
        self.gc.update(snapshot, self.now_ms)
        self.history.append(
            Observation(
                self.now_ms,
                frozenset(snapshot),
                stable_vector(snapshot.values()),
                {member: snapshot[member].get(member, 0) for member in snapshot},
            )
        )

    def check(self) -> None:
        for origin in self.origins:
            top = max((v.get(origin, 0) for v in self.vectors.values()), default=0)
            for seq in range(1, top + 2):
                if self.gc.rule.purgeable(origin, seq):
                    assert justified(origin, seq, self.vectors, self.now_ms, self.history), (
                        f"({origin}, {seq}) purgeable at {self.now_ms} with {self.vectors}"
                    )


def caught_up(members: list[int], mark: int) -> Vectors:
    """Every member has seen every member's writes up to ``mark``."""
    return {member: dict.fromkeys(members, mark) for member in members}


def test_a_lone_member_is_safe_at_once() -> None:
    gc = SafeGc(GRACE_MS)
    gc.update({A_ID: {A_ID: 5, 0x99: 2}}, 0)
    assert gc.rule.purgeable(A_ID, 5)
    assert gc.rule.purgeable(0x99, 2)
    assert not gc.rule.purgeable(A_ID, 6)
    assert not gc.rule.purgeable(0x99, 3)


def test_nothing_is_purgeable_before_the_grace_period() -> None:
    gc = SafeGc(GRACE_MS, CHECKPOINT_EVERY_MS)
    vectors = caught_up([A_ID, B_ID, C_ID], 5)
    gc.update(vectors, 0)
    assert not gc.rule.purgeable(A_ID, 1)
    gc.update(vectors, GRACE_MS - 1)
    assert not gc.rule.purgeable(A_ID, 1)
    gc.update(vectors, GRACE_MS)
    assert gc.rule.purgeable(A_ID, 5)
    assert gc.rule.purgeable(C_ID, 5)
    assert not gc.rule.purgeable(A_ID, 6)


def test_nothing_is_purgeable_until_every_vector_dominates_the_own_marks() -> None:
    gc = SafeGc(GRACE_MS, CHECKPOINT_EVERY_MS)
    lagging = {A_ID: {A_ID: 5, B_ID: 3}, B_ID: {A_ID: 4, B_ID: 3}}
    gc.update(lagging, 0)  # C = {A: 4, B: 3}, S = {A: 5, B: 3}
    gc.update(lagging, 10 * GRACE_MS)
    assert not gc.rule.purgeable(A_ID, 1)
    assert not gc.rule.purgeable(B_ID, 1)
    gc.update({A_ID: {A_ID: 5, B_ID: 3}, B_ID: {A_ID: 5, B_ID: 3}}, 10 * GRACE_MS + 1)
    assert gc.rule.purgeable(A_ID, 4)  # C of the first checkpoint, now safe
    assert not gc.rule.purgeable(A_ID, 5)  # stable only at a later checkpoint
    assert gc.rule.purgeable(B_ID, 3)


def test_a_member_with_an_unknown_vector_blocks_gc() -> None:
    gc = SafeGc(GRACE_MS, CHECKPOINT_EVERY_MS)
    vectors: Vectors = {**caught_up([A_ID, B_ID], 5), C_ID: {}}
    for now in range(0, 20 * GRACE_MS, 250):
        gc.update(vectors, now)
        assert not gc.rule.purgeable(A_ID, 1)
        assert not gc.rule.purgeable(B_ID, 1)


def test_a_member_that_joined_since_the_checkpoint_blocks_it() -> None:
    gc = SafeGc(GRACE_MS, CHECKPOINT_EVERY_MS)
    gc.update(caught_up([A_ID, B_ID], 5), 0)
    joined = {**caught_up([A_ID, B_ID], 5), C_ID: {A_ID: 5, B_ID: 5}}
    gc.update(joined, 500)  # C has caught up, but joined after the first checkpoint
    gc.update(joined, GRACE_MS)
    assert not gc.rule.purgeable(A_ID, 1)
    gc.update(joined, 500 + GRACE_MS)  # the checkpoint taken with C in it is safe
    assert gc.rule.purgeable(A_ID, 5)


def test_a_member_that_joins_after_gc_became_safe_stops_purging() -> None:
    """The rule already in force predates the new member, so it may not be used any more."""
    gc = SafeGc(GRACE_MS, CHECKPOINT_EVERY_MS)
    gc.update(caught_up([A_ID, B_ID], 5), 0)
    gc.update(caught_up([A_ID, B_ID], 5), GRACE_MS)
    assert gc.rule.purgeable(A_ID, 5)
    gc.update({**caught_up([A_ID, B_ID], 5), C_ID: {}}, GRACE_MS + 1)
    assert not gc.rule.purgeable(A_ID, 1), (
        "a checkpoint from before C joined is still used for purging"
    )


def test_a_lone_member_that_gets_a_peer_stops_purging() -> None:
    gc = SafeGc(GRACE_MS, CHECKPOINT_EVERY_MS)
    gc.update({A_ID: {A_ID: 5}}, 0)
    assert gc.rule.purgeable(A_ID, 5)
    gc.update({A_ID: {A_ID: 5}, B_ID: {}}, 1)
    assert not gc.rule.purgeable(A_ID, 1), "the lone member's rule survives a join"


def test_gc_becomes_safe_once_everyone_has_caught_up_and_waited() -> None:
    gc = SafeGc(GRACE_MS, CHECKPOINT_EVERY_MS)
    members = [A_ID, B_ID, C_ID]
    for now in range(0, 3 * GRACE_MS, CHECKPOINT_EVERY_MS):
        gc.update(caught_up(members, 1 + now // 500), now)
    assert gc.rule.purgeable(A_ID, 1)
    assert gc.rule.stable == stable_vector(
        caught_up(members, 1 + gc.checkpoints[0].at_ms // 500).values()
    )


def test_purge_rule_update_takes_the_componentwise_minimum() -> None:
    rule = PurgeRule()
    assert not rule.purgeable(A_ID, 1)
    rule.update([{A_ID: 4, B_ID: 9}, {A_ID: 6, B_ID: 2}])
    assert rule.purgeable(A_ID, 4)
    assert not rule.purgeable(A_ID, 5)
    assert rule.purgeable(B_ID, 2)
    assert not rule.purgeable(C_ID, 1)


gc_steps = st.lists(
    st.tuples(
        st.sampled_from(["raise", "raise", "raise", "advance", "advance", "join", "remove"]),
        st.integers(min_value=0, max_value=7),
        st.integers(min_value=0, max_value=7),
        st.integers(min_value=1, max_value=600),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=1, max_value=4), gc_steps)
def test_safe_gc_never_allows_a_purge_the_rule_does_not_justify(
    initial_members: int, steps: list[tuple[str, int, int, int]]
) -> None:
    model = GcModel()
    next_member = 1
    for _ in range(initial_members):
        model.join(next_member)
        next_member += 1
    model.update()
    model.check()
    for kind, first, second, amount in steps:
        members = sorted(model.vectors)
        if kind == "raise" and members:
            member = members[first % len(members)]
            origin = sorted(model.origins)[second % len(model.origins)]
            vector = model.vectors[member]
            if origin == member:
                vector[origin] = vector.get(origin, 0) + 1 + amount % 3
            else:
                # nobody has seen more of an origin than the origin wrote
                ceiling = model.vectors.get(origin, {}).get(origin, vector.get(origin, 0))
                vector[origin] = max(vector.get(origin, 0), min(ceiling, amount % 8))
        elif kind == "advance":
            model.now_ms += amount * 5
        elif kind == "join":
            model.join(next_member)
            next_member += 1
        elif kind == "remove" and len(members) > 1:
            del model.vectors[members[first % len(members)]]
        model.update()
        model.check()


# ---- replicas: no resurrection --------------------------------------------------------


@dataclass(slots=True)
class InFlight:
    target: int
    records: list[WireRecord]
    sender_hlc: int


@dataclass(slots=True)
class GcCluster:
    """Replicas that each run SafeGc on everyone's own watermarks and sweep, on a shared clock."""

    replicas: list[Replica]
    gcs: list[SafeGc]
    wall_ms: int = WALL_MS
    in_flight: list[InFlight] = field(default_factory=list)
    purged_somewhere: bool = False

    @classmethod
    def build(cls, node_ids: list[int]) -> GcCluster:
        replicas = [
            Replica(MemoryStore(), new_node_id=node_id, wall_ms=WALL_MS, durability=Durability.WAL)
            for node_id in node_ids
        ]
        gcs = []
        for replica in replicas:
            gc = SafeGc(GRACE_MS, CHECKPOINT_EVERY_MS)
            replica.purge_rule = gc.rule
            gcs.append(gc)
        return cls(replicas, gcs)

    def push(self, sender: int, targets: dict[int, bool]) -> list[WireRecord]:
        """Push what ``sender`` has ready: delivered at once, or left in flight."""
        records = self.replicas[sender].take_ready_to_push()
        hlc = self.replicas[sender].clock.last
        for target, deliver_now in targets.items():
            message = InFlight(target, records, hlc)
            if deliver_now:
                self.deliver(message)
            else:
                self.in_flight.append(message)
        return records

    def deliver(self, message: InFlight) -> None:
        target = self.replicas[message.target]
        target.observe_clock(message.sender_hlc, self.wall_ms)
        target.apply_remote(message.records, self.wall_ms)

    def exchange(self, asker_index: int, responder_index: int, budget: int = DELTA_BUDGET) -> None:
        asker = self.replicas[asker_index]
        responder = self.replicas[responder_index]
        asker.begin_sync()
        for _ in range(1 + budget % 3):
            responder.observe_clock(asker.clock.last, self.wall_ms)
            answer = responder.delta_for(asker.sync_digest(), budget)
            vector = responder.own_watermarks()
            asker.observe_clock(responder.clock.last, self.wall_ms)
            asker.apply_remote(answer.records, self.wall_ms, answer.coverage, session=True)
            if answer.complete:
                break
        back = asker.delta_for(vector, budget)
        responder.observe_clock(asker.clock.last, self.wall_ms)
        responder.apply_remote(back.records, self.wall_ms, back.coverage)

    def gc_tick(self, advance_ms: int) -> None:
        self.wall_ms += advance_ms
        vectors = {replica.node_id: replica.own_watermarks() for replica in self.replicas}
        for replica, gc in zip(self.replicas, self.gcs, strict=True):
            gc.update(vectors, self.wall_ms)
            tombstones = replica.tombstones_held
            assert replica.sweep(b"", self.wall_ms / 1000, 10_000) is None
            if replica.tombstones_held < tombstones:
                self.purged_somewhere = True

    def check_no_unsafe_purge(self, old_versions: list[WireRecord]) -> None:
        """A tombstone gone anywhere means every old version in flight is seen where it goes."""
        for record in old_versions:
            if any(replica.header(NS, record.key) is None for replica in self.replicas):
                _, origin, seq = record.ids()
                for message in self.in_flight:
                    if record in message.records:
                        assert self.replicas[message.target].watermarks.seen(origin, seq), (
                            f"a tombstone for {record.key!r} was purged while its older "
                            f"version ({origin:#x}, {seq}) is still in flight to a replica "
                            "that has not seen it"
                        )

    def settle(self) -> None:
        while self.in_flight:
            self.deliver(self.in_flight.pop(0))
        for _ in range(3):
            for asker in range(len(self.replicas)):
                for responder in range(len(self.replicas)):
                    if asker != responder:
                        self.exchange(asker, responder)

    def assert_deleted_everywhere(self, key: bytes) -> None:
        for replica in self.replicas:
            header = replica.header(NS, key)
            assert header is None or header.tombstone, (
                f"{key!r} came back on {replica.node_id:#x}: {header}"
            )
            assert replica.read(NS, key, self.wall_ms / 1000) is None


def put(key: bytes, value: bytes) -> Write:
    return Write(NS, key, value)


def delete(key: bytes) -> Write:
    return Write(NS, key, tombstone=True)


def run_until_purged(cluster: GcCluster, old_versions: list[WireRecord], rounds: int) -> None:
    pairs = [(0, 1), (1, 2), (2, 0), (1, 0), (2, 1), (0, 2)]
    for round_index in range(rounds):
        asker, responder = pairs[round_index % len(pairs)]
        cluster.exchange(asker, responder)
        cluster.gc_tick(300)
        cluster.check_no_unsafe_purge(old_versions)


def test_an_old_put_in_flight_from_the_deleting_node_is_never_resurrected() -> None:
    cluster = GcCluster.build([A_ID, B_ID, C_ID])
    a, b, c = cluster.replicas
    a.write(put(b"k", b"v1"), WALL_MS)
    (old_put,) = cluster.push(0, {1: False, 2: True})  # v1: to C, and still on its way to B
    a.write(delete(b"k"), WALL_MS + 1)
    cluster.push(0, {1: True, 2: True})  # t2 reaches B before v1
    assert b.watermarks.seen(A_ID, 2)
    assert not b.watermarks.seen(A_ID, 1)

    run_until_purged(cluster, [old_put], rounds=40)
    assert cluster.purged_somewhere, "the scenario never purged the tombstone"
    assert all(replica.header(NS, b"k") is None for replica in (a, b, c))

    cluster.settle()  # v1 arrives late at B
    cluster.assert_deleted_everywhere(b"k")


def test_an_old_put_in_flight_from_a_third_node_is_never_resurrected() -> None:
    """v1 is written on C, reaches A, A deletes the key; v1 is still on its way to B."""
    cluster = GcCluster.build([A_ID, B_ID, C_ID])
    a, _, c = cluster.replicas
    c.write(put(b"k", b"v1"), WALL_MS)
    (old_put,) = cluster.push(2, {0: True, 1: False})
    a.write(delete(b"k"), WALL_MS + 1)
    tombstone = a.header(NS, b"k")
    assert tombstone is not None
    assert tombstone.version > old_put.decoded().version
    cluster.push(0, {1: True, 2: True})

    run_until_purged(cluster, [old_put], rounds=40)
    assert cluster.purged_somewhere
    cluster.settle()
    cluster.assert_deleted_everywhere(b"k")


def test_an_expired_record_is_not_purged_while_an_older_put_is_in_flight() -> None:
    """Expiry hides a key like a delete does; purging it early would bring v1 back."""
    cluster = GcCluster.build([A_ID, B_ID, C_ID])
    c = cluster.replicas[2]
    c.write(put(b"k", b"v1"), WALL_MS)
    (old_put,) = cluster.push(2, {0: True, 1: False})
    expiration = WALL_MS // 1000 + 2
    cluster.replicas[0].write(Write(NS, b"k", b"v2", expiration=expiration), WALL_MS + 1)
    cluster.push(0, {1: True, 2: True})

    for round_index in range(40):
        cluster.exchange(round_index % 3, (round_index + 1) % 3)
        cluster.wall_ms += 300
        vectors = {replica.node_id: replica.own_watermarks() for replica in cluster.replicas}
        for replica, gc in zip(cluster.replicas, cluster.gcs, strict=True):
            gc.update(vectors, cluster.wall_ms)
            replica.sweep(b"", cluster.wall_ms / 1000, 10_000)
        cluster.check_no_unsafe_purge([old_put])
    assert all(replica.header(NS, b"k") is None for replica in cluster.replicas)
    cluster.settle()
    for replica in cluster.replicas:
        assert replica.read(NS, b"k", cluster.wall_ms / 1000) is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["exchange", "exchange", "gc", "gc", "deliver"]),
            st.integers(min_value=0, max_value=5),
            st.integers(min_value=0, max_value=3),
        ),
        min_size=10,
        max_size=60,
    ),
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=4
    ),
)
def test_no_schedule_resurrects_a_deleted_key(
    steps: list[tuple[str, int, int]], scenarios: list[tuple[int, int, int]]
) -> None:
    """Per key: a put on one node, a delete on another that saw it, the put late to a third."""
    cluster = GcCluster.build([A_ID, B_ID, C_ID])
    old_versions: list[WireRecord] = []
    keys: list[bytes] = []
    for index, (writer, deleter_offset, _late) in enumerate(scenarios):
        key = b"key-%d" % index
        keys.append(key)
        deleter = (writer + 1 + deleter_offset % 2) % 3
        late = 3 - writer - deleter
        cluster.wall_ms += 1
        cluster.replicas[writer].write(put(key, b"old"), cluster.wall_ms)
        (record,) = [r for r in cluster.push(writer, {deleter: True, late: False}) if r.key == key]
        old_versions.append(record)
        cluster.wall_ms += 1
        cluster.replicas[deleter].write(delete(key), cluster.wall_ms)
        cluster.push(deleter, {writer: True, late: True})
    budgets = (1, 150, DELTA_BUDGET, DELTA_BUDGET)
    for kind, first, second in steps:
        if kind == "exchange":
            asker = first % 3
            responder = (asker + 1 + second % 2) % 3
            cluster.exchange(asker, responder, budgets[second])
        elif kind == "gc":
            cluster.gc_tick(100 + 200 * first)
        elif cluster.in_flight:
            cluster.deliver(cluster.in_flight.pop(first % len(cluster.in_flight)))
        cluster.check_no_unsafe_purge(old_versions)
    event(f"a tombstone was purged before the late delivery: {cluster.purged_somewhere}")
    cluster.settle()
    for key in keys:
        cluster.assert_deleted_everywhere(key)


def test_the_scenarios_held_records_are_consistent() -> None:
    """Purging keeps kv, log and the counters in step (a guard for the scenarios above)."""
    cluster = GcCluster.build([A_ID, B_ID, C_ID])
    cluster.replicas[0].write_many([put(b"x", b"1"), put(b"y", b"1")], WALL_MS)
    cluster.replicas[0].write(delete(b"x"), WALL_MS)
    cluster.push(0, {1: True, 2: True})
    run_until_purged(cluster, [], rounds=12)
    for replica in cluster.replicas:
        held = dict(replica.store.scan("kv", b""))
        assert list(held) == [layout.record_key(NS, b"y")]
        assert (replica.records_held, replica.tombstones_held) == (1, 0)
        assert not RecordHeader.decode(held[layout.record_key(NS, b"y")]).tombstone
