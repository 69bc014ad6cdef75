"""The servers ``rumor bench peers`` measures, as pinned processes on 127.0.0.1.

Each server starts on the server core, in a temporary directory, on ports
picked free, and stops when its ``with`` block ends: the grpc.aio echo server,
a Rumor node (fsync durability, the default, with its HTTP API and an API
token), etcd (GOMAXPROCS=1) and Redis (append-only file, fsync always). Its
``pid`` is the process whose CPU time (with its children's: ``tree_cpu_seconds``)
is charged to the requests it serves.

The external programs (etcd, Redis and its tools, h2load) come from Debian
packages: ``ensure_programs`` installs the missing ones with apt-get when run as
root, and otherwise fails naming the packages. ``python -m
rumor.bench.peers_servers`` does only that (``make bench`` runs it first).

etcd's requests are built here by hand: a PutRequest is ``key = 1, value = 2``
and a RangeRequest ``key = 1, serializable = 7`` in etcd's rpc.proto, so no
etcd client is needed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from rumor.bench.common import (
    CLK_TCK,
    NODE_CORE,
    node_flags,
    pid_of,
    pin_prefix,
    start_node,
    start_process,
    stop_process,
)
from rumor.experiments.lab.processes import poll
from rumor.v1 import kv_pb2

# Each program the benchmark runs, and the Debian package that holds it.
PROGRAMS = {
    "etcd": "etcd-server",
    "redis-server": "redis-server",
    "redis-cli": "redis-tools",
    "redis-benchmark": "redis-tools",
    "h2load": "nghttp2-client",
}
API_TOKEN = "rumor-bench-peers"
START_TIMEOUT_S = 60.0


def missing_packages() -> list[str]:
    """The packages whose programs are not on PATH, sorted, each once."""
    return sorted({package for program, package in PROGRAMS.items() if not shutil.which(program)})


def ensure_programs() -> None:
    """Install the missing packages (as root), or fail with the command that would."""
    missing = missing_packages()
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(
            "rumor bench peers needs packages that are not installed;"
            f" run: sudo apt-get install -y {' '.join(missing)}"
        )
    install = ["apt-get", "install", "-y", *missing]
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, check=False, env=environment).returncode != 0:
        subprocess.run(["apt-get", "update"], env=environment, check=True)
        subprocess.run(install, env=environment, check=True)
    if still := missing_packages():
        raise RuntimeError(f"installed, yet programs are missing from PATH: {still}")


def program_versions() -> list[str]:
    """The first line of each server's and load generator's ``--version``."""
    versions = []
    for program in ("etcd", "redis-server", "redis-benchmark", "h2load"):
        command = [program, "--version"]
        output = subprocess.run(command, check=False, capture_output=True, text=True).stdout
        versions.append(output.splitlines()[0] if output else f"{program}: version unknown")
    return versions


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and every process under it, counting the
    children they have already waited for (a Redis rewrite, a worker that exited)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat_fields(int(entry.name))
            if stat is not None:
                parents[int(entry.name)] = int(stat[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, of in parents.items() if of == parent]
        tree.update(children)
        frontier += children
    ticks = 0
    for member in tree:
        stat = _stat_fields(member)
        if stat is not None:  # it may have exited since
            ticks += sum(int(stat[index]) for index in (11, 12, 13, 14))
    return ticks / CLK_TCK


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def grpc_unary(
    address: str, method: str, message: bytes, metadata: Sequence[tuple[str, str]] = ()
) -> bytes:
    """One unary call with an already serialized request; its serialized answer.
    A grpc-status other than 0 raises ``grpc.RpcError``."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(method, None, None)
        answer: bytes = call(message, metadata=tuple(metadata), timeout=30)
        return answer


# --- the servers ---


@dataclass(frozen=True)
class GrpcServer:
    """The grpc.aio echo server, or etcd: a gRPC address and the process serving it."""

    address: str
    pid: int


@dataclass(frozen=True)
class RumorServer:
    """A Rumor node: its gRPC and HTTP addresses, and a namespace made for the benchmark."""

    address: str
    http: str
    pid: int
    namespace: str
    token: str = API_TOKEN

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


