"""The replication core of the replica (rumor.node.replication.replica), two or three at a time.

Replica-level examples on MemoryStore, driven the way the node drives them but
with every message handed over by hand: local writes and when they may be
pushed (only once durable), applying pushed records (new, seen, stale),
anti-entropy answers (``delta_for``: every durable record above the digest, per
origin in seq order, with coverage claims; cut short by the budget; superseded
records left out but covered), deferral of records from too far in the future
and the HLC horizon, namespace tombstones, audit buckets and repairs,
retirement records, and purging.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from rumor.node.core import audit
from rumor.node.core import hlc as hlc_bits
from rumor.node.core.errors import InvalidRequest, MalformedPeerMessage
from rumor.node.core.namespaces import RESERVED_NAMESPACE
from rumor.node.core.record import RecordHeader
from rumor.node.replication.replica.delta import Coverage, Delta, WireRecord
from rumor.node.replication.replica.replica import (
    DELTA_BUDGET,
    Durability,
    RemoteOutcome,
    Replica,
    Write,
)
from rumor.node.storage import MemoryStore, layout
from rumor.node.storage.store import DEFERRED, KV, LOG, VAL, Batch

A_ID = 0x0000_0000_0000_0A0A
B_ID = 0x0000_0000_0000_0B0B
C_ID = 0x0000_0000_0000_0C0C
WALL_MS = 1_700_000_000_000
NOW_S = WALL_MS / 1000
NS = bytes.fromhex("0123456789abcdef0123456789abcdef")
MAX_CLOCK_OFFSET_MS = 500
HORIZON_MS = 2 * MAX_CLOCK_OFFSET_MS


# ---- helpers -------------------------------------------------------------------------


def new_replica(
    node_id: int,
    *,
    store: MemoryStore | None = None,
    durability: Durability = Durability.WAL,
    wall_ms: int = WALL_MS,
) -> Replica:
    return Replica(
        MemoryStore() if store is None else store,
        new_node_id=node_id,
        wall_ms=wall_ms,
        durability=durability,
        max_clock_offset_ms=MAX_CLOCK_OFFSET_MS,
    )


def put(key: bytes, value: bytes = b"v", *, namespace: bytes = NS, expiration: int = 0) -> Write:
    return Write(namespace, key, value, expiration=expiration)


def delete(key: bytes, *, namespace: bytes = NS) -> Write:
    return Write(namespace, key, tombstone=True)


def namespace_key(namespace: bytes) -> bytes:
    return namespace.hex().encode()


def make_durable(replica: Replica) -> None:
    replica.store.sync_wal()
    replica.mark_durable(replica.written_ticket)


def held_headers(replica: Replica) -> dict[bytes, bytes]:
    """Every record the store holds: stored key -> encoded header."""
    return dict(replica.store.scan(KV, b""))


def held_values(replica: Replica) -> dict[bytes, bytes]:
    return dict(replica.store.scan(VAL, b""))


def recomputed_buckets(replica: Replica) -> list[int]:
    """The audit buckets, computed from scratch over the non-tombstone records held."""
    buckets = [0] * audit.BUCKETS
    for stored_key, raw in replica.store.scan(KV, b""):
        header = RecordHeader.decode(raw)
        if not header.tombstone:
            buckets[audit.bucket_of(stored_key)] ^= audit.record_hash(
                stored_key, header.hlc, header.origin
            )
    return buckets


def deferred_ids(replica: Replica) -> set[tuple[int, int]]:
    return {WireRecord.decode(raw).ids()[1:] for _, raw in replica.store.scan(DEFERRED, b"")}


def ids(records: Sequence[WireRecord]) -> list[tuple[int, int]]:
    return [record.ids()[1:] for record in records]


def pull(asker: Replica, responder: Replica, wall_ms: int, budget: int = DELTA_BUDGET) -> Delta:
    """One anti-entropy answer: the responder's delta for the asker's digest, applied."""
    asker.observe_clock(responder.clock.last, wall_ms)
    delta = responder.delta_for(asker.own_watermarks(), budget)
    asker.apply_remote(delta.records, wall_ms, delta.coverage)
    return delta


def sync(first: Replica, second: Replica, wall_ms: int) -> None:
    """Push-pull until neither side lacks anything the other can send."""
    for _ in range(100):
        one = pull(first, second, wall_ms)
        other = pull(second, first, wall_ms)
        if not one.records and not other.records:
            return
    raise AssertionError("anti-entropy did not settle")


def nonzero(vector: dict[int, int]) -> dict[int, int]:
    return {origin: mark for origin, mark in vector.items() if mark}


def record_of(replica: Replica, key: bytes, namespace: bytes = NS) -> WireRecord:
    """What the replica holds for a key, as it would send it."""
    fetched = replica.fetch([layout.record_key(namespace, key)])
    assert len(fetched) == 1
    return fetched[0]


# ---- local writes and pushes ----------------------------------------------------------


def test_a_local_write_is_pushed_only_once_durable() -> None:
    replica = new_replica(A_ID, durability=Durability.FSYNC)
    applied = replica.write(put(b"k", b"one"), WALL_MS)
    assert replica.take_ready_to_push() == []
    assert replica.own_watermarks() == {A_ID: 0}
    replica.store.sync_wal()
    replica.mark_durable(applied.ticket)
    ready = replica.take_ready_to_push()
    assert ready == [WireRecord(NS, b"k", applied.header.encode(), b"one")]
    assert replica.take_ready_to_push() == []  # each record is handed out once
    assert replica.own_watermarks() == {A_ID: 1}


def test_durability_wal_makes_a_write_pushable_at_once() -> None:
    replica = new_replica(A_ID)
    applied = replica.write_many([put(b"a"), put(b"b")], WALL_MS)
    assert replica.is_durable(applied[-1].ticket)
    assert ids(replica.take_ready_to_push()) == [(A_ID, 1), (A_ID, 2)]
    assert replica.own_watermarks() == {A_ID: 2}


def test_mark_durable_releases_writes_in_ticket_order_only() -> None:
    replica = new_replica(A_ID, durability=Durability.FSYNC)
    first = replica.write(put(b"a"), WALL_MS)
    second = replica.write(put(b"b"), WALL_MS)
    replica.mark_durable(first.ticket)
    assert ids(replica.take_ready_to_push()) == [(A_ID, 1)]
    assert replica.own_watermarks() == {A_ID: 1}
    replica.mark_durable(second.ticket)
    assert ids(replica.take_ready_to_push()) == [(A_ID, 2)]
    assert replica.own_watermarks() == {A_ID: 2}


# ---- applying pushed records ------------------------------------------------------------


def test_a_pushed_record_becomes_readable_and_seen_and_a_duplicate_changes_nothing() -> None:
    origin = new_replica(A_ID)
    receiver = new_replica(B_ID)
    origin.write(put(b"k", b"hello"), WALL_MS)
    pushed = origin.take_ready_to_push()

    outcome = receiver.apply_remote(pushed, WALL_MS)
    assert (outcome.new, outcome.seen, outcome.deferred, outcome.stale) == (1, 0, 0, 0)
    result = receiver.read(NS, b"k", NOW_S)
    assert result is not None
    assert result[1] == b"hello"
    assert result[0] == origin.header(NS, b"k")
    assert receiver.watermarks.seen(A_ID, 1)
    assert receiver.own_watermarks()[A_ID] == 1
    assert ids(receiver.take_ready_to_push()) == [(A_ID, 1)]  # new here: forwarded

    headers, buckets = held_headers(receiver), list(receiver.audit_buckets)
    assert isinstance(receiver.store, MemoryStore)
    writes = receiver.store.writes
    again = receiver.apply_remote(pushed, WALL_MS)
    assert (again.new, again.seen, again.deferred, again.stale) == (0, 1, 0, 0)
    assert held_headers(receiver) == headers
    assert receiver.audit_buckets == buckets
    assert receiver.store.writes == writes  # dropped unread: nothing written
    assert receiver.take_ready_to_push() == []  # not new: not forwarded again


def test_a_record_older_than_the_held_one_is_stale() -> None:
    older_writer = new_replica(A_ID)
    receiver = new_replica(B_ID)
    older_writer.write(put(b"k", b"old"), WALL_MS)
    receiver.write(put(b"k", b"new"), WALL_MS + 10)
    outcome = receiver.apply_remote(older_writer.take_ready_to_push(), WALL_MS + 10)
    assert (outcome.new, outcome.seen, outcome.stale) == (0, 0, 1)
    assert receiver.value(NS, b"k") == b"new"
    assert receiver.watermarks.seen(A_ID, 1)  # seen, and superseded by what is held
    assert ids(receiver.take_ready_to_push()) == [(B_ID, 1)]  # only its own write


def test_a_newer_tombstone_replaces_a_put_and_an_older_one_does_not() -> None:
    first = new_replica(A_ID)
    second = new_replica(B_ID)
    first.write(delete(b"k"), WALL_MS)
    second.write(put(b"k", b"v"), WALL_MS + 5)
    first.write(delete(b"j"), WALL_MS + 10)
    second.write(put(b"j", b"v"), WALL_MS + 1)
    second.apply_remote(first.take_ready_to_push(), WALL_MS + 10)
    assert second.read(NS, b"k", NOW_S) is not None  # the tombstone is older
    header = second.header(NS, b"j")
    assert header is not None
    assert header.tombstone  # the tombstone is newer
    assert second.value(NS, b"j") is None


def test_records_in_one_batch_for_the_same_key_keep_the_greatest() -> None:
    writer = new_replica(A_ID)
    receiver = new_replica(B_ID)
    writer.write(put(b"k", b"1"), WALL_MS)
    writer.write(put(b"k", b"2"), WALL_MS + 1)
    writer.write(delete(b"k"), WALL_MS + 2)
    writer.write(put(b"k", b"4"), WALL_MS + 3)
    pushed = writer.take_ready_to_push()
    assert len(pushed) == 4
    outcome = receiver.apply_remote(list(reversed(pushed)), WALL_MS + 3)
    assert (outcome.new, outcome.stale) == (1, 3)
    assert receiver.value(NS, b"k") == b"4"
    assert held_headers(receiver) == held_headers(writer)
    assert receiver.audit_buckets == writer.audit_buckets == recomputed_buckets(receiver)


# ---- anti-entropy -------------------------------------------------------------------


def three_origin_responder() -> tuple[Replica, Replica, Replica]:
    """A responder holding records from itself and two other origins."""
    first = new_replica(A_ID)
    responder = new_replica(B_ID)
    third = new_replica(C_ID)
    first.write_many([put(b"a1"), put(b"a2"), put(b"a3")], WALL_MS)
    third.write_many([put(b"c1"), put(b"c2")], WALL_MS)
    responder.write_many([put(b"b1"), put(b"b2")], WALL_MS)
    responder.apply_remote(first.take_ready_to_push(), WALL_MS)
    responder.apply_remote(third.take_ready_to_push(), WALL_MS)
    return first, responder, third


def test_delta_for_an_empty_digest_sends_everything_in_seq_order_with_complete_coverage() -> None:
    _, responder, _ = three_origin_responder()
    delta = responder.delta_for({})
    expected = sorted([(A_ID, s) for s in (1, 2, 3)] + [(B_ID, 1), (B_ID, 2)])
    expected += [(C_ID, 1), (C_ID, 2)]
    assert ids(delta.records) == sorted(expected)
    assert delta.coverage == [
        Coverage(A_ID, 0, 3, complete=True),
        Coverage(B_ID, 0, 2, complete=True),
        Coverage(C_ID, 0, 2, complete=True),
    ]
    assert delta.complete

    asker = new_replica(0x0D0D)
    outcome = asker.apply_remote(delta.records, WALL_MS, delta.coverage)
    assert outcome.new == 7
    mine = asker.own_watermarks()
    for origin, mark in responder.own_watermarks().items():
        assert mine[origin] == mark
    assert {k: v for k, v in held_headers(asker).items()} == held_headers(responder)
    assert asker.audit_buckets == responder.audit_buckets


def test_delta_for_a_digest_sends_only_what_lies_above_it() -> None:
    _, responder, _ = three_origin_responder()
    delta = responder.delta_for({A_ID: 2, B_ID: 2, C_ID: 0, 0x0E0E: 9})
    assert ids(delta.records) == [(A_ID, 3), (C_ID, 1), (C_ID, 2)]
    assert delta.coverage == [
        Coverage(A_ID, 2, 3, complete=True),
        Coverage(C_ID, 0, 2, complete=True),
    ]
    assert responder.delta_for(responder.own_watermarks()) == Delta([], [])


def test_pull_and_push_back_bring_both_sides_up_to_each_other() -> None:
    _, responder, _ = three_origin_responder()
    asker = new_replica(0x0D0D)
    asker.write(put(b"d1"), WALL_MS)
    asker.apply_remote([record_of(responder, b"a1")], WALL_MS)  # (A, 1) already here
    assert asker.own_watermarks()[A_ID] == 1
    delta = pull(asker, responder, WALL_MS)
    assert ids(delta.records)[0] == (A_ID, 2)  # nothing at or below the asker's mark
    mine = asker.own_watermarks()
    assert all(mine[origin] >= mark for origin, mark in responder.own_watermarks().items())
    back = pull(responder, asker, WALL_MS)  # the push-back
    assert ids(back.records) == [(0x0D0D, 1)]
    assert nonzero(responder.own_watermarks()) == nonzero(asker.own_watermarks())
    assert held_headers(responder) == held_headers(asker)
    assert responder.audit_buckets == asker.audit_buckets


def test_a_small_budget_cuts_the_answer_short_and_rounds_converge() -> None:
    _, responder, _ = three_origin_responder()
    asker = new_replica(0x0D0D)
    first_answer = responder.delta_for({}, budget_bytes=1)
    assert ids(first_answer.records) == [(A_ID, 1)]  # at least one record
    assert first_answer.coverage == [Coverage(A_ID, 0, 1, complete=False)]
    assert not first_answer.complete

    rounds = 0
    while True:
        rounds += 1
        assert rounds <= 20
        before = asker.own_watermarks()
        delta = pull(asker, responder, WALL_MS, budget=1)
        assert len(delta.records) <= 1
        for claim in delta.coverage:
            if not claim.complete:  # cut short: last is the last seq sent (if any)
                sent = [seq for origin, seq in ids(delta.records) if origin == claim.origin]
                assert claim.last == max(sent, default=claim.base)
            assert claim.base == before.get(claim.origin, 0)
        if not delta.records:
            break
    assert held_headers(asker) == held_headers(responder)
    mine = asker.own_watermarks()
    assert all(mine[origin] == mark for origin, mark in responder.own_watermarks().items())
    assert rounds == 8  # seven records, one at a time, then an empty answer


def test_a_delta_cut_short_at_an_origin_boundary_is_not_complete() -> None:
    """The budget runs out exactly when one origin is done and the next one has records.

    The answer then carries only the finished origin's (complete) claim; as a
    whole it must still say it was cut short, or the asker stops pulling (and a
    joining node would declare itself ready) while records are left behind.
    """
    first = new_replica(A_ID)
    responder = new_replica(B_ID)
    first.write(put(b"a1"), WALL_MS)
    responder.apply_remote(first.take_ready_to_push(), WALL_MS)
    responder.write(put(b"b1"), WALL_MS)
    delta = responder.delta_for({}, budget_bytes=1)
    assert ids(delta.records) == [(A_ID, 1)]
    assert not delta.complete, (
        f"an answer that left out (B, 1) claims to be complete: {delta.coverage}"
    )


def test_delta_for_never_includes_records_that_are_not_durable() -> None:
    responder = new_replica(A_ID, durability=Durability.FSYNC)
    first = responder.write(put(b"k1"), WALL_MS)
    responder.write(put(b"k2"), WALL_MS)
    assert responder.delta_for({}).records == []
    responder.mark_durable(first.ticket)
    delta = responder.delta_for({})
    assert ids(delta.records) == [(A_ID, 1)]
    assert delta.coverage == [Coverage(A_ID, 0, 1, complete=True)]
    make_durable(responder)
    assert ids(responder.delta_for({}).records) == [(A_ID, 1), (A_ID, 2)]


def test_remote_records_are_served_only_once_durable_here() -> None:
    origin = new_replica(A_ID)
    relay = new_replica(B_ID, durability=Durability.FSYNC)
    origin.write_many([put(b"k1"), put(b"k2")], WALL_MS)
    outcome = relay.apply_remote(origin.take_ready_to_push(), WALL_MS)
    assert relay.delta_for({}).records == []
    assert relay.own_watermarks().get(A_ID, 0) == 0
    assert relay.take_ready_to_push() == []
    relay.mark_durable(outcome.ticket)
    assert ids(relay.delta_for({}).records) == [(A_ID, 1), (A_ID, 2)]
    assert relay.own_watermarks()[A_ID] == 2
    assert ids(relay.take_ready_to_push()) == [(A_ID, 1), (A_ID, 2)]


def test_superseded_records_are_not_sent_but_their_seqs_are_covered() -> None:
    responder = new_replica(A_ID)
    responder.write(put(b"k", b"1"), WALL_MS)
    responder.write(put(b"k", b"2"), WALL_MS)
    responder.write(put(b"j", b"1"), WALL_MS)
    responder.write(delete(b"j"), WALL_MS)
    delta = responder.delta_for({})
    assert ids(delta.records) == [(A_ID, 2), (A_ID, 4)]
    assert delta.coverage == [Coverage(A_ID, 0, 4, complete=True)]
    asker = new_replica(B_ID)
    asker.apply_remote(delta.records, WALL_MS, delta.coverage)
    assert asker.own_watermarks()[A_ID] == 4
    assert all(asker.watermarks.seen(A_ID, seq) for seq in range(1, 5))
    assert asker.value(NS, b"k") == b"2"
    # the superseded put arriving late (an old push) is dropped unread
    late = WireRecord(NS, b"k", RecordHeader(1, A_ID, 1, value_length=1).encode(), b"1")
    outcome = asker.apply_remote([late], WALL_MS)
    assert outcome.seen == 1
    assert asker.value(NS, b"k") == b"2"


def test_coverage_raises_the_watermark_past_pushed_ranges() -> None:
    origin = new_replica(A_ID)
    asker = new_replica(B_ID)
    origin.write_many([put(b"k%d" % index) for index in range(5)], WALL_MS)
    pushed = origin.take_ready_to_push()
    asker.apply_remote([pushed[3]], WALL_MS)  # (A, 4) arrives out of order
    assert asker.watermarks.get(A_ID) == 0
    assert asker.watermarks.seen(A_ID, 4)
    assert asker.own_watermarks().get(A_ID, 0) == 0
    delta = pull(asker, origin, WALL_MS)
    assert ids(delta.records) == ids(pushed)
    assert asker.watermarks.get(A_ID) == 5
    assert asker.watermarks.ranges.get(A_ID, []) == []
    assert held_headers(asker) == held_headers(origin)


def test_three_replicas_converge_through_a_relay() -> None:
    first, relay, third = new_replica(A_ID), new_replica(B_ID), new_replica(C_ID)
    first.write_many([put(b"x", b"a"), put(b"only-a")], WALL_MS)
    third.write_many([put(b"x", b"c"), put(b"only-c")], WALL_MS + 1)
    sync(first, relay, WALL_MS + 1)
    sync(third, relay, WALL_MS + 1)
    sync(first, relay, WALL_MS + 1)
    assert held_headers(first) == held_headers(relay) == held_headers(third)
    assert first.audit_buckets == relay.audit_buckets == third.audit_buckets
    assert first.value(NS, b"x") == b"c"  # the later write wins everywhere
    assert nonzero(first.own_watermarks()) == nonzero(relay.own_watermarks())
    assert nonzero(relay.own_watermarks()) == nonzero(third.own_watermarks())


def test_a_cut_short_answer_does_not_cover_a_record_whose_replacement_it_left_out() -> None:
    """The watermark promise: every seq <= wm[o] is held, superseded by something held, or deferred.

    (A, 1) was replaced by (A, 3); an answer cut short after (A, 2) leaves (A, 3)
    out but still covers (A, 1): the asker then counts (A, 1) as seen while it
    holds nothing for its key.
    """
    origin = new_replica(A_ID)
    asker = new_replica(B_ID)
    origin.write(put(b"k", b"old"), WALL_MS)  # (A, 1)
    origin.write(put(b"j"), WALL_MS)  # (A, 2)
    origin.write(put(b"k", b"new"), WALL_MS)  # (A, 3) replaces (A, 1)
    delta = origin.delta_for({}, budget_bytes=1)
    # The entry of (A, 1) brings the record that replaced it, (A, 3); the budget
    # then cuts the answer short at seq 1.
    assert ids(delta.records) == [(A_ID, 3)]
    assert [(c.last, c.complete) for c in delta.coverage] == [(1, False)]
    asker.apply_remote(delta.records, WALL_MS, delta.coverage)
    if asker.watermarks.seen(A_ID, 1):
        assert asker.header(NS, b"k") is not None, (
            f"(A, 1) is covered by {delta.coverage} but nothing is held for its key"
        )


def test_an_audit_after_a_cut_short_answer_repairs_nothing() -> None:
    """audit_repairs_total must stay 0 (a repair is a divergence); a false claim makes it count.

    A third replica still holds (A, 1), which it got by push before (A, 3)
    replaced it. The asker's watermarks claim (A, 1) (see the test above), so
    the audit fetches it as a "repair" of a record the asker never lost.
    """
    origin = new_replica(A_ID)
    asker = new_replica(B_ID)
    holder = new_replica(C_ID)
    origin.write(put(b"k", b"old"), WALL_MS)
    holder.apply_remote(origin.take_ready_to_push(), WALL_MS)
    origin.write(put(b"j"), WALL_MS)
    origin.write(put(b"k", b"new"), WALL_MS)
    pull(asker, origin, WALL_MS, budget=1)
    differing = audit.differing(asker.audit_buckets, holder.audit_buckets)
    wanted = asker.audit_wanted(holder.audit_entries(differing)[0], NOW_S)
    asker.apply_repairs(holder.fetch(wanted))
    assert asker.audit_repairs_total == 0, f"audit repaired {wanted}"


def test_an_answer_does_not_cover_a_record_whose_replacement_it_holds_above_its_watermark() -> None:
    """The replacement reached the responder out of order (by push), above its wm[C].

    The answer must also carry the records the peer holds above its own wm[o]:
    were delta_for to stop at its watermark, (C, 2) would stay behind while
    (A, 1), which it replaced, is covered, and the asker would claim (A, 1)
    and hold nothing for its key, even though the answer was complete.
    """
    first, responder, third = new_replica(A_ID), new_replica(B_ID), new_replica(C_ID)
    asker = new_replica(0x0D0D)
    first.write(put(b"k", b"old"), WALL_MS)  # (A, 1)
    responder.apply_remote(first.take_ready_to_push(), WALL_MS)
    third.write_many([put(b"x"), put(b"k", b"new")], WALL_MS + 5)  # (C, 1), (C, 2)
    responder.apply_remote(third.take_ready_to_push()[1:], WALL_MS + 5)  # (C, 2) only
    assert responder.value(NS, b"k") == b"new"
    delta = pull(asker, responder, WALL_MS + 5)
    assert delta.complete
    if asker.watermarks.seen(A_ID, 1):
        assert asker.header(NS, b"k") is not None, (
            f"(A, 1) is covered by {delta.coverage}, but {ids(delta.records)} "
            "leaves out the (C, 2) that replaced it"
        )


class PowerLossStore(MemoryStore):
    """A MemoryStore that, after a power loss, holds only what was synced before it."""

    def __init__(self) -> None:
        super().__init__()
        self.unsynced: list[Batch] = []
        self.synced: list[Batch] = []

    def write(self, batch: Batch) -> None:
        super().write(batch)
        self.unsynced.append(batch)

    def sync_wal(self) -> None:
        super().sync_wal()
        self.synced.extend(self.unsynced)
        self.unsynced.clear()

    def after_power_loss(self) -> PowerLossStore:
        survivor = PowerLossStore()
        for batch in self.synced:
            survivor.write(batch)
        survivor.sync_wal()
        return survivor


def test_an_answer_does_not_cover_a_durable_record_replaced_by_one_not_yet_durable() -> None:
    """Under fsync, v2 (not synced yet) replaced the durable v1 in the store.

    The answer covers (A, 1) — it is below the durable watermark — but sends
    neither v1 (its log entry is gone) nor v2 (not durable). If the responder
    then loses power, v2 is gone and v1 is back, yet the asker's watermark
    already claims (A, 1), so anti-entropy never sends it: the asker misses a
    durable, acknowledged write until an audit repairs it.
    """
    store = PowerLossStore()
    responder = new_replica(A_ID, store=store, durability=Durability.FSYNC)
    responder.write(put(b"k", b"v1"), WALL_MS)
    make_durable(responder)
    responder.write(put(b"k", b"v2"), WALL_MS)  # in the WAL, not synced
    asker = new_replica(B_ID)
    pull(asker, responder, WALL_MS)

    survivor = store.after_power_loss()
    responder = new_replica(A_ID, store=survivor, durability=Durability.FSYNC)
    assert responder.value(NS, b"k") == b"v1"
    sync(asker, responder, WALL_MS)
    assert asker.value(NS, b"k") == b"v1", (
        f"asker holds {asker.value(NS, b'k')!r}, watermark {asker.own_watermarks()}"
    )


# ---- deferral and the HLC horizon ------------------------------------------------------


def test_a_record_from_too_far_in_the_future_is_deferred_until_its_time() -> None:
    future = WALL_MS + HORIZON_MS + 4_000
    ahead = new_replica(A_ID, wall_ms=future)
    receiver = new_replica(B_ID)
    ahead.write(put(b"k", b"from the future"), future)
    pushed = ahead.take_ready_to_push()

    outcome = receiver.apply_remote(pushed, WALL_MS)
    assert isinstance(outcome, RemoteOutcome)
    assert (outcome.new, outcome.deferred, outcome.stale) == (0, 1, 0)
    assert receiver.deferred_held == 1
    assert receiver.read(NS, b"k", NOW_S) is None
    assert receiver.header(NS, b"k") is None
    assert receiver.watermarks.seen(A_ID, 1)
    assert deferred_ids(receiver) == {(A_ID, 1)}
    assert receiver.take_ready_to_push() == []
    assert hlc_bits.wall_ms_of(receiver.clock.last) < future  # the clock was not dragged along
    assert receiver.apply_remote(pushed, WALL_MS).seen == 1  # a duplicate is not deferred twice
    assert receiver.deferred_held == 1

    assert receiver.apply_deferred(future - 1) == 0
    assert receiver.read(NS, b"k", NOW_S) is None
    assert receiver.apply_deferred(future) == 1
    assert receiver.deferred_held == 0
    assert deferred_ids(receiver) == set()
    result = receiver.read(NS, b"k", future / 1000)
    assert result is not None
    assert result[1] == b"from the future"
    assert ids(receiver.take_ready_to_push()) == [(A_ID, 1)]
    assert receiver.apply_deferred(future + 10_000) == 0


def test_the_deferral_horizon_is_exactly_twice_the_max_clock_offset() -> None:
    receiver = new_replica(B_ID)
    at_horizon = RecordHeader(hlc_bits.pack(WALL_MS + HORIZON_MS, 0), A_ID, 1)
    beyond = RecordHeader(hlc_bits.pack(WALL_MS + HORIZON_MS + 1, 0), A_ID, 2)
    outcome = receiver.apply_remote(
        [WireRecord(NS, b"at", at_horizon.encode()), WireRecord(NS, b"beyond", beyond.encode())],
        WALL_MS,
    )
    assert (outcome.new, outcome.deferred) == (1, 1)
    assert receiver.header(NS, b"at") == at_horizon
    assert receiver.header(NS, b"beyond") is None


def test_deferred_records_survive_a_restart() -> None:
    store = MemoryStore()
    receiver = new_replica(B_ID, store=store)
    future = WALL_MS + 10_000
    record = RecordHeader(hlc_bits.pack(future, 0), A_ID, 1)
    receiver.apply_remote([WireRecord(NS, b"k", record.encode(), b"")], WALL_MS)
    restarted = new_replica(B_ID, store=store)
    assert restarted.deferred_held == 1
    assert restarted.watermarks.seen(A_ID, 1)
    assert restarted.apply_deferred(future) == 1
    assert restarted.header(NS, b"k") == record


def test_observe_clock_merges_a_remote_hlc_only_within_the_horizon() -> None:
    replica = new_replica(B_ID)
    within = hlc_bits.pack(WALL_MS + HORIZON_MS, 7)
    replica.observe_clock(within, WALL_MS)
    assert replica.write(put(b"k"), WALL_MS).header.hlc > within

    other = new_replica(C_ID)
    beyond = hlc_bits.pack(WALL_MS + HORIZON_MS + 1, 0)
    other.observe_clock(beyond, WALL_MS)
    header = other.write(put(b"k"), WALL_MS).header
    assert header.hlc < beyond
    assert hlc_bits.wall_ms_of(header.hlc) == WALL_MS


def test_a_node_that_applied_a_record_writes_newer_versions_afterwards() -> None:
    ahead = new_replica(A_ID, wall_ms=WALL_MS + 900)
    behind = new_replica(B_ID)
    ahead.write(put(b"k", b"ahead"), WALL_MS + 900)
    behind.apply_remote(ahead.take_ready_to_push(), WALL_MS)
    behind.write(put(b"k", b"behind, but later"), WALL_MS)
    sync(ahead, behind, WALL_MS)
    assert ahead.value(NS, b"k") == behind.value(NS, b"k") == b"behind, but later"


def test_coverage_from_a_responder_holding_a_record_deferred_does_not_lose_it() -> None:
    """A responder's watermark counts records it has deferred, which it cannot send.

    The asker adopts that watermark from a complete answer, so it claims the
    deferred record as seen without holding it, deferring it or holding anything
    newer for its key; the record is then dropped as "seen" whenever it arrives
    (by push from its origin, or forwarded once the responder applies it) and
    anti-entropy never offers it again: the asker misses it for good.
    """
    future = WALL_MS + HORIZON_MS + 2_000
    ahead = new_replica(A_ID, wall_ms=future)
    responder = new_replica(B_ID)
    asker = new_replica(C_ID)
    ahead.write(put(b"k", b"future"), future)
    pushed = ahead.take_ready_to_push()
    assert responder.apply_remote(pushed, WALL_MS).deferred == 1

    pull(asker, responder, WALL_MS)
    if asker.watermarks.seen(A_ID, 1):
        assert (A_ID, 1) in deferred_ids(asker) or asker.header(NS, b"k") is not None, (
            "the asker claims (A, 1) as seen but neither holds nor defers it"
        )

    # Later: the clock gets there, the responder applies and forwards it, the
    # origin pushes it too, and everybody runs anti-entropy.
    asker.apply_deferred(future)
    responder.apply_deferred(future)
    asker.apply_remote(responder.take_ready_to_push(), future)
    asker.apply_remote(pushed, future)
    for _ in range(3):
        sync(asker, responder, future)
        sync(asker, ahead, future)
    assert asker.value(NS, b"k") == b"future"


def test_an_answer_sends_the_held_record_of_a_key_it_also_sends_a_deferred_record_of() -> None:
    """A responder defers an old record of a key and holds a newer one from an origin
    answered later: the deferred one goes out as it came, and so must the held one.

    Counting the deferred record as the key's answer left the newer one out while
    still covering its seq: the asker marked it seen and never got it, and once its
    tombstone was purged elsewhere the audit brought the old record back (the
    fuzz's seed 20, schedule 7: a skewed clock's write, then a delete)."""
    responder = new_replica(B_ID)
    asker = new_replica(B_ID + 1)
    older_hlc = hlc_bits.pack(WALL_MS + HORIZON_MS + 100, 0)
    newer_hlc = hlc_bits.pack(WALL_MS + HORIZON_MS + 101, 0)
    older = RecordHeader(older_hlc, A_ID, 1, value_length=3)
    newer = RecordHeader(newer_hlc, C_ID, 1, tombstone=True)
    assert responder.apply_remote([WireRecord(NS, b"k", older.encode(), b"old")], WALL_MS).deferred
    later_ms = WALL_MS + 101  # the newer record is within the horizon now; the older still waits
    assert responder.apply_remote([WireRecord(NS, b"k", newer.encode(), b"")], later_ms).new == 1
    assert deferred_ids(responder) == {(A_ID, 1)}

    delta = pull(asker, responder, later_ms)
    assert sorted(ids(delta.records)) == [(A_ID, 1), (C_ID, 1)]
    asker.apply_deferred(later_ms + HORIZON_MS)
    assert asker.header(NS, b"k") == newer


# ---- namespaces -------------------------------------------------------------------------


def test_a_deleted_namespace_drops_later_records_for_it() -> None:
    owner = new_replica(A_ID)
    other = new_replica(B_ID)
    writer = new_replica(C_ID)
    owner.write(Write(RESERVED_NAMESPACE, namespace_key(NS), b"title"), WALL_MS)
    owner.write(put(b"early"), WALL_MS)
    sync(owner, other, WALL_MS)
    sync(owner, writer, WALL_MS)
    writer.write(put(b"late"), WALL_MS + 5)  # concurrent with the delete below
    owner.write(Write(RESERVED_NAMESPACE, namespace_key(NS), tombstone=True), WALL_MS + 1)
    other.apply_remote(owner.take_ready_to_push(), WALL_MS + 5)
    assert not other.namespace_live(NS)
    assert NS in other.namespaces_to_sweep

    outcome = other.apply_remote(writer.take_ready_to_push(), WALL_MS + 5)
    assert (outcome.new, outcome.stale) == (0, 1)
    assert other.header(NS, b"late") is None
    assert other.watermarks.seen(C_ID, writer.durable_seq)
    assert other.sweep_namespace(NS, NOW_S, 1000)
    assert other.header(NS, b"early") is None
    record = other.namespace_record(NS)
    assert record is not None
    assert record.tombstone


def test_a_namespace_tombstone_beats_a_concurrent_rename_on_every_replica() -> None:
    deleter = new_replica(A_ID)
    renamer = new_replica(B_ID)
    bystander = new_replica(C_ID)
    deleter.write(Write(RESERVED_NAMESPACE, namespace_key(NS), b"title"), WALL_MS)
    sync(deleter, renamer, WALL_MS)
    sync(deleter, bystander, WALL_MS)
    # The delete carries the older HLC; the rename would win under plain LWW.
    deleter.write(Write(RESERVED_NAMESPACE, namespace_key(NS), tombstone=True), WALL_MS + 1)
    renamer.write(Write(RESERVED_NAMESPACE, namespace_key(NS), b"renamed"), WALL_MS + 50)
    rename_push = renamer.take_ready_to_push()
    delete_push = deleter.take_ready_to_push()
    bystander.apply_remote(rename_push, WALL_MS + 50)  # rename first
    bystander.apply_remote(delete_push, WALL_MS + 50)
    renamer.apply_remote(delete_push, WALL_MS + 50)
    deleter.apply_remote(rename_push, WALL_MS + 50)
    for replica in (deleter, renamer, bystander):
        record = replica.namespace_record(NS)
        assert record is not None
        assert record.tombstone
        assert not replica.namespace_live(NS)
    assert held_headers(deleter) == held_headers(renamer) == held_headers(bystander)
    sync(deleter, renamer, WALL_MS + 50)
    sync(renamer, bystander, WALL_MS + 50)
    assert held_headers(deleter) == held_headers(renamer) == held_headers(bystander)


# ---- audit --------------------------------------------------------------------------


def conflicting_records() -> list[WireRecord]:
    """Records from two origins with conflicts, tombstones and expirations."""
    first = new_replica(A_ID)
    second = new_replica(C_ID)
    first.write_many([put(b"x", b"a"), put(b"y", b"a"), delete(b"z")], WALL_MS)
    second.write_many(
        [put(b"x", b"c"), put(b"z", b"c"), put(b"w", b"c", expiration=int(NOW_S) + 5)],
        WALL_MS + 1,
    )
    first.write_many([delete(b"y"), put(b"v", b"a")], WALL_MS + 2)
    return first.take_ready_to_push() + second.take_ready_to_push()


@pytest.mark.parametrize("rotation", [1, 3, 5])
def test_audit_buckets_do_not_depend_on_the_order_records_arrive(rotation: int) -> None:
    records = conflicting_records()
    forwards = new_replica(B_ID)
    rotated = new_replica(0x0D0D)
    for record in records:
        forwards.apply_remote([record], WALL_MS + 2)
    for record in reversed(records[rotation:] + records[:rotation]):
        rotated.apply_remote([record], WALL_MS + 2)
    assert held_headers(forwards) == held_headers(rotated)
    assert forwards.audit_buckets == rotated.audit_buckets
    assert forwards.audit_buckets == recomputed_buckets(forwards)
    assert audit.digest(forwards.audit_buckets) == audit.digest(rotated.audit_buckets)
    assert any(forwards.audit_buckets)


def synced_pair() -> tuple[Replica, Replica, Replica]:
    origin = new_replica(C_ID)
    first = new_replica(A_ID)
    second = new_replica(B_ID)
    origin.write_many([put(b"k", b"1"), put(b"k", b"2"), put(b"j", b"1")], WALL_MS)
    sync(first, origin, WALL_MS)
    sync(second, origin, WALL_MS)
    assert first.audit_buckets == second.audit_buckets
    return origin, first, second


def test_audit_finds_and_repairs_exactly_a_record_lost_despite_the_watermarks() -> None:
    _, asker, holder = synced_pair()
    # (C, 1) is covered on both; pretend the asker lost a record it stood for.
    lost = WireRecord(NS, b"lost", RecordHeader(hlc_bits.pack(WALL_MS, 0), C_ID, 1).encode(), b"")
    holder.take_ready_to_push()
    holder.plant(lost)
    assert holder.take_ready_to_push() == []
    differing = audit.differing(asker.audit_buckets, holder.audit_buckets)
    assert differing == [audit.bucket_of(lost.stored_key)]

    theirs = holder.audit_entries(differing)[0]
    assert lost.stored_key in {entry.stored_key for entry in theirs}
    wanted = asker.audit_wanted(theirs, NOW_S)
    assert wanted == [lost.stored_key]
    assert holder.audit_wanted(asker.audit_entries(differing)[0], NOW_S) == []

    assert asker.apply_repairs(holder.fetch(wanted)) == 1
    assert asker.audit_repairs_total == 1
    assert asker.audit_buckets == holder.audit_buckets == recomputed_buckets(asker)
    assert asker.header(NS, b"lost") == lost.decoded()
    assert asker.apply_repairs(holder.fetch(wanted)) == 0  # already there
    assert asker.audit_repairs_total == 1


def test_audit_does_not_want_a_record_its_watermarks_have_not_seen() -> None:
    _, asker, holder = synced_pair()
    in_flight = WireRecord(
        NS, b"new", RecordHeader(hlc_bits.pack(WALL_MS, 9), C_ID, 9).encode(), b""
    )
    holder.plant(in_flight)
    differing = audit.differing(asker.audit_buckets, holder.audit_buckets)
    assert differing == [audit.bucket_of(in_flight.stored_key)]
    assert asker.audit_wanted(holder.audit_entries(differing)[0], NOW_S) == []
    assert asker.audit_repairs_total == 0


def test_audit_ignores_tombstones_and_expired_records() -> None:
    _, asker, holder = synced_pair()
    tombstone = WireRecord(
        NS, b"gone", RecordHeader(hlc_bits.pack(WALL_MS, 0), C_ID, 1, tombstone=True).encode()
    )
    expired = WireRecord(
        NS,
        b"old",
        RecordHeader(hlc_bits.pack(WALL_MS, 0), C_ID, 2, expiration=int(NOW_S)).encode(),
    )
    holder.plant(tombstone)
    holder.plant(expired)
    assert audit.differing(asker.audit_buckets, holder.audit_buckets) == [
        audit.bucket_of(expired.stored_key)
    ]
    every_bucket = range(audit.BUCKETS)
    assert asker.audit_wanted(holder.audit_entries(every_bucket)[0], NOW_S) == []


# ---- retirement ---------------------------------------------------------------------


def test_a_retirement_replicates_and_survives_a_restart() -> None:
    remover = new_replica(A_ID)
    store = MemoryStore()
    other = new_replica(B_ID, store=store)
    retired_id = 0x0123_4567_89AB_CDEF
    assert not other.is_retired(retired_id)  # caches the absence
    remover.retire(retired_id, WALL_MS)
    assert remover.is_retired(retired_id)
    other.apply_remote(remover.take_ready_to_push(), WALL_MS)
    assert other.is_retired(retired_id)
    assert not other.is_retired(C_ID)
    assert new_replica(B_ID, store=store).is_retired(retired_id)


def test_a_retirement_reaches_a_third_replica_by_anti_entropy_and_is_never_purged() -> None:
    remover, relay, third = new_replica(A_ID), new_replica(B_ID), new_replica(C_ID)
    remover.retire(C_ID + 1, WALL_MS)
    sync(relay, remover, WALL_MS)
    sync(third, relay, WALL_MS)
    assert third.is_retired(C_ID + 1)
    third.purge_rule.update([third.own_watermarks()])
    assert third.sweep(b"", NOW_S + 10**9, 1000) is None
    assert third.is_retired(C_ID + 1)


# ---- purging ------------------------------------------------------------------------


def test_purge_keeps_the_audit_buckets_consistent() -> None:
    replica = new_replica(A_ID)
    expiry = int(NOW_S) + 10
    replica.write_many(
        [put(b"live"), put(b"expiring", expiration=expiry), put(b"deleted")], WALL_MS
    )
    replica.write(delete(b"deleted"), WALL_MS)
    before = list(replica.audit_buckets)
    replica.purge_rule.update([replica.own_watermarks()])
    assert replica.sweep(b"", expiry, 1000) is None
    assert replica.header(NS, b"expiring") is None
    assert replica.header(NS, b"deleted") is None
    assert replica.header(NS, b"live") is not None
    assert replica.audit_buckets == recomputed_buckets(replica)
    expiring_key = layout.record_key(NS, b"expiring")
    assert audit.differing(before, replica.audit_buckets) == [audit.bucket_of(expiring_key)]
    assert (replica.records_held, replica.tombstones_held) == (1, 0)
    assert replica.sweep_log(b"", 1000) is None  # entries of replaced records, once stable
    assert list(replica.store.scan(LOG, b"")) == [
        (layout.log_key(A_ID, 1), layout.record_key(NS, b"live"))
    ]

    # A replica that never held the purged records agrees bucket for bucket.
    fresh = new_replica(B_ID)
    fresh.apply_remote([record_of(replica, b"live")], WALL_MS)
    assert fresh.audit_buckets == replica.audit_buckets


def test_restart_keeps_records_watermarks_and_buckets() -> None:
    store = MemoryStore()
    replica = new_replica(B_ID, store=store, durability=Durability.FSYNC)
    _, responder, _ = three_origin_responder()
    replica.apply_remote(responder.delta_for({}).records[:4], WALL_MS)
    replica.write(put(b"mine"), WALL_MS)
    make_durable(replica)
    before = (
        held_headers(replica),
        held_values(replica),
        replica.watermarks.vector(),
        dict(replica.watermarks.ranges),
        replica.own_watermarks(),
        list(replica.audit_buckets),
    )
    restarted = new_replica(B_ID, store=store, durability=Durability.FSYNC)
    after = (
        held_headers(restarted),
        held_values(restarted),
        restarted.watermarks.vector(),
        dict(restarted.watermarks.ranges),
        restarted.own_watermarks(),
        list(restarted.audit_buckets),
    )
    assert after == before
    header = restarted.write(put(b"next"), WALL_MS).header
    assert header.seq == replica.durable_seq + 1
    assert header.hlc > replica.clock.last


# ---- peer input is untrusted ---------------------------------------------------------


def pushed(key: bytes, seq: int, *, origin: int = A_ID, value: bytes = b"v") -> WireRecord:
    header = RecordHeader(hlc_bits.pack(WALL_MS, seq), origin, seq, value_length=len(value))
    return WireRecord(NS, key, header.encode(), value)


def malformed(seq: int) -> WireRecord:
    """A record whose header claims a longer value than it carries."""
    header = RecordHeader(hlc_bits.pack(WALL_MS, seq), A_ID, seq, value_length=9)
    return WireRecord(NS, b"bad", header.encode(), b"v")


def test_a_push_with_a_bad_record_after_a_good_one_applies_and_marks_nothing() -> None:
    receiver = new_replica(B_ID)
    before = (held_headers(receiver), receiver.watermarks.vector(), receiver.written_ticket)
    with pytest.raises(MalformedPeerMessage, match=r"record 1 of 2 .*the header says 9"):
        receiver.apply_remote([pushed(b"good", 1), malformed(2)], WALL_MS)
    assert not receiver.watermarks.seen(A_ID, 1)
    assert not receiver.watermarks.seen(A_ID, 2)
    assert (held_headers(receiver), receiver.watermarks.vector(), receiver.written_ticket) == (
        before
    )
    assert receiver.take_ready_to_push() == []
    # The good record still applies when it comes again, alone.
    assert receiver.apply_remote([pushed(b"good", 1)], WALL_MS).new == 1
    assert receiver.read(NS, b"good", NOW_S) is not None


def test_a_bad_record_in_a_later_batch_of_a_message_rejects_the_first_batch_too() -> None:
    receiver = new_replica(B_ID)
    records = [pushed(f"k{seq}".encode(), seq) for seq in range(1, 1201)] + [malformed(1201)]
    with pytest.raises(MalformedPeerMessage, match="record 1200 of 1201"):
        receiver.apply_remote(records, WALL_MS)
    assert held_headers(receiver) == {}
    assert receiver.watermarks.get(A_ID) == 0


@pytest.mark.parametrize(
    ("claim", "rule"),
    [
        (Coverage(0, 0, 5, complete=True), "origin 0"),
        (Coverage(A_ID, 6, 5, complete=True), "not a range"),
        (Coverage(A_ID, 0, 1 << 63, complete=True), "2^63"),
    ],
)
def test_a_malformed_coverage_claim_rejects_the_whole_message(claim: Coverage, rule: str) -> None:
    receiver = new_replica(B_ID)
    good = Coverage(A_ID, 0, 1, complete=True)
    with pytest.raises(MalformedPeerMessage, match=f"coverage claim 1 .*{re.escape(rule)}"):
        receiver.apply_remote([pushed(b"good", 1)], WALL_MS, [good, claim], session=True)
    assert held_headers(receiver) == {}
    assert receiver.watermarks.vector() == {}
    assert receiver.provisional == {}


def test_malformed_peer_message_is_an_invalid_request() -> None:
    assert issubclass(MalformedPeerMessage, InvalidRequest)
    assert issubclass(MalformedPeerMessage, ValueError)


def test_repairs_are_checked_whole_before_any_applies() -> None:
    receiver = new_replica(B_ID)
    with pytest.raises(MalformedPeerMessage, match="record 1 of 2"):
        receiver.apply_repairs([pushed(b"good", 1), malformed(2)])
    assert held_headers(receiver) == {}
    assert receiver.audit_repairs_total == 0


def planted_responder() -> tuple[Replica, list[WireRecord]]:
    """A responder holding A's seqs 1..5, of which seq 3 is malformed (planted)."""
    responder = new_replica(B_ID)
    good = [pushed(f"k{seq}".encode(), seq) for seq in (1, 2, 4, 5)]
    responder.apply_remote(good, WALL_MS, [Coverage(A_ID, 0, 5, complete=True)])
    bad = WireRecord(NS, b".", pushed(b".", 3).header, b"v")  # "." is never a key
    responder.plant(bad)
    return responder, good


