"""`rumor cluster up|status` and `rumor admin remove-node`: operating a local or running cluster.

`cluster up` starts N `rumor node` processes on 127.0.0.1, the first starting
the cluster and the others joining through it, prints how to reach them and
stops them all cleanly on Ctrl-C. `cluster status` asks every member for its
view (Admin.Status) and shows states, watermark lag and audit agreement.

`cluster up` generates a cluster secret for its nodes (``cluster-secret`` in
the data root, mode 0600, kept across runs with ``--data-root``); every admin
command reads it from ``--cluster-secret-file`` / RUMOR_CLUSTER_SECRET_FILE, or
RUMOR_CLUSTER_SECRET holding the secret itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import grpc
from rich.console import Console
from rich.table import Table

from rumor.v1 import admin_pb2

STATES = {0: "alive", 1: "suspect", 2: "dead", 3: "left", 4: "removed"}
SECRET_FILE_NAME = "cluster-secret"
SECRET_HEADER = "x-rumor-cluster-secret"  # the node's rumor.node.server.security
ADMIN_TOKEN_HEADER = "x-rumor-admin-token"  # the node's rumor.node.server.admin_token


class ClusterError(click.ClickException):
    def show(self, file: Any = None) -> None:
        click.echo(f"✘ {self.format_message()}", err=True)


@click.group("cluster")
def cluster() -> None:
    """Run a local cluster, or look at a running one."""


def _start(command: list[str], log_path: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait()
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        raise ClusterError(f"a node failed to start: {' / '.join(tail) or 'no output'}")
    return process, json.loads(line)


def _stop_all(processes: list[subprocess.Popen[bytes]], timeout: float = 20.0) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ensure_secret_file(root: Path) -> Path:
    """``root/cluster-secret``: created with a new random secret (mode 0600) if absent."""
    path = root / SECRET_FILE_NAME
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return path


def read_secret(secret_file: str | None) -> str | None:
    """The cluster secret admin calls carry: the file's (its first line: during a
    rotation the file holds the secret to send, then the other one accepted), else
    RUMOR_CLUSTER_SECRET's."""
    if secret_file:
        try:
            text = Path(secret_file).read_text()
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            secret = lines[0] if lines else ""
        except OSError as exc:
            raise ClusterError(
                f"cannot read the cluster secret file {secret_file}: {exc.strerror}"
            ) from None
        except UnicodeDecodeError:
            raise ClusterError(f"the cluster secret file {secret_file} is not text") from None
        if not secret:
            raise ClusterError(f"the cluster secret file {secret_file} is empty")
        return secret
    return os.environ.get("RUMOR_CLUSTER_SECRET", "").strip() or None


def secret_option(command: Any) -> Any:
    return click.option(
        "--cluster-secret-file",
        "secret_file",
        envvar="RUMOR_CLUSTER_SECRET_FILE",
        default=None,
        type=click.Path(dir_okay=False),
        help="File holding the cluster secret (`rumor cluster up` prints it);"
        " env RUMOR_CLUSTER_SECRET_FILE, or RUMOR_CLUSTER_SECRET with the secret itself.",
    )(command)