@dataclass(frozen=True)
class RedisServer:
    port: int
    pid: int


@contextmanager
def echo_server() -> Iterator[GrpcServer]:
    process, ready = start_process(["-m", "rumor.bench.echo_server"], NODE_CORE)
    try:
        yield GrpcServer(ready["listen"], process.pid)
    finally:
        stop_process(process)


@contextmanager
def rumor_node(root: Path) -> Iterator[RumorServer]:
    """A fresh node (durability fsync) with its HTTP API on and one API token."""
    node = start_node(
        root / "rumor", *node_flags("fsync"), "--http", "127.0.0.1:0", "--api-token", API_TOKEN
    )
    try:
        token = (("authorization", f"Bearer {API_TOKEN}"),)
        namespace = create_namespace(node.address, token, "bench-peers")
        yield RumorServer(node.address, node.http, pid_of(node), namespace)
    finally:
        node.stop()


@contextmanager
def etcd_server(root: Path) -> Iterator[GrpcServer]:
    """A one-member etcd cluster with GOMAXPROCS=1, its data in ``root``."""
    client, peer = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    command = [
        *pin_prefix(NODE_CORE),
        "etcd",
        "--name=bench",
        f"--data-dir={root / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=bench={peer}",
        "--logger=zap",
        "--log-level=error",
    ]
    address = client.removeprefix("http://")
    with _server_process(command, root / "etcd.log", {"GOMAXPROCS": "1"}) as process:
        probe = etcd_range_request(b"ready", serializable=False)
        poll(lambda: _answers(address, "/etcdserverpb.KV/Range", probe), timeout=START_TIMEOUT_S)
        yield GrpcServer(address, process.pid)


@contextmanager
def redis_server(root: Path) -> Iterator[RedisServer]:
    """Redis with the append-only file fsynced on every write, its files in ``root``."""
    port = free_port()
    data = root / "redis"
    data.mkdir(parents=True, exist_ok=True)
    command = [
        *pin_prefix(NODE_CORE),
        "redis-server",
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data),
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
        "--daemonize",
        "no",
    ]
    with _server_process(command, root / "redis.log") as process:
        poll(lambda: redis_cli(port, "PING") == "PONG", timeout=START_TIMEOUT_S)
        yield RedisServer(port, process.pid)


def redis_cli(port: int, *arguments: str) -> str:
    """One command through redis-cli; its raw answer ('' when it could not connect)."""
    finished = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--raw", *arguments],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return finished.stdout.rstrip("\n") if finished.returncode == 0 else ""


def create_namespace(address: str, metadata: tuple[tuple[str, str], ...], title: str) -> str:
    """The id of a namespace made on the node at ``address``."""
    created = grpc_unary(
        address,
        "/rumor.v1.KV/CreateNamespace",
        kv_pb2.CreateNamespaceRequest(title=title).SerializeToString(),
        metadata,
    )
    return kv_pb2.Namespace.FromString(created).id


@contextmanager
def _server_process(
    command: list[str], log: Path, environment: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=output,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(environment or {})},
        )
    try:
        yield process
    except BaseException:
        sys.stderr.write(f"{log.name}:\n{log.read_text(errors='replace')[-3000:]}\n")
        raise
    finally:
        stop_process(process)


def _answers(address: str, method: str, message: bytes) -> bool:
    try:
        grpc_unary(address, method, message)
    except grpc.RpcError:
        return False
    return True


# --- etcd's wire format (etcdserverpb, rpc.proto) ---


def etcd_put_request(key: bytes, value: bytes) -> bytes:
    return _bytes_field(1, key) + _bytes_field(2, value)


def etcd_range_request(key: bytes, *, serializable: bool) -> bytes:
    """A Range of one key; serializable reads the member's local state, skipping the
    quorum read a linearizable Range makes."""
    return _bytes_field(1, key) + (_varint(7 << 3) + b"\x01" if serializable else b"")


def _bytes_field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def main() -> None:
    try:
        ensure_programs()
    except (RuntimeError, subprocess.CalledProcessError) as error:
        sys.exit(str(error))


if __name__ == "__main__":
    main()