def test_delta_for_skips_a_held_record_it_would_reject_and_serves_the_rest() -> None:
    responder, good = planted_responder()
    delta = responder.delta_for({})
    assert ids(delta.records) == [(A_ID, 1), (A_ID, 2), (A_ID, 4), (A_ID, 5)]
    assert delta.records == good
    assert responder.invalid_records_skipped == 1
    assert Coverage(A_ID, 0, 5, complete=True) in delta.coverage
    asker = new_replica(C_ID)
    asker.apply_remote(delta.records, WALL_MS, delta.coverage)  # accepted whole
    assert asker.watermarks.get(A_ID) == 5
    assert asker.read(NS, b"k5", NOW_S) is not None


def test_a_skipped_record_does_not_cut_a_budgeted_answer_short() -> None:
    responder, good = planted_responder()
    first = responder.delta_for({}, budget_bytes=good[0].size() * 2)
    assert ids(first.records) == [(A_ID, 1), (A_ID, 2)]
    assert first.coverage == [Coverage(A_ID, 0, 3, complete=False)]  # vouches past the bad 3
    rest = responder.delta_for({A_ID: first.coverage[0].last})
    assert ids(rest.records) == [(A_ID, 4), (A_ID, 5)]


def test_an_audit_fetch_never_serves_a_record_it_would_reject() -> None:
    responder, _ = planted_responder()
    fetched = responder.fetch([layout.record_key(NS, b"."), layout.record_key(NS, b"k1")])
    assert [record.key for record in fetched] == [b"k1"]
    assert responder.invalid_records_skipped == 1
