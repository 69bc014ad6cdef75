"""Backups off the host and restore, on real nodes: the drill, and what is refused.

The drill: a 3-node cluster takes writes while ``rumor admin backup DIR``
backs one node up (twice: the second is incremental); the cluster is
destroyed (processes stopped, data directories deleted); ``rumor admin
restore`` makes a new data directory, a node started on it without seeds
starts a new cluster, two empty nodes join it; every key acknowledged before
the backup began is on all three, and no key deleted before it is. The
figures (keys, bytes, seconds) are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rumor.client import Client
from tests.support.cluster import FAST_TIMERS, Cluster
from tests.support.nodes import NodeProcess, poll

BIN = Path(sys.executable).parent
KEYS = 20_000


def _rumor(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """Run the ``rumor`` CLI; stdout captured unless given, stderr always."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run(
        [str(BIN / "rumor"), *args], stderr=subprocess.PIPE, timeout=300, check=False, **kwargs
    )


def _manifests(backups: Path) -> list[Any]:
    return [json.loads(p.read_text()) for p in sorted((backups / "backups").glob("*.json"))]


def test_restore_drill_backup_under_writes_destroy_restore_every_acknowledged_key(
    tmp_path: Path,
) -> None:
    backups = tmp_path / "backups"
    cluster = Cluster(tmp_path, 3)
    restored: list[NodeProcess] = []
    try:
        n1 = cluster.nodes[0]
        with Client(n1.address) as client:
            ns_id = client.namespaces.create("DRILL").id
            namespace = client.namespace(ns_id)
            for start in range(0, KEYS, 1000):
                namespace.bulk_put(
                    [
                        {"key": f"k{i:05d}", "value": f"v{i}-" * 20}
                        for i in range(start, start + 1000)
                    ]
                )
            deleted = {f"k{i:05d}" for i in range(0, KEYS, 10)}
            namespace.bulk_delete(sorted(deleted))
            acknowledged: list[tuple[str, float]] = []
            stop = threading.Event()

            def write() -> None:
                with Client(n1.address) as writer:
                    ns = writer.namespace(ns_id)
                    i = 0
                    while not stop.is_set():
                        ns.put(f"w{i:06d}", f"during-{i}")
                        acknowledged.append((f"w{i:06d}", time.monotonic()))
                        i += 1

            writer = threading.Thread(target=write)
            writer.start()
            try:
                poll(lambda: len(acknowledged) >= 50, timeout=60)
                began = time.monotonic()
                first = _rumor("admin", "backup", str(backups), "--endpoint", n1.address)
                backup_s = time.monotonic() - began
                assert first.returncode == 0, first.stderr.decode()
                poll(lambda: acknowledged[-1][1] > began + 0.5, timeout=60)
                second = _rumor("admin", "backup", str(backups), "--endpoint", n1.address)
                assert second.returncode == 0, second.stderr.decode()
            finally:
                stop.set()
                writer.join(60)
        before = {key for key, at in acknowledged if at < began}
        assert len(before) >= 50
        (full, incremental) = _manifests(backups)
        assert full["node_id"] == n1.node_id
        total = sum(int(f["size"]) for f in full["files"])
        assert b"copied" in first.stderr and b"copied" in second.stderr
        copied_again = int(second.stderr.split(b"files (")[1].split(b" bytes")[0])
        assert copied_again < sum(int(f["size"]) for f in incremental["files"])

        # Destroy the cluster: every process stopped, every data directory gone.
        cluster.stop()
        for node in cluster.nodes:
            shutil.rmtree(node.data_dir)

        began = time.monotonic()
        restore = _rumor("admin", "restore", str(backups), "--data-dir", str(tmp_path / "r1"),
                         "--backup", _backup_id(backups, 0))  # fmt: skip
        restore_s = time.monotonic() - began
        assert restore.returncode == 0, restore.stderr.decode()
        began = time.monotonic()
        first_node = NodeProcess(tmp_path / "r1", *FAST_TIMERS, "--name", "r1").start(120)
        ready_s = time.monotonic() - began
        restored.append(first_node)
        assert first_node.node_id != n1.node_id  # a new id: a new cluster
        for name in ("r2", "r3"):
            joiner = NodeProcess(tmp_path / name, *FAST_TIMERS, "--name", name,
                                 "--seeds", first_node.address)  # fmt: skip
            restored.append(joiner.start(120))
        began = time.monotonic()
        Cluster.wait_converged(cluster, restored, timeout=180)
        converged_s = time.monotonic() - began
        expected = ({f"k{i:05d}" for i in range(KEYS)} - deleted) | before
        for node in restored:
            with Client(node.address) as reader:
                ns = reader.namespace(ns_id)
                held = {info.name for info in ns.iter_keys()}
                assert expected <= held, f"{node.node_id} lacks {sorted(expected - held)[:5]}"
                assert not (deleted & held), sorted(deleted & held)[:5]
                assert ns.get("k00001") == "v1-" * 20
                assert ns.get(sorted(before)[-1]) == f"during-{int(sorted(before)[-1][1:])}"
        print(
            f"\nrestore drill: {len(expected)} keys acknowledged before the backup, all present"
            f" on 3 restored nodes; backup {total} bytes in {len(full['files'])} files"
            f" ({backup_s:.2f} s), incremental backup copied {copied_again} bytes; restore"
            f" {restore_s:.2f} s, first node ready {ready_s:.2f} s, 3 nodes converged"
            f" {converged_s:.2f} s later"
        )
    finally:
        for node in restored:
            node.stop()
        cluster.stop()


