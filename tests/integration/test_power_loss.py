"""Power cuts: drop everything not made durable, then check no acknowledged write was lost.

The shim (tests.support.power_loss) keeps the durable image of a data
directory: file contents as of their last fsync/fdatasync, directory entries as
of the directory's last sync. A cut SIGKILLs the node and rebuilds the
directory from that image alone, so unsynced data, creates, renames and unlinks
are gone. The self-test shows the layer really drops each of those (it is not
vacuous); the cycles then cut a node under a continuous stream of puts and
deletes. ``--durability fsync`` must lose no acknowledged write;
``--durability wal`` is measured and reported (docs/durability.md).
RUMOR_POWER_CUTS sets the number of cuts per mode (``make chaos`` runs 500).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from rumor.v1 import kv_pb2 as pb
from tests.support import power_loss
from tests.support.nodes import NodeProcess, create_namespace

CUTS = int(os.environ.get("RUMOR_POWER_CUTS", "20"))
KEYS = [b"k%02d" % i for i in range(48)]
WINDOW = 12  # writes in flight at once, so group commit batches them

SELF_TEST = r"""
import os
root = os.environ["RUMOR_POWER_ROOT"]

def write(name, data, sync):
    fd = os.open(os.path.join(root, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, data)
    if sync:
        os.fsync(fd)
    os.close(fd)

def sync_dir():
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)