@cluster.command("up")
@click.option("--nodes", default=3, show_default=True, help="How many nodes.")
@click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default=None,
    help="Keep each node's data (and log) under DIR/nodeN between runs."
    " Default: a temporary directory, removed on exit.",
)
@click.option(
    "--base-port",
    default=7401,
    show_default=True,
    help="gRPC ports are BASE, BASE+1, ...; 0 picks free ports.",
)
@click.option(
    "--node-arg", multiple=True, help="Extra flag for every node, e.g. --node-arg=--durability=wal."
)
def cluster_up(
    nodes: int, data_root: str | None, base_port: int, node_arg: tuple[str, ...]
) -> None:
    """Start NODES nodes on 127.0.0.1; Ctrl-C stops every node cleanly."""
    if nodes < 1:
        raise ClusterError("--nodes must be at least 1")
    root = Path(data_root) if data_root else Path(tempfile.mkdtemp(prefix="rumor-cluster-"))
    root.mkdir(parents=True, exist_ok=True)
    secret_file = ensure_secret_file(root)
    processes: list[subprocess.Popen[bytes]] = []
    stop_requested = False

    def request_stop(signum: int, frame: Any) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous = signal.signal(signal.SIGTERM, request_stop)
    try:
        rows = _start_nodes(nodes, root, base_port, secret_file, node_arg, processes)
        _print_started(root, secret_file, rows)
        while not stop_requested:
            _check_running(root, rows, processes)
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        click.echo("Stopping every node...", err=True)
        with contextlib.suppress(KeyboardInterrupt):
            _stop_all(processes)
        if not data_root:
            shutil.rmtree(root, ignore_errors=True)
    click.echo("Stopped.", err=True)


def _start_nodes(
    nodes: int,
    root: Path,
    base_port: int,
    secret_file: Path,
    node_arg: tuple[str, ...],
    processes: list[subprocess.Popen[bytes]],
) -> list[tuple[str, str, str]]:
    """Start the nodes one by one (each joins through the first), appending each process
    to ``processes`` as it starts; returns (name, address, id) of each."""
    rows: list[tuple[str, str, str]] = []
    seeds: list[str] = []
    for index in range(1, nodes + 1):
        port = 0 if base_port == 0 else base_port + index - 1
        command = [
            sys.executable,
            "-m",
            "rumor.node",
            "--data-dir",
            str(root / f"node{index}"),
            "--listen",
            f"127.0.0.1:{port}",
            "--name",
            f"node{index}",
            "--cluster-secret-file",
            str(secret_file),
            *node_arg,
        ]
        if seeds:
            command += ["--seeds", ",".join(seeds)]
        process, ready = _start(command, root / f"node{index}.log")
        processes.append(process)
        seeds = seeds or [ready["listen"]]
        rows.append((f"node{index}", ready["listen"], ready["node_id"]))
    return rows


def _print_started(root: Path, secret_file: Path, rows: list[tuple[str, str, str]]) -> None:
    click.echo(f"Rumor cluster of {len(rows)} node(s); data and logs in {root}")
    for name, address, node_id in rows:
        click.echo(f"  {name}  {address}  id {node_id}")
    endpoints = ",".join(address for _, address, _ in rows)
    click.echo(f"Cluster secret (Replication and Admin calls): {secret_file}")
    click.echo(f"Try: RUMOR_ENDPOINT={endpoints} rumor kv namespace create DEMO")
    click.echo(f"     export RUMOR_CLUSTER_SECRET_FILE={secret_file}")
    click.echo(f"     rumor cluster status --endpoint {rows[0][1]}")
    click.echo("Ctrl-C stops every node.")


def _check_running(
    root: Path, rows: list[tuple[str, str, str]], processes: list[subprocess.Popen[bytes]]
) -> None:
    for (name, _, _), process in zip(rows, processes, strict=True):
        if process.poll() is not None:
            raise ClusterError(
                f"{name} exited with status {process.returncode}; see {root / (name + '.log')}"
            )


