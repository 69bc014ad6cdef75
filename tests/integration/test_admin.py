"""rumor admin checkpoint, drain and status on real nodes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from rumor.client import Client
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
        drained = _admin("drain", "--endpoint", n2.address)
        assert drained.returncode == 0
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
