"""Bootstrap by snapshot, against real node processes.

A fresh node joins a node holding 200,000 keys while deletes go on and
tombstones are purged (short GC grace): it bootstraps by snapshot (its log
says so), ends with the seed's audit digest and live-key count, and no
deleted key comes back on either node. A far-behind node with records of
its own does not take a snapshot.
"""

from __future__ import annotations

import threading
from pathlib import Path

import grpc

from rumor.v1 import kv_pb2 as pb
from tests.integration.kv_helpers import get, put
from tests.integration.test_joining import JOIN
from tests.integration.test_replication import describe, everyone_alive, poll_described
from tests.support.cluster import FAST_TIMERS, status
from tests.support.nodes import NodeProcess, create_namespace, poll

KEYS = 200_000
BATCH = 10_000


def _key(index: int) -> bytes:
    return b"key-%07d" % index


def _load(node: NodeProcess, ns: str) -> None:
    for start in range(0, KEYS, BATCH):
        items = [pb.PutRequest(key=_key(i), value=b"v%d" % i) for i in range(start, start + BATCH)]
        answer = node.kv.BulkPut(pb.BulkPutRequest(namespace_id=ns, items=items))
        assert answer.successful_key_count == BATCH


def _delete(node: NodeProcess, ns: str, start: int, stop: int) -> None:
    keys = [_key(i) for i in range(start, stop)]
    node.kv.BulkDelete(pb.BulkDeleteRequest(namespace_id=ns, keys=keys))


def _serving_again(node: NodeProcess) -> bool:
    """The node restarted on its installed copy and answers again.

    ``node.bootstrapped_by_snapshot`` is logged before the node reopens its
    store and listener, so a call right after it can be refused.
    """
    log = node.log()
    marker = log.find("node.bootstrapped_by_snapshot")
    if marker < 0 or "node.ready" not in log[marker:]:
        return False
    try:
        return status(node).ready
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            return False
        raise


def _same(a: NodeProcess, b: NodeProcess) -> bool:
    sa, sb = status(a), status(b)
    return (
        sb.ready
        and sa.audit_digest == sb.audit_digest
        and sa.records_held == sb.records_held
        and sa.tombstones_held == sb.tombstones_held
    )


def test_a_fresh_node_bootstraps_by_snapshot_while_deletes_and_purges_go_on(
    tmp_path: Path,
) -> None:
    seed = NodeProcess(tmp_path / "seed", *FAST_TIMERS, "--name", "seed")
    joiner = NodeProcess(
        tmp_path / "joiner", *FAST_TIMERS, *JOIN, "--name", "joiner", "--seeds", "placeholder"
    )
    stop = threading.Event()
    deleted: list[tuple[int, int]] = []

    def keep_deleting() -> None:
        start = 0
        while not stop.is_set() and start < 20_000:
            _delete(seed, ns, start, start + 500)
            deleted.append((start, start + 500))
            start += 500
            stop.wait(0.05)

    deleter = threading.Thread(target=keep_deleting, daemon=True)
    try:
        seed.start()
        ns = create_namespace(seed, "snapshot")
        _load(seed, ns)
        joiner.args[-1] = seed.address
        deleter.start()
        joiner.start()
        poll_described(lambda: _serving_again(joiner), [seed, joiner], 20)
        stop.set()
        deleter.join(timeout=10)
        poll_described(lambda: everyone_alive([seed, joiner]), [seed, joiner], 10)
        poll_described(lambda: _same(seed, joiner), [seed, joiner], 20)
        assert "snapshot.fetched" in joiner.log()
        gone = [i for start, end in deleted for i in range(start, end)]
        assert gone, "deletes ran during the join"
        for node in (seed, joiner):
            for index in gone[:: max(1, len(gone) // 50)]:
                assert not get(node, ns, _key(index)).found, describe([seed, joiner])
            assert get(node, ns, _key(KEYS - 1)).value == b"v%d" % (KEYS - 1)
        # The tail still flows: a write on the seed reaches the joiner.
        put(seed, ns, b"after", b"tail")
        poll(lambda: get(joiner, ns, b"after").found, timeout=10)
    finally:
        stop.set()
        joiner.stop()
        seed.stop()


def test_a_node_with_records_of_its_own_catches_up_by_anti_entropy(tmp_path: Path) -> None:
    seed = NodeProcess(tmp_path / "seed", *FAST_TIMERS, "--name", "seed")
    other = NodeProcess(tmp_path / "other", *FAST_TIMERS, *JOIN, "--name", "other")
    try:
        seed.start()
        other.start()
        poll(lambda: status(other).ready, timeout=10)
        ns = create_namespace(other, "own")
        put(other, ns, b"mine", b"1")
        other.stop()
        other.args += ["--seeds", seed.address]
        other.start()
        poll_described(lambda: everyone_alive([seed, other]), [seed, other], 15)
        poll_described(lambda: _same(seed, other), [seed, other], 15)
        assert "bootstrapped_by_snapshot" not in other.log()
        assert get(seed, ns, b"mine").found
    finally:
        other.stop()
        seed.stop()
