"""A node's life: clean stop, restart on the same data, kill -9 after acknowledged writes."""

from __future__ import annotations

import socket
import subprocess
import sys
from concurrent.futures import Future
from pathlib import Path

import grpc
import pytest

from rumor.v1 import kv_pb2 as pb
from rumor.v1.kv_pb2_grpc import KVStub
from tests.support.nodes import NodeProcess, create_namespace


def _value(i: int) -> bytes:
    return f"value-{i}".encode() * 3


def test_sigterm_stops_cleanly_and_restart_keeps_data_and_id(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "data").start()
    try:
        ns = create_namespace(node, "lifecycle")
        node.kv.Put(pb.PutRequest(namespace_id=ns, key=b"k", value=b"v", metadata=b"[1]"))
        node_id = node.node_id
        assert node.stop() == 0
        node.start()
        assert node.node_id == node_id
        got = node.kv.Get(pb.GetRequest(namespace_id=ns, key=b"k", with_metadata=True))
        assert got.found and got.value == b"v" and got.metadata == b"[1]"
        assert [n.title for n in node.kv.ListNamespaces(pb.ListNamespacesRequest()).namespaces] == [
            "lifecycle"
        ]
    finally:
        node.stop()


@pytest.mark.parametrize("durability", ["fsync", "wal"])
def test_kill_9_after_acknowledged_writes_loses_nothing(tmp_path: Path, durability: str) -> None:
    node = NodeProcess(tmp_path / "data", "--durability", durability).start()
    try:
        ns = create_namespace(node, "durable")
        # Many writes in flight at once, so group commit batches them.
        futures: list[Future[pb.PutResponse]] = [
            node.kv.Put.future(pb.PutRequest(namespace_id=ns, key=b"k%04d" % i, value=_value(i)))
            for i in range(400)
        ]
        bulk = node.kv.BulkPut(
            pb.BulkPutRequest(
                namespace_id=ns,
                items=[pb.PutRequest(key=b"b%04d" % i, value=_value(i)) for i in range(2000)],
            )
        )
        deleted = node.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"k0000"))
        acknowledged = [future.result() for future in futures]
        seqs = [response.seq for response in acknowledged] + [deleted.seq]
        assert bulk.successful_key_count == 2000
        node.kill()

        node.start()
        for i in range(1, 400):
            got = node.kv.Get(pb.GetRequest(namespace_id=ns, key=b"k%04d" % i))
            assert got.found and got.value == _value(i), f"lost k{i:04d}"
        assert not node.kv.Get(pb.GetRequest(namespace_id=ns, key=b"k0000")).found
        listed = node.kv.List(pb.ListRequest(namespace_id=ns, prefix=b"b", limit=1000))
        assert len(listed.keys) == 1000 and not listed.list_complete
        got = node.kv.BulkGet(
            pb.BulkGetRequest(
                namespace_id=ns,
                keys=[b"b%04d" % i for i in range(1900, 2000)],
                type=pb.VALUE_TYPE_TEXT,
            )
        )
        assert all(entry.result.found for entry in got.entries)
        # Sequence numbers never repeat across the crash.
        after = node.kv.Put(pb.PutRequest(namespace_id=ns, key=b"after", value=b"x"))
        assert after.seq > max(seqs)
    finally:
        node.stop()


def test_second_node_on_a_locked_data_dir_is_refused(tmp_path: Path) -> None:
    first = NodeProcess(tmp_path / "data").start()
    try:
        second = subprocess.run(
            NodeProcess(tmp_path / "data").command(), capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1
        assert "in use by another process" in second.stderr
        assert f"pid {first.process.pid}" in second.stderr if first.process else False
        assert first.alive()
    finally:
        first.stop()


def test_bad_setting_is_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rumor.node", "--data-dir", str(tmp_path), "--listen", "nowhere"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "listen must be HOST:PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "rumor.node",
                "--data-dir",
                str(tmp_path / "d"),
                "--listen",
                address,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"cannot listen on {address}" in result.stderr
    assert "Traceback" not in result.stderr


def test_client_sees_unavailable_after_stop(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "data").start()
    address = node.address
    node.stop()
    channel = grpc.insecure_channel(address)
    with pytest.raises(grpc.RpcError) as failure:
        KVStub(channel).ListNamespaces(pb.ListNamespacesRequest(), timeout=2)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    channel.close()
