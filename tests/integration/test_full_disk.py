"""A full disk is a state, not an error: a real node on a small loop-mounted ext4.

n2 keeps its data directory on a 128 MiB ext4 image mounted through a loop
device (root only: skipped with the reason otherwise; always unmounted), with
an 8 MiB reserve; n1, its peer, on the ordinary disk. A filler file takes the
rest of the image; n2 is written to until the disk refuses. Then: clients get
RESOURCE_EXHAUSTED (gRPC) and 507 in Cloudflare's envelope (HTTP), naming the
cause and no path; ``/healthz`` answers 503 "read_only" with the reason, Admin
Status and ``rumor_disk_full`` say so, n1 learns it from n2's envelopes;
reads are served. SIGTERM while full exits 0 without a traceback; a restart
while full serves reads. The filler deleted, writes resume by themselves;
nothing acknowledged is lost and the two nodes converge. Its log lives off the
image (a log on a full disk cannot be written).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from rumor.v1 import kv_pb2 as pb
from tests.integration.kv_helpers import failed_call, get, put
from tests.support.cluster import FAST_TIMERS, node_id, status
from tests.support.nodes import NodeProcess, create_namespace, poll

IMAGE_MIB = 128
RESERVE_MIB = 8
VALUE = b"v" * 4096


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A freshly made ext4 file system of ``IMAGE_MIB`` MiB, mounted; unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a loop file system needs root")
    mkfs = shutil.which("mkfs.ext4")
    if mkfs is None or shutil.which("mount") is None:
        pytest.skip("mkfs.ext4 or mount is not installed")
    image, mountpoint = tmp_path / "disk.img", tmp_path / "disk"
    with image.open("wb") as file:
        file.truncate(IMAGE_MIB * 1024 * 1024)
    made = _run(mkfs, "-q", "-F", str(image))
    if made.returncode != 0:
        pytest.skip(f"mkfs.ext4 failed: {made.stderr.strip()}")
    mountpoint.mkdir()
    mounted = _run("mount", "-o", "loop", str(image), str(mountpoint))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a loop file system here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        if _run("umount", str(mountpoint)).returncode != 0:
            _run("umount", "-l", str(mountpoint))  # a process still in it: detach anyway


def fill(directory: Path) -> Path:
    """A file that takes every block left on ``directory``'s file system."""
    filler = directory / "filler"
    chunk = b"\0" * (1024 * 1024)
    with filler.open("wb") as file:
        try:
            while True:
                file.write(chunk)
                file.flush()
        except OSError:
            pass
    return filler


def http(node: NodeProcess, path: str, method: str = "GET", body: bytes | None = None) -> Any:
    request = urllib.request.Request(f"http://{node.http}{path}", data=body, method=method)
    request.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


RELEASE_FIELDS = {"version", "protocol", "oldest_protocol", "features"}


def healthz(node: NodeProcess) -> tuple[int, dict[str, Any]]:
    """``/healthz``'s status and body, without the release fields every body has."""
    code, body = http(node, "/healthz")
    fields = json.loads(body)
    return code, {k: v for k, v in fields.items() if k not in RELEASE_FIELDS}


def metric(node: NodeProcess, name: str) -> float:
    _, text = http(node, "/metrics")
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def written_until_full(node: NodeProcess, ns: str) -> tuple[list[bytes], grpc.Call]:
    """Put 4 KiB values until the node refuses; the keys acknowledged and the refusal."""
    acknowledged: list[bytes] = []
    for index in range(100_000):
        key = b"before-full-%06d" % index
        try:
            put(node, ns, key, VALUE)
        except grpc.RpcError as error:
            assert isinstance(error, grpc.Call)
            return acknowledged, error
        acknowledged.append(key)
    raise AssertionError("the disk never filled up")


def all_held(node: NodeProcess, ns: str, keys: list[bytes]) -> bool:
    return all(get(node, ns, key).found for key in keys)


