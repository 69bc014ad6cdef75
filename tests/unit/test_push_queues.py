"""Push planning and the per-peer queues (pure: no I/O).

A record is never pushed back to the node that wrote it, every ready record
goes to up to ``fanout`` distinct peers, a queued record superseded before it
is sent is replaced by the newer one, and a full queue counts what it drops.
"""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from rumor.node.core.record import RecordHeader
from rumor.node.replication.engine.push_queues import PushQueues, by_origin, plan_pushes
from rumor.node.replication.replica.delta import WireRecord

NAMESPACE = bytes(range(16))
ORIGINS = st.sampled_from([1, 2, 3, 4, 5])


def record(origin: int, seq: int, key: bytes = b"", hlc: int = 0) -> WireRecord:
    header = RecordHeader(hlc=hlc or seq, origin=origin, seq=seq, value_length=1)
    return WireRecord(NAMESPACE, key or b"k-%d-%d" % (origin, seq), header.encode(), b"v")


@given(
    st.lists(ORIGINS, min_size=1, max_size=40),
    st.lists(ORIGINS, min_size=1, max_size=12, unique=True),
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=0, max_value=4),
    st.integers(min_value=0, max_value=2**32),
)
def test_a_plan_never_sends_a_record_to_its_origin(
    origins: list[int], peers: list[int], fanout: int, lazy_fanout: int, seed: int
) -> None:
    records = [record(origin, seq) for seq, origin in enumerate(origins, 1)]
    plan = plan_pushes(records, peers, fanout, lazy_fanout, random.Random(seed))
    planned = [r for entry in plan for r in entry.records]
    for entry in plan:
        group_origins = {r.ids()[1] for r in entry.records}
        assert len(group_origins) == 1
        (origin,) = group_origins
        others = set(peers) - {origin}
        assert origin not in entry.eager + entry.lazy
        assert len(set(entry.eager)) == len(entry.eager) == min(fanout, len(others))
        assert not set(entry.eager) & set(entry.lazy)
        assert len(entry.lazy) <= lazy_fanout
        assert set(entry.eager) | set(entry.lazy) <= set(peers)
    # Every record is planned once, unless its origin is the only peer there is.
    expected = [r for r in records if set(peers) - {r.ids()[1]}]
    assert sorted(planned) == sorted(expected)
    # One draw per flush: at most fanout + lazy_fanout + 1 distinct peers get anything.
    touched = {peer for entry in plan for peer in entry.eager + entry.lazy}
    assert len(touched) <= fanout + lazy_fanout + 1


def test_records_are_grouped_by_origin_in_order() -> None:
    records = [record(1, 1), record(2, 1), record(1, 2)]
    assert by_origin(records) == {1: [records[0], records[2]], 2: [records[1]]}


def test_a_queued_record_superseded_before_it_is_sent_is_replaced() -> None:
    queues = PushQueues()
    old = record(1, 1, key=b"same", hlc=10)
    new = record(2, 5, key=b"same", hlc=20)
    queues.offer([old], [9])
    queues.offer([new], [9])
    assert queues.take(9) == [new]
    queues.offer([new], [9])
    queues.offer([old], [9])  # arrives late: the newer one stays
    assert queues.take(9) == [new]
    assert queues.pending(9) == 0


def test_a_full_queue_counts_what_it_drops() -> None:
    records = [record(1, seq) for seq in range(1, 5)]
    queues = PushQueues(limit_bytes_per_peer=2 * records[0].size())
    queues.offer(records, [9])
    assert queues.dropped == 2
    assert len(queues.take(9)) == 2


def test_a_queue_is_bounded_by_bytes_not_by_records() -> None:
    small = [record(1, seq) for seq in range(1, 101)]
    queues = PushQueues(limit_bytes_per_peer=sum(r.size() for r in small))
    queues.offer(small, [9])
    assert queues.dropped == 0
    big = record(2, 1)._replace(value=b"x" * 1000)
    queues.offer([big], [9])
    assert queues.dropped == 1  # one large record does not fit where 100 small ones did
    assert queues.pending(9) == sum(r.size() for r in small)