def _backup_id(backups: Path, index: int) -> str:
    return sorted(p.stem for p in (backups / "backups").glob("*.json"))[index]


def test_scheduled_backups_auth_streams_and_what_restore_refuses(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("backup-test-secret\n")
    scheduled = tmp_path / "scheduled"
    node = NodeProcess(
        tmp_path / "n1", *FAST_TIMERS, "--cluster-secret-file", str(secret),
        "--backup-dir", str(scheduled), "--backup-interval", "1", "--backup-keep", "2",
        cluster_secret="backup-test-secret",
    ).start()  # fmt: skip
    started: NodeProcess | None = None
    try:
        with Client(node.address) as client:
            ns_id = client.namespaces.create("SCHEDULED").id
            client.namespace(ns_id).put("kept", "yes")
        # Authorised like every admin call: no secret, no backup.
        refused = _rumor("admin", "backup", "-", "--endpoint", node.address)
        assert refused.returncode == 1 and refused.stdout == b""
        assert b"backup of" in refused.stderr and b"UNAUTHENTICATED" in refused.stderr
        stream = tmp_path / "node.tar"
        with stream.open("wb") as out:
            streamed = _rumor("admin", "backup", "-", "--endpoint", node.address,
                              "--cluster-secret-file", str(secret), stdout=out)  # fmt: skip
        assert streamed.returncode == 0, streamed.stderr.decode()

        # Scheduled: a backup a second, the newest two kept, no file left unnamed.
        def runs() -> int:
            return node.log_path.read_text(errors="replace").count('"backup.written"')

        poll(lambda: runs() >= 3, timeout=90, interval=0.2)
        manifests = _manifests(scheduled)
        assert len(manifests) == 2
        named = {f"{f['name']}.{f['size']}.{f['crc32']:08x}" for m in manifests for f in m["files"]}
        assert {p.name for p in (scheduled / "files").iterdir()} <= named

        # The stream restores; a corrupt byte in it is refused and nothing is written.
        ok = _rumor("admin", "restore", "-", "--data-dir", str(tmp_path / "d1"),
                    input=stream.read_bytes())  # fmt: skip
        assert ok.returncode == 0, ok.stderr.decode()
        damaged = bytearray(stream.read_bytes())
        damaged[len(damaged) // 2] ^= 0xFF
        bad = _rumor("admin", "restore", "-", "--data-dir", str(tmp_path / "d2"),
                     input=bytes(damaged))  # fmt: skip
        assert bad.returncode == 1 and b"restore refused" in bad.stderr, bad.stderr
        assert not (tmp_path / "d2").exists()

        # A corrupt file of the backup a restore takes (the newest) is refused, naming it.
        # The node stops first, so that no newer backup leaves the file out.
        node.stop()
        newest = max(_manifests(scheduled), key=lambda manifest: manifest["taken_ms"])
        sst = max(
            (
                scheduled / "files" / f"{f['name']}.{f['size']}.{f['crc32']:08x}"
                for f in newest["files"]
                if ".sst" in f["name"]
            ),
            key=lambda path: path.stat().st_size,
        )
        data = bytearray(sst.read_bytes())
        data[len(data) // 2] ^= 0xFF
        sst.write_bytes(bytes(data))
        corrupt = _rumor("admin", "restore", str(scheduled), "--data-dir", str(tmp_path / "d3"))
        assert corrupt.returncode == 1
        assert (
            b"is corrupt" in corrupt.stderr and sst.name.split(".sst")[0].encode() in corrupt.stderr
        )
        assert not (tmp_path / "d3").exists()

        # A restored directory started with seeds is refused and left as it was.
        before = sorted(p.name for p in (tmp_path / "d1").iterdir())
        with_seeds = subprocess.run(
            [sys.executable, "-m", "rumor.node", "--data-dir", str(tmp_path / "d1"),
             "--listen", "127.0.0.1:0", "--seeds", node.address],
            capture_output=True, timeout=120,
        )  # fmt: skip
        assert with_seeds.returncode == 78
        assert b"restored from a backup" in with_seeds.stderr
        assert b"without --seeds" in with_seeds.stderr
        assert sorted(p.name for p in (tmp_path / "d1").iterdir()) == before

        started = NodeProcess(tmp_path / "d1", *FAST_TIMERS).start(120)
        assert started.node_id != node.node_id
        assert not (tmp_path / "d1" / "RUMOR_RESTORED").exists()
        with Client(started.address) as reader:
            assert reader.namespace(ns_id).get("kept") == "yes"
    finally:
        if started is not None:
            started.stop()
        node.stop()