def admin_call(
    address: str,
    method: str,
    request: Any,
    response_class: Any,
    timeout: float,
    secret: str | None,
    admin_token: str | None = None,
) -> Any:
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(
            f"/rumor.v1.Admin/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        metadata: tuple[tuple[str, str], ...] = ((SECRET_HEADER, secret),) if secret else ()
        if admin_token:
            metadata += ((ADMIN_TOKEN_HEADER, admin_token),)
        return call(request, timeout=timeout, metadata=metadata)


def node_status(
    address: str, timeout: float, secret: str | None
) -> admin_pb2.StatusResponse | None:
    try:
        response: admin_pb2.StatusResponse = admin_call(
            address, "Status", admin_pb2.StatusRequest(), admin_pb2.StatusResponse, timeout, secret
        )
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
            raise ClusterError(
                f"{address} refused the cluster secret: give --cluster-secret-file FILE"
                " (or RUMOR_CLUSTER_SECRET_FILE)"
            ) from None
        return None
    return response


@cluster.command("status")
@click.option(
    "--endpoint",
    envvar="RUMOR_ENDPOINT",
    default="127.0.0.1:7401",
    show_default=True,
    help="Any member; env RUMOR_ENDPOINT.",
)
@click.option("--timeout", default=5.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@secret_option
def cluster_status(endpoint: str, timeout: float, as_json: bool, secret_file: str | None) -> None:
    """Members, their states, watermark lag and whether their audit buckets agree."""
    secret = read_secret(secret_file)
    first = node_status(endpoint.split(",", maxsplit=1)[0], timeout, secret)
    if first is None:
        raise ClusterError(f"{endpoint} did not answer Admin.Status")
    rows = _member_rows(first, _views(first, timeout, secret))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    _print_table(endpoint, rows)


def _views(
    first: admin_pb2.StatusResponse, timeout: float, secret: str | None
) -> dict[int, admin_pb2.StatusResponse | None]:
    """Each member's own status, asked of the members that may answer (None: not asked,
    or no answer)."""
    views: dict[int, admin_pb2.StatusResponse | None] = {}
    for member in first.members:
        state = STATES.get(member.member.state, "?")
        if member.member.id == first.node_id:
            views[member.member.id] = first
        elif state in ("alive", "suspect") and member.member.address:
            views[member.member.id] = node_status(member.member.address, timeout, secret)
        else:
            views[member.member.id] = None
    return views


def _member_rows(
    first: admin_pb2.StatusResponse, views: dict[int, admin_pb2.StatusResponse | None]
) -> list[dict[str, Any]]:
    """One row per member: its state, holdings, watermark lag behind the newest mark
    seen anywhere, and whether its audit digest is the most common one."""
    newest: dict[int, int] = {}
    for view in views.values():
        for origin, mark in view.watermarks.items() if view else []:
            newest[origin] = max(newest.get(origin, 0), mark)
    digests = [v.audit_digest for v in views.values() if v is not None]
    common = max(set(digests), key=digests.count) if digests else None
    rows: list[dict[str, Any]] = []
    for member in first.members:
        view = views.get(member.member.id)
        lag = (
            max((newest[o] - view.watermarks.get(o, 0) for o in newest), default=0)
            if view
            else None
        )
        rows.append(
            {
                "name": member.member.name,
                "id": f"{member.member.id:016x}",
                "address": member.member.address,
                "state": STATES.get(member.member.state, "?"),
                "incarnation": member.member.incarnation,
                "records": view.records_held if view else None,
                "tombstones": view.tombstones_held if view else None,
                "lag": lag,
                "audit_agrees": None if view is None else view.audit_digest == common,
                "ready": view.ready if view else None,
                "fenced": view.fenced if view else None,
                "audit_repairs": view.audit_repairs_total if view else None,
            }
        )
    return rows


def _print_table(endpoint: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"Rumor cluster seen from {endpoint}")
    for column in (
        "name",
        "id",
        "address",
        "state",
        "records",
        "tombstones",
        "lag",
        "audit",
        "ready",
    ):
        table.add_column(column)
    for row in rows:
        audit = {True: "agrees", False: "DIFFERS", None: "-"}[row["audit_agrees"]]
        table.add_row(
            *(
                str(x)
                for x in (
                    row["name"],
                    row["id"],
                    row["address"],
                    row["state"],
                    "-" if row["records"] is None else row["records"],
                    "-" if row["tombstones"] is None else row["tombstones"],
                    "-" if row["lag"] is None else row["lag"],
                    audit,
                    "-" if row["ready"] is None else ("fenced" if row["fenced"] else row["ready"]),
                )
            )
        )
    Console().print(table)