@pytest.fixture
def nodes(tmp_path: Path, small_disk: Path) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    n1 = NodeProcess(tmp_path / "n1", *FAST_TIMERS, "--name", "n1")
    n2 = NodeProcess(
        small_disk / "n2",
        *FAST_TIMERS,
        "--name",
        "n2",
        "--http",
        "127.0.0.1:0",
        "--disk-reserve-mb",
        str(RESERVE_MIB),
    )
    n2.log_path = tmp_path / "n2.log"
    try:
        n1.start()
        n2.args += ["--seeds", n1.address]
        n2.start()
        yield n1, n2
    finally:
        n2.stop()
        n1.stop()


def test_a_full_disk_refuses_writes_serves_reads_stops_cleanly_and_resumes(
    nodes: tuple[NodeProcess, NodeProcess], small_disk: Path
) -> None:
    n1, n2 = nodes
    ns = create_namespace(n1, "full-disk")
    poll(lambda: status(n2).ready and not failed_get(n2, ns), timeout=30)
    assert (small_disk / "n2" / "SPACE-RESERVE").stat().st_size == RESERVE_MIB * 1024 * 1024
    assert healthz(n2) == (200, {"status": "ok"})

    filler = fill(small_disk)
    acknowledged, refused = written_until_full(n2, ns)
    assert acknowledged, "nothing fitted before the disk filled"
    details = refused.details() or ""
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, details
    assert "no space left" in details and "/" not in details, details

    # A state: every later write is refused at once, by either API, naming the cause.
    poll(lambda: status(n2).disk_full, timeout=10)
    again = failed_call(lambda: put(n2, ns, b"while-full", VALUE))
    assert again.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    base = f"/client/v4/accounts/acct/storage/kv/namespaces/{ns}"
    code, body = http(n2, f"{base}/values/while-full", "PUT", VALUE)
    envelope = json.loads(body)
    assert code == 507 and envelope["success"] is False, envelope
    assert "no space left" in envelope["errors"][0]["message"]
    assert str(small_disk) not in envelope["errors"][0]["message"]
    code, health = healthz(n2)
    assert code == 503 and health["status"] == "read_only", health
    assert (health["reads"], health["writes"], health["reason"]) == ("ok", "refused", "disk full")
    assert status(n2).writes_refused == "disk full" and status(n2).ready
    assert metric(n2, "rumor_disk_full") == 1.0 and metric(n2, "rumor_ready") == 1.0

    def n1_knows() -> bool:
        said = {m.member.id: m.writes_refused for m in status(n1).members}
        return said.get(node_id(n2)) == "disk full"

    poll(n1_knows, timeout=15)
    assert all_held(n2, ns, acknowledged)  # reads are served
    put(n1, ns, b"written-elsewhere", b"while n2 was full")  # the cluster goes on

    # SIGTERM while full: a clean stop. A restart while full serves reads.
    assert n2.stop() == 0
    log = n2.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
    n2.start()
    code, health = healthz(n2)
    assert code == 503 and health["status"] == "read_only", health
    assert all_held(n2, ns, acknowledged)
    assert failed_call(lambda: put(n2, ns, b"still-full")).code() == (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )

    # Space returns: writes resume by themselves, the reserve is made again.
    filler.unlink()
    poll(lambda: healthz(n2) == (200, {"status": "ok"}), timeout=60, interval=0.2)
    put(n2, ns, b"after", b"space is back")
    assert (small_disk / "n2" / "SPACE-RESERVE").exists()
    assert not status(n2).disk_full and metric(n2, "rumor_disk_full") == 0.0
    poll(lambda: not any(m.writes_refused for m in status(n1).members), timeout=15)

    # Nothing acknowledged lost, on either node; what n2 missed while full arrives.
    everything = [*acknowledged, b"written-elsewhere", b"after"]
    poll(lambda: all_held(n1, ns, everything) and all_held(n2, ns, everything), timeout=60)
    poll(lambda: status(n1).audit_digest == status(n2).audit_digest, timeout=30)
    assert get(n1, ns, acknowledged[-1]).value == VALUE


def failed_get(node: NodeProcess, ns: str) -> bool:
    """True while ``node`` does not know ``ns`` yet."""
    try:
        node.kv.Get(pb.GetRequest(namespace_id=ns, key=b"probe"))
    except grpc.RpcError:
        return True
    return False
