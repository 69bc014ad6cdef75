"""Members that leave and come back, with real nodes on 127.0.0.1 (protocol timers in ms).

A fresh process at a member's old address does not keep the old id alive; a
member that left stops holding tombstone GC back once the member timeout has
passed; a removed node restarted on its old data with --rejoin-as-new joins as
a new node and brings back nothing that was deleted while it was away.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import grpc

from rumor.v1 import admin_pb2, replication_pb2
from rumor.v1 import kv_pb2 as pb
from tests.integration.kv_helpers import get, put
from tests.integration.test_replication import (
    absent_everywhere,
    converge,
    describe,
    everyone_alive,
    member_states,
    new_namespace,
    running_cluster,
)
from tests.support.cluster import admin, node_id, status
from tests.support.nodes import NodeProcess, poll

ALIVE = replication_pb2.MEMBER_STATE_ALIVE
REMOVED = replication_pb2.MEMBER_STATE_REMOVED
MEMBER_TIMEOUT = ("--member-timeout-ms", "1500")


def serving_id(node: NodeProcess) -> int:
    """The id ``node`` serves under once ready (0 while it restarts or catches up)."""
    try:
        state = status(node)
    except grpc.RpcError:
        return 0  # between its two lives: the old store closed, the new one not yet open
    return state.node_id if state.ready else 0


def tombstones_gone(nodes: list[NodeProcess]) -> bool:
    return all(status(node).tombstones_held == 0 for node in nodes)


def test_a_fresh_process_at_an_old_address_does_not_keep_the_old_id_alive(
    tmp_path: Path,
) -> None:
    # A suspicion timeout longer than a start-up, so the fresh process answers probes of
    # the old id before it could be declared dead: those answers must not count.
    with running_cluster(tmp_path, 3, *MEMBER_TIMEOUT, "--suspicion-timeout-ms", "6000") as three:
        n1, n2, n3 = three.nodes
        poll(lambda: everyone_alive(three.nodes), timeout=15)
        ns = new_namespace(three, "replaced")
        put(n1, ns, b"k", b"v")
        poll(lambda: all(get(node, ns, b"k").found for node in three.nodes))
        old = node_id(n3)
        n3.kill()
        # A pod replaced with a fresh volume: a new process, a new id, the same address.
        fresh = NodeProcess(tmp_path / "n3-fresh", *three.extra, "--seeds", n1.address)
        fresh.address = n3.address
        three.nodes.append(fresh)  # stopped with the others
        fresh.start()
        assert node_id(fresh) != old
        n1.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"k"))
        # Its answers to probes of the old id do not count: the old id goes dead, is
        # retired after the member timeout, and the tombstone is purged.
        try:
            poll(lambda: "replication.probe_mismatch" in n1.log_path.read_text(), timeout=15)
            poll(lambda: member_states(n1).get(old) != ALIVE, timeout=15)
            poll(
                lambda: all(member_states(n).get(old) == REMOVED for n in (n1, n2, fresh)),
                timeout=30,
            )
            poll(lambda: tombstones_gone([n1, n2, fresh]), timeout=30)
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n{describe([n1, n2, fresh])}") from None
        assert member_states(n1).get(node_id(fresh)) == ALIVE
        assert absent_everywhere([n1, n2, fresh], ns, b"k")


def test_a_member_that_left_stops_holding_gc_back(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 3, *MEMBER_TIMEOUT) as three:
        n1, n2, n3 = three.nodes
        poll(lambda: everyone_alive(three.nodes), timeout=15)
        ns = new_namespace(three, "left")
        put(n1, ns, b"k", b"v")
        poll(lambda: all(get(node, ns, b"k").found for node in three.nodes))
        converge(three)
        left = node_id(n3)
        assert n3.stop() == 0  # SIGTERM: it announces "left" (a StatefulSet scale-down)
        n2.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"k"))
        poll(lambda: all(status(node).tombstones_held >= 1 for node in (n1, n2)))
        # Without a member timeout the tombstone stayed for as long as n3 was away;
        # now it goes once n3 is retired (1.5 s), plus a GC grace and a sweep.
        try:
            poll(lambda: tombstones_gone([n1, n2]), timeout=30)
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n{describe([n1, n2])}") from None
        assert all(member_states(node).get(left) == REMOVED for node in (n1, n2))
        assert absent_everywhere([n1, n2], ns, b"k")


def test_a_removed_node_restarted_with_rejoin_as_new_joins_as_new_and_brings_nothing_back(
    tmp_path: Path,
) -> None:
    with running_cluster(tmp_path, 3) as three:
        n1, n2, n3 = three.nodes
        poll(lambda: everyone_alive(three.nodes), timeout=15)
        ns = new_namespace(three, "rejoin")
        put(n1, ns, b"deleted-later", b"old value")
        put(n1, ns, b"kept", b"kept value")
        poll(lambda: all(get(node, ns, b"deleted-later").found for node in three.nodes))
        converge(three)
        removed = node_id(n3)
        assert n3.stop() == 0  # its data directory keeps both keys
        admin(n1).RemoveNode(admin_pb2.RemoveNodeRequest(node_id=removed))
        n1.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"deleted-later"))
        poll(lambda: tombstones_gone([n1, n2]), timeout=30)  # purged: no trace left

        n3.args.append("--rejoin-as-new")
        n3.start()  # on its kept volume, as a pod scaled back up

        def rejoined() -> int:
            assert n3.alive(), f"n3 exited instead of rejoining:\n{n3.log()}"
            current = serving_id(n3)
            return current if current != removed else 0

        new_id = poll(rejoined, timeout=30)
        try:
            poll(lambda: member_states(n1).get(new_id) == ALIVE, timeout=15)
            converge(three, timeout=30)
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n{describe(three.nodes)}") from None
        assert n3.alive()
        assert "node.rejoining_as_new" in n3.log_path.read_text()
        assert member_states(n1).get(removed) == REMOVED
        assert absent_everywhere(three.nodes, ns, b"deleted-later")
        assert all(get(node, ns, b"kept").value == b"kept value" for node in three.nodes)


def documented_commands() -> list[str]:
    """The first ```sh block of docs/deploy.md's section on members that leave."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    start = text.index("## Members that leave and come back")
    block = re.search(r"```sh\n(.*?)```", text[start:], re.DOTALL)
    assert block is not None
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_documented_removal_of_a_member_that_left_runs(tmp_path: Path) -> None:
    commands = documented_commands()
    assert [c.split()[:3] for c in commands] == [
        ["rumor", "cluster", "status"],
        ["rumor", "admin", "remove-node"],
        ["rumor", "cluster", "status"],
    ]
    with running_cluster(tmp_path, 3) as three:
        n1, n2, n3 = three.nodes
        poll(lambda: everyone_alive(three.nodes), timeout=15)
        left = node_id(n3)
        assert n3.stop() == 0
        poll(lambda: member_states(n1).get(left) == replication_pb2.MEMBER_STATE_LEFT)
        outputs = []
        for command in commands:
            argv = shlex.split(command.replace("127.0.0.1:7401", n1.address))
            argv = [f"{left:016x}" if re.fullmatch(r"[0-9a-f]{16}", a) else a for a in argv]
            result = subprocess.run(
                [str(Path(sys.executable).parent / "rumor"), *argv[1:]],
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "COLUMNS": "200"},  # the table whole, as a terminal shows it
            )
            assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"
            outputs.append(result.stdout)
        assert f"{left:016x}" in outputs[0] and "left" in outputs[0]
        assert "removed" in outputs[2]
        poll(lambda: all(member_states(n).get(left) == REMOVED for n in (n1, n2)))
