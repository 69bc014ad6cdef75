"""Secure by default on real processes: exposed listeners refused, secrets, fenced checkpoints.

- ``rumor node`` with a non-loopback gRPC listener and no cluster secret, or a
  non-loopback HTTP listener and no API token, exits at once with a message
  naming the flag to use; ``--insecure`` starts it anyway.
- A token given in argv starts the node but logs ``auth.token_in_argv``.
- ``rumor cluster up`` writes a cluster secret (mode 0600) into its data root,
  says how admin commands get it, and its nodes refuse admin calls without it.
- ``Admin.Checkpoint`` writes only under ``--checkpoint-dir``: off without it,
  ``..``, absolute paths outside and symlinks out are refused, nothing written.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from rumor.v1 import admin_pb2, admin_pb2_grpc
from tests.support.nodes import NodeProcess

RUMOR = str(Path(sys.executable).with_name("rumor"))
SECRET_HEADER = "x-rumor-cluster-secret"


def _node_exits(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [RUMOR, "node", "--data-dir", str(tmp_path / "data"), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUMOR_")}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)


def test_an_exposed_grpc_listener_needs_a_secret(tmp_path: Path) -> None:
    result = _node_exits(tmp_path, "--listen", "0.0.0.0:0")
    assert result.returncode == 1
    assert "without a cluster secret" in result.stderr
    assert "--cluster-secret-file" in result.stderr and "--insecure" in result.stderr
    assert "node.ready" not in result.stdout


def test_an_exposed_http_listener_needs_a_token(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    result = _node_exits(
        tmp_path, "--listen", "127.0.0.1:0", "--http", "0.0.0.0:0",
        "--cluster-secret-file", str(secret),
    )  # fmt: skip
    assert result.returncode == 1
    assert "without an API token" in result.stderr and "--api-token-file" in result.stderr
    assert "node.ready" not in result.stdout


def test_insecure_starts_an_exposed_node_and_argv_tokens_are_warned(tmp_path: Path) -> None:
    node = NodeProcess(
        tmp_path / "data", "--listen", "0.0.0.0:0", "--http", "127.0.0.1:0",
        "--insecure", "--api-token", "visible-in-ps",
    )  # fmt: skip
    node.address = ""
    node.start()
    try:
        assert node.address.startswith("0.0.0.0:")
        log = node.log()
        assert "auth.token_in_argv" in log and "cluster.open" in log
    finally:
        node.stop()


@pytest.fixture(scope="module")
def cluster_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    root = tmp_path_factory.mktemp("cluster-up")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUMOR_")}
    process = subprocess.Popen(
        [RUMOR, "cluster", "up", "--nodes", "2", "--base-port", "0", "--data-root", str(root),
         "--node-arg=--checkpoint-dir=" + str(root / "checkpoints")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not any(line.startswith("Ctrl-C") for line in lines):
            line = process.stdout.readline()
            assert line, f"cluster up ended: {process.stderr.read() if process.stderr else ''}"
            lines.append(line.strip())
        yield root, lines
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _endpoints(lines: list[str]) -> list[str]:
    return [line.split()[1] for line in lines if line.startswith("node")]


def test_cluster_up_generates_a_private_secret(cluster_up: tuple[Path, list[str]]) -> None:
    root, lines = cluster_up
    secret = root / "cluster-secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_text().strip()) >= 32
    assert f"export RUMOR_CLUSTER_SECRET_FILE={secret}" in "\n".join(lines)
    endpoint = _endpoints(lines)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUMOR_")}
    refused = subprocess.run(
        [RUMOR, "admin", "status", "--endpoint", endpoint],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert refused.returncode == 1 and "--cluster-secret-file" in refused.stderr
    allowed = subprocess.run(
        [RUMOR, "cluster", "status", "--endpoint", endpoint, "--json"],
        capture_output=True, text=True, timeout=60,
        env={**env, "RUMOR_CLUSTER_SECRET_FILE": str(secret)},
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert '"state": "alive"' in allowed.stdout


def test_checkpoints_stay_under_the_checkpoint_dir(cluster_up: tuple[Path, list[str]]) -> None:
    root, lines = cluster_up
    secret = (root / "cluster-secret").read_text().strip()
    outside = root / "outside"
    outside.mkdir(exist_ok=True)
    (root / "checkpoints").mkdir(exist_ok=True)
    (root / "checkpoints" / "escape").symlink_to(outside)
    with grpc.insecure_channel(_endpoints(lines)[0]) as channel:
        admin = admin_pb2_grpc.AdminStub(channel)
        metadata = ((SECRET_HEADER, secret),)
        for asked in ("../outside/copy", "a/../../outside", str(outside / "copy"),
                      "escape/copy", str(root / "checkpoints"), ""):  # fmt: skip
            with pytest.raises(grpc.RpcError) as refused:
                admin.Checkpoint(admin_pb2.CheckpointRequest(directory=asked), metadata=metadata)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, asked
        assert list(outside.iterdir()) == []
        done = admin.Checkpoint(admin_pb2.CheckpointRequest(directory="ok"), metadata=metadata)
        assert Path(done.directory) == (root / "checkpoints" / "ok").resolve()
        assert (root / "checkpoints" / "ok" / "CURRENT").exists()


def test_checkpoints_are_off_without_a_checkpoint_dir(tmp_path: Path) -> None:
    with NodeProcess(tmp_path / "data") as node:
        admin = admin_pb2_grpc.AdminStub(node.channel)
        with pytest.raises(grpc.RpcError) as refused:
            admin.Checkpoint(admin_pb2.CheckpointRequest(directory=str(tmp_path / "copy")))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "--checkpoint-dir" in (refused.value.details() or "")
        assert not (tmp_path / "copy").exists()
