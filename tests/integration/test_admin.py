"""rumor admin checkpoint, drain and status on real nodes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from rumor.client import Client
from rumor.v1 import admin_pb2, admin_pb2_grpc
from tests.support.cluster import Cluster, status
from tests.support.nodes import NodeProcess, poll

BIN = Path(sys.executable).parent


def _admin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "rumor"), "admin", *args], capture_output=True, text=True, timeout=120
    )


def test_checkpoint_under_writes_restores_as_a_new_node_that_converges(tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    cluster = Cluster(tmp_path, 2, "--checkpoint-dir", str(checkpoints))
    restored: NodeProcess | None = None
    try:
        n1 = cluster.nodes[0]
        with Client(n1.address) as client:
            ns = client.namespace(client.namespaces.create("CHECKPOINT").id)
            ns.bulk_put([{"key": f"before{i:04d}", "value": "v"} for i in range(2000)])
            stop = threading.Event()

            def write() -> None:
                with Client(n1.address) as writer:
                    namespace = writer.namespace(ns.id)
                    i = 0
                    while not stop.is_set():
                        namespace.put(f"during{i:05d}", "w")
                        i += 1

            writer = threading.Thread(target=write)
            writer.start()
            try:
                result = _admin("checkpoint", str(checkpoints / "copy"), "--endpoint", n1.address)
            finally:
                stop.set()
                writer.join(30)
            assert result.returncode == 0, result.stderr
            restored = NodeProcess(
                checkpoints / "copy", *cluster.extra, "--seeds", n1.address
            ).start()
            assert restored.node_id != n1.node_id
            cluster.wait_converged([*cluster.nodes, restored], timeout=60)
            with Client(restored.address) as reader:
                assert reader.namespace(ns.id).get("before0000") == "v"
        again = _admin("checkpoint", "copy", "--endpoint", n1.address)
        assert again.returncode == 1 and "already exists" in again.stderr
    finally:
        if restored is not None:
            restored.stop()
        cluster.stop()


def test_status_and_drain(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, 2)
    try:
        n1, n2 = cluster.nodes
        poll(lambda: len(status(n1).members) == 2, timeout=10)
        shown = _admin("status", "--endpoint", n2.address)
        assert shown.returncode == 0
        view = json.loads(shown.stdout)
        assert view["node_id"] == n2.node_id and len(view["members"]) == 2
        # No cluster secret: drain carries the admin token, read from the file the node
        # names (its user, its host); a wrong file is refused by the node, naming it.
        wrong = tmp_path / "wrong-token"
        wrong.write_text("guessed\n")
        refused = _admin("drain", "--endpoint", n2.address, "--admin-token-file", str(wrong))
        assert refused.returncode == 1 and "admin token" in refused.stderr, refused.stderr
        assert n2.alive()
        drained = _admin("drain", "--endpoint", n2.address)
        assert drained.returncode == 0, drained.stderr
        assert n2.process is not None
        assert n2.process.wait(30) == 0
        poll(
            lambda: (
                {m.member.state for m in status(n1).members if m.member.id != int(n1.node_id, 16)}
                == {3}
            ),
            timeout=10,
        )  # left
    finally:
        cluster.stop()


def test_an_open_node_is_not_stopped_without_its_admin_token(tmp_path: Path) -> None:
    """No cluster secret: Status is open, Drain and RemoveNode need the admin token
    written (mode 0600) to the data directory at each start, and the refusal says so."""
    cluster = Cluster(tmp_path, 2)
    try:
        n1, n2 = cluster.nodes
        token_file = n1.data_dir / "admin-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        with grpc.insecure_channel(n1.address) as channel:
            stub = admin_pb2_grpc.AdminStub(channel)
            shown = stub.Status(admin_pb2.StatusRequest())
            assert shown.admin_token_file == str(token_file.resolve())
            calls: list[Callable[[tuple[tuple[str, str], ...]], object]] = [
                lambda metadata: stub.Drain(admin_pb2.DrainRequest(), metadata=metadata),
                lambda metadata: stub.RemoveNode(
                    admin_pb2.RemoveNodeRequest(node_id=int(n2.node_id, 16)), metadata=metadata
                ),
            ]
            for call in calls:
                for metadata in ((), (("x-rumor-admin-token", "guessed"),)):
                    with pytest.raises(grpc.RpcError) as refused:
                        call(metadata)
                    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
                    assert "admin token" in str(refused.value.details())
        assert n1.alive()
        assert len(status(n1).members) == 2  # nothing removed
        # The file the node names cannot be read (here: gone): the CLI says which file.
        old_token = token_file.read_text()
        token_file.unlink()
        missing = _admin("remove-node", n2.node_id, "--endpoint", n1.address)
        assert missing.returncode == 1
        assert f"cannot read the admin token file {token_file.resolve()}" in missing.stderr
        assert len(status(n1).members) == 2
        n1.restart()
        assert token_file.read_text() != old_token  # a fresh token each start
        assert token_file.stat().st_mode & 0o777 == 0o600
        poll(
            lambda: any(
                m.member.id == int(n2.node_id, 16) and m.member.state == 0
                for m in status(n1).members
            ),
            timeout=30,
        )  # n2 alive again in n1's view
        removed = _admin(
            "remove-node", n2.node_id, "--endpoint", n1.address,
            "--admin-token-file", str(token_file),
        )  # fmt: skip
        assert removed.returncode == 0, removed.stderr
        poll(
            lambda: any(
                m.member.id == int(n2.node_id, 16) and m.member.state == 4
                for m in status(n1).members
            ),
            timeout=30,
        )  # removed
    finally:
        cluster.stop()


def test_with_workers_the_owner_checks_the_admin_token_its_workers_forward(
    tmp_path: Path,
) -> None:
    """--workers 2: Drain reaches the owner through whichever process took the
    connection; without the token it is refused, with it the node stops."""
    node = NodeProcess(tmp_path / "n", "--workers", "2")
    node.start()
    try:
        for _ in range(6):  # a connection each: the kernel spreads them over the processes
            with grpc.insecure_channel(node.address) as channel:
                stub = admin_pb2_grpc.AdminStub(channel)
                with pytest.raises(grpc.RpcError) as refused:
                    stub.Drain(admin_pb2.DrainRequest(), timeout=30)
                assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
                assert "admin token" in str(refused.value.details())
        assert node.alive()
        drained = _admin("drain", "--endpoint", node.address)
        assert drained.returncode == 0, drained.stderr
        assert node.process is not None
        assert node.process.wait(60) == 0
    finally:
        node.stop()