write("durable", b"synced", True)
write("to-rename", b"r", True)
write("to-unlink", b"u", True)
write("renamed-durably", b"d", True)
sync_dir()
os.rename(os.path.join(root, "renamed-durably"), os.path.join(root, "renamed-new"))
sync_dir()
write("durable", b"+unsynced", False)       # rolled back to the synced contents
write("armed", b"+unsynced", False)         # so is a file from before the run
write("never-synced", b"a", False)          # gone: neither data nor entry synced
write("file-synced-only", b"b", True)       # gone: its directory was never synced
os.rename(os.path.join(root, "to-rename"), os.path.join(root, "renamed-late"))  # undone
os.unlink(os.path.join(root, "to-unlink"))  # undone, with its synced contents
os.link(os.path.join(root, "durable"), os.path.join(root, "linked"))  # undone
"""


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return power_loss.compile_shim(tmp_path_factory.mktemp("shim"))


def test_the_cut_drops_everything_not_synced(shim: Path, tmp_path: Path) -> None:
    root, state = tmp_path / "data", tmp_path / "state"
    root.mkdir()
    (root / "armed").write_bytes(b"before")
    power_loss.arm(root, state)
    env = {**os.environ, **power_loss.shim_env(shim, root, state)}
    subprocess.run([sys.executable, "-c", SELF_TEST], env=env, check=True, timeout=60)
    live = {path.name for path in root.iterdir()}
    assert live == {"armed", "durable", "never-synced", "file-synced-only", "renamed-late",
                    "renamed-new", "linked"}  # fmt: skip
    power_loss.cut(root, state)
    after = {path.name: path.read_bytes() for path in root.iterdir()}
    assert after == {
        "armed": b"before",
        "durable": b"synced",
        "to-rename": b"r",
        "to-unlink": b"u",
        "renamed-new": b"d",
    }


def test_without_the_shim_nothing_is_durable(tmp_path: Path) -> None:
    """The cut keeps only what the shim recorded: unrecorded syncs count for nothing."""
    root, state = tmp_path / "data", tmp_path / "state"
    power_loss.arm(root, state)
    subprocess.run(
        [sys.executable, "-c", SELF_TEST],
        env={**os.environ, power_loss.ROOT_ENV: str(root)},
        check=True,
        timeout=60,
    )
    power_loss.cut(root, state)
    assert list(root.iterdir()) == []


State = bytes | None  # a value, or None: deleted / never written


@dataclass
class Workload:
    """The client's record: each key's last acknowledged state, and writes in flight."""

    ns: str
    rng: random.Random
    acked: dict[bytes, State] = field(default_factory=lambda: dict.fromkeys(KEYS))
    lost: int = 0
    acknowledged: int = 0
    writes: int = 0
    top_seq: int = 0  # the highest seq acknowledged so far
    floor: int = 0  # the highest seq acknowledged before this cycle's restart
    reused_seqs: list[str] = field(default_factory=list)

    def run(self, node: NodeProcess, count: int, cycle: int) -> dict[bytes, State]:
        """Issue ``count`` writes, SIGKILL the node with the last ones in flight.

        Returns the writes that were in flight (unacknowledged) at the kill.
        """
        flight: list[tuple[bytes, State, Future[object]]] = []
        pending: dict[bytes, State] = {}
        self.floor = self.top_seq
        for index in range(count):
            if len(flight) >= WINDOW:
                oldest = flight.pop(0)
                if not self._settle(oldest):
                    pending[oldest[0]] = oldest[1]  # it may have been applied
                    break  # the node died (its shim's kill after a sync): no more writes
            busy = {key for key, _, _ in flight}
            key = self.rng.choice([k for k in KEYS if k not in busy])
            future: Future[object]
            if self.rng.random() < 0.25:
                state: State = None
                future = node.kv.Delete.future(pb.DeleteRequest(namespace_id=self.ns, key=key))
            else:
                state = b"%d-%d" % (cycle, index)
                future = node.kv.Put.future(
                    pb.PutRequest(namespace_id=self.ns, key=key, value=state)
                )
            flight.append((key, state, future))
            self.writes += 1
        assert node.process is not None
        node.process.kill()  # the power goes: SIGKILL with writes in flight
        node.process.wait()
        for entry in flight:
            if not self._settle(entry):
                pending[entry[0]] = entry[1]
        node.kill()
        return pending

    def _settle(self, entry: tuple[bytes, State, Future[object]]) -> bool:
        key, state, future = entry
        try:
            response = future.result(timeout=30)
        except grpc.RpcError:
            return False
        seq = int(getattr(response, "seq"))  # noqa: B009 (a PutResponse or a DeleteResponse)
        if seq <= self.floor:  # issued again after the cut: two writes under one seq
            self.reused_seqs.append(f"{key!r}: seq {seq} <= {self.floor}")
        self.top_seq = max(self.top_seq, seq)
        self.acked[key] = state
        self.acknowledged += 1
        return True

    def check(self, node: NodeProcess, pending: dict[bytes, State]) -> list[str] | None:
        """Compare what the restarted node holds with what was acknowledged.

        None when the node died (its shim's kill after a sync) before every read answered.
        """
        reads = {
            key: node.kv.Get.future(pb.GetRequest(namespace_id=self.ns, key=key)) for key in KEYS
        }
        seen: dict[bytes, State] = {}
        for key, future in reads.items():
            try:
                got = future.result(timeout=30)
            except grpc.RpcError:
                assert node.process is not None
                node.process.wait(timeout=30)  # not alive: died at its sync number kill_at
                assert node.process.returncode == -9, "a read failed on a live node"
                return None
            seen[key] = got.value if got.found else None
        lost = []
        for key, state in seen.items():
            allowed = {self.acked[key]} | ({pending[key]} if key in pending else set())
            if state not in allowed:
                lost.append(f"{key!r}: acknowledged {self.acked[key]!r}, found {state!r}")
            self.acked[key] = state  # the next cycle starts from what survived
        self.lost += len(lost)
        return lost


def _add(total: power_loss.Cut, one: power_loss.Cut) -> None:
    total.dropped_names += one.dropped_names
    total.dropped_bytes += one.dropped_bytes
    total.restored_names += one.restored_names


@pytest.mark.parametrize("durability", ["fsync", "wal"])
def test_power_cuts(shim: Path, tmp_path: Path, durability: str) -> None:
    """Cut after a random number of writes, or right after a random sync (recovery too)."""
    root, state = tmp_path / "data", tmp_path / "state"
    args = ("--durability", durability)
    first = NodeProcess(root, *args).start()
    try:
        ns = create_namespace(first, "power")
    finally:
        assert first.stop() == 0  # a clean start: the namespace is on disk
    rng = random.Random(f"power-{durability}")
    workload = Workload(ns, rng)
    failures: list[str] = []
    pending: dict[bytes, State] = {}
    dropped = power_loss.Cut()
    in_recovery = 0
    for cycle in range(CUTS + 1):
        power_loss.arm(root, state)
        kill_at = rng.randint(1, 14) if cycle < CUTS and rng.random() < 0.4 else None
        env = power_loss.shim_env(shim, root, state, kill_at)
        node = NodeProcess(root, *args, env=env)
        try:
            try:
                node.start()  # RocksDB must recover from every cut
            except RuntimeError:
                assert node.process is not None and node.process.returncode == -9, "no recovery"
                in_recovery += 1  # it died at sync number kill_at, before it was ready
            else:
                lost = workload.check(node, pending)
                if lost is None:
                    in_recovery += 1  # it died after it was ready, before every read answered
                else:
                    if durability == "fsync":
                        failures += [f"cut {cycle}: {line}" for line in lost]
                    if cycle == CUTS:
                        break
                    before = workload.acknowledged
                    synced = power_loss.captures(state).count("f")
                    count = rng.choice([0, rng.randint(1, 250)])
                    pending = workload.run(node, count, cycle)
                    if durability == "fsync" and workload.acknowledged > before:
                        after = power_loss.captures(state).count("f")
                        assert after > synced, "writes acknowledged, but the shim saw no file sync"
        finally:
            node.kill()
        _add(dropped, power_loss.cut(root, state))
    print(
        f"\npower cuts, --durability {durability}: {CUTS} cuts ({in_recovery} in recovery),"
        f" {workload.writes} writes, {workload.acknowledged} acknowledged;"
        f" {workload.lost} times a key lost its acknowledged write; the cuts dropped"
        f" {dropped.dropped_bytes} unsynced bytes, {dropped.dropped_names} unsynced files"
        f" and undid {dropped.restored_names} unsynced unlinks"
    )
    assert dropped.dropped_bytes > 0, "the cuts dropped nothing: the test would be vacuous"
    assert not failures, "\n".join(failures[:20])
    # Both modes: a seq acknowledged before a cut is never issued again after it.
    assert not workload.reused_seqs, workload.reused_seqs[:20]
