"""Joining, seeds, duplicate ids and untrusted peer input, against real node processes.

A node started before its seed joins it once the seed is up; a hostname seed
works; two groups started apart merge; a copy of a live node's data
directory is refused (it exits non-zero saying what to do) while the
original keeps serving, and a SIGKILL with an immediate restart is not
refused; a forged watermark claim is clamped and replication goes on; a
record planted invalid on one node does not stop anti-entropy to the others.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from rumor.node.core.record import RecordHeader
from rumor.v1 import faults_pb2, replication_pb2, replication_pb2_grpc
from tests.integration.kv_helpers import put
from tests.integration.test_replication import (
    everyone_alive,
    holds,
    namespace_known,
    new_namespace,
    running_cluster,
)
from tests.support.cluster import FAST_TIMERS, faults, node_id, status
from tests.support.nodes import NodeProcess, create_namespace, poll

JOIN = ("--join-timeout-ms", "300", "--seed-contact-interval-ms", "400")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def node(root: Path, name: str, *extra: str) -> NodeProcess:
    return NodeProcess(root / name, *FAST_TIMERS, *JOIN, "--name", name, *extra)


def test_a_node_started_before_its_seed_joins_it_once_the_seed_is_up(tmp_path: Path) -> None:
    port = free_port()
    early = node(tmp_path, "early", "--seeds", f"127.0.0.1:{port}")
    seed = node(tmp_path, "seed", "--listen", f"127.0.0.1:{port}")
    try:
        early.start()
        poll(lambda: status(early).ready, timeout=10)  # alone, after the join timeout
        ns_early = create_namespace(early, "written-alone")
        put(early, ns_early, b"k", b"from early")
        seed.start()
        poll(lambda: everyone_alive([early, seed]), timeout=15)
        poll(lambda: namespace_known(seed, ns_early), timeout=15)
        poll(lambda: holds([seed], ns_early, {b"k": "from early"}), timeout=15)
    finally:
        early.stop()
        seed.stop()


def test_a_hostname_seed_works(tmp_path: Path) -> None:
    first = node(tmp_path, "first")
    try:
        first.start()
        port = first.address.rsplit(":", 1)[1]
        second = node(tmp_path, "second", "--seeds", f"localhost:{port}")
        try:
            second.start()
            poll(lambda: everyone_alive([first, second]), timeout=15)
        finally:
            second.stop()
    finally:
        first.stop()


def test_two_groups_started_apart_become_one_cluster(tmp_path: Path) -> None:
    port = free_port()
    # Group B forms while its seed (the first node of group A) is down ...
    b1 = node(tmp_path, "b1", "--seeds", f"127.0.0.1:{port}")
    nodes = [b1]
    try:
        b1.start()
        poll(lambda: status(b1).ready, timeout=10)
        b2 = node(tmp_path, "b2", "--seeds", b1.address)
        nodes.append(b2.start())
        poll(lambda: everyone_alive([b1, b2]), timeout=10)
        ns_b = create_namespace(b1, "group-b")
        put(b1, ns_b, b"b", b"from group b")
        # ... then group A starts on its own.
        a1 = node(tmp_path, "a1", "--listen", f"127.0.0.1:{port}")
        nodes.append(a1.start())
        a2 = node(tmp_path, "a2", "--seeds", a1.address)
        nodes.append(a2.start())
        ns_a = create_namespace(a2, "group-a")
        put(a2, ns_a, b"a", b"from group a")
        # b1 still has a live member, yet its periodic seed contact merges the groups.
        poll(lambda: everyone_alive(nodes), timeout=20)
        poll(lambda: all(namespace_known(n, ns) for n in nodes for ns in (ns_a, ns_b)), timeout=15)
        poll(lambda: holds(nodes, ns_a, {b"a": "from group a"}), timeout=15)
        poll(lambda: holds(nodes, ns_b, {b"b": "from group b"}), timeout=15)
    finally:
        for each in nodes:
            each.stop()


def test_a_copy_of_a_live_nodes_data_is_refused_and_a_fast_restart_is_not(
    tmp_path: Path,
) -> None:
    with running_cluster(tmp_path, 2, *JOIN) as two:
        n1, n2 = two.nodes
        poll(lambda: everyone_alive(two.nodes), timeout=10)
        ns = new_namespace(two, "dup")
        put(n2, ns, b"before", b"1")

        # SIGKILL and an immediate restart on the same address: the same node, not a copy.
        n2.kill()
        n2.start()
        poll(lambda: everyone_alive(two.nodes), timeout=15)
        put(n2, ns, b"after-restart", b"2")
        poll(lambda: holds([n1], ns, {b"after-restart": "2"}), timeout=10)

        copy_dir = tmp_path / "copy"
        shutil.copytree(n2.data_dir, copy_dir)
        copy = NodeProcess(copy_dir, *FAST_TIMERS, *JOIN, "--seeds", n1.address)
        try:
            copy.start()
            poll(lambda: not copy.alive(), timeout=15)
            assert copy.process is not None and copy.process.returncode not in (0, None)
            log = copy.log()
            assert "already in use" in log and "Wipe it" in log, log
        finally:
            copy.stop()
        # The original keeps serving and replicating.
        assert n2.alive()
        put(n2, ns, b"after-copy", b"3")
        poll(lambda: holds([n1], ns, {b"after-copy": "3"}), timeout=10)


def test_a_forged_watermark_claim_is_clamped_and_replication_goes_on(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 2) as two:
        n1, n2 = two.nodes
        poll(lambda: everyone_alive(two.nodes), timeout=10)
        ns = new_namespace(two, "forged")
        origin = node_id(n1)
        forged = replication_pb2.PushRequest(
            envelope=replication_pb2.Envelope(
                sender=node_id(n1), boot_nonce=1, address=n1.address, name="n1"
            ),
            coverage=[replication_pb2.Coverage(origin=origin, base=0, last=2**63, complete=True)],
        )
        replication_pb2_grpc.ReplicationStub(n2.channel).Push(forged, timeout=5)
        assert status(n2).watermarks[origin] < 2**62
        put(n1, ns, b"later", b"still arrives")
        poll(lambda: holds([n2], ns, {b"later": "still arrives"}), timeout=10)
        assert "replication.clamped" in n2.log()


def test_a_record_planted_invalid_does_not_stop_anti_entropy(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 3) as three:
        n1, n2, n3 = three.nodes
        poll(lambda: everyone_alive(three.nodes), timeout=10)
        ns = new_namespace(three, "planted")
        three.block(n2)  # n2 misses what follows, then catches up by anti-entropy only
        header = RecordHeader(hlc=status(n1).hlc + 1, origin=node_id(n1), seq=10**6)
        bad = replication_pb2.Record(namespace=bytes.fromhex(ns), key=b".", header=header.encode())
        faults(n1).Plant(faults_pb2.PlantRequest(record=bad))
        written = {b"k%d" % i: f"v{i}" for i in range(20)}
        for key, value in written.items():
            put(n1, ns, key, value.encode())
        poll(lambda: holds([n3], ns, written), timeout=10)
        three.unblock(n2)
        poll(lambda: holds([n2], ns, written), timeout=15)
        # The planted record stayed where it was planted: no node served it to another.
        held = [status(each).records_held for each in (n1, n2, n3)]
        assert held[0] == held[1] + 1 == held[2] + 1, held
